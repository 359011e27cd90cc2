import Foundation
import KliqWebhooks

/// `--exec COMMAND`: runs COMMAND through `/bin/sh -c` for an event, with the raw event JSON on stdin and
/// `KLIQ_EVENT_ID`, `KLIQ_EVENT_TYPE`, `KLIQ_JOB_ID` in its environment. Exit status 0 means handled.
///
/// The command's stdout and stderr go to the service's stderr. The signing secret is removed from its
/// environment: a handler never needs it, and child processes are a common way for secrets to leak.
struct ExecHandler: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var signalled: Bool
        var description: String {
            self.signalled ? "--exec command killed by signal \(self.status): \(self.command)" : "--exec command exited with status \(self.status): \(self.command)"
        }
    }

    let command: String

    func run(_ event: Event) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", self.command]
        var environment = ProcessInfo.processInfo.environment
        environment[SecretSource.environmentVariable] = nil
        environment["KLIQ_EVENT_ID"] = Self.environmentSafe(event.id)
        environment["KLIQ_EVENT_TYPE"] = Self.environmentSafe(event.type.rawValue)
        environment["KLIQ_JOB_ID"] = Self.environmentSafe(event.jobId ?? "")
        process.environment = environment
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError

        let body = event.rawBody
        let (status, reason): (Int32, Process.TerminationReason) = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in continuation.resume(returning: (process.terminationStatus, process.terminationReason)) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            // Writing may block until the command reads; a command that exits without reading gets EPIPE
            // (SIGPIPE is ignored by `serve`), which is fine.
            let writer = input.fileHandleForWriting
            Thread.detachNewThread {
                try? writer.write(contentsOf: body)
                try? writer.close()
            }
        }
        guard status == 0, reason == .exit else {
            throw Failure(command: self.command, status: status, signalled: reason == .uncaughtSignal)
        }
    }

    /// Environment values cannot hold NUL; an id with one (accepted and stored under an encoded name) is cut there.
    static func environmentSafe(_ value: String) -> String {
        String(value.prefix { $0 != "\0" })
    }
}
