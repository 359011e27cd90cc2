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

    struct Timeout: Error, CustomStringConvertible {
        var command: String
        var limit: Duration
        var description: String { "--exec command ran longer than \(self.limit) and was stopped: \(self.command)" }
    }

    let command: String
    /// How long one run may take before it is stopped and counted as failed (so it is retried).
    var timeout: Duration = .seconds(300)

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
        let running = RunningProcess(process)
        let limit = self.timeout
        let (status, reason): (Int32, Process.TerminationReason) = try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: (Int32, Process.TerminationReason)?.self) { group in
                group.addTask { try await self.wait(for: running, writing: body) }
                group.addTask {
                    try? await Task.sleep(for: limit)
                    return nil
                }
                defer { group.cancelAll() }
                if let finished = try await group.next()! { return finished }
                // Time is up: stop the command's process group and wait until it is reaped.
                running.terminate()
                _ = try await group.next()
                throw Timeout(command: self.command, limit: limit)
            }
        } onCancel: {
            // The shutdown grace period is over: stop the command; the delivery stays pending.
            running.terminate()
        }
        guard status == 0, reason == .exit else {
            throw Failure(command: self.command, status: status, signalled: reason == .uncaughtSignal)
        }
    }

    private func wait(for running: RunningProcess, writing body: [UInt8]) async throws -> (Int32, Process.TerminationReason) {
        let process = running.process
        let input = process.standardInput as! Pipe
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in continuation.resume(returning: (process.terminationStatus, process.terminationReason)) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            if Task.isCancelled { running.terminate() }
            // Writing may block until the command reads; a command that exits without reading gets EPIPE
            // (SIGPIPE is ignored by `serve`), which is fine.
            let writer = input.fileHandleForWriting
            Thread.detachNewThread {
                try? writer.write(contentsOf: body)
                try? writer.close()
            }
        }
    }

    /// Environment values cannot hold NUL; an id with one (accepted and stored under an encoded name) is cut there.
    static func environmentSafe(_ value: String) -> String {
        String(value.prefix { $0 != "\0" })
    }
}

/// A started child process, shared with the cancellation handler (Process itself is not Sendable;
/// signalling is safe from any thread).
final class RunningProcess: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }

    /// SIGTERM to the command's whole process group: `/bin/sh -c` may have children of its own (a
    /// pipeline, `sleep`), and Foundation starts the shell as the leader of a new group.
    func terminate() {
        guard self.process.isRunning else { return }
        let pid = self.process.processIdentifier
        if getpgid(pid) == pid { kill(-pid, SIGTERM) }
        kill(pid, SIGTERM)
    }
}
