import KliqWebhooks
import Subprocess
import SystemPackage

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
        let environment: [Environment.Key: String?] = [
            Environment.Key(stringLiteral: SecretSource.environmentVariable): nil,
            "KLIQ_EVENT_ID": Self.environmentSafe(event.id),
            "KLIQ_EVENT_TYPE": Self.environmentSafe(event.type.rawValue),
            "KLIQ_JOB_ID": Self.environmentSafe(event.jobId ?? ""),
        ]
        var options = PlatformOptions()
        // The shell leads a process group of its own, so stopping it also stops what it started (a
        // pipeline, `sleep`): SIGTERM to the group, then SIGKILL to the group after 5 s.
        options.processGroupID = 0
        options.teardownSequence = [.send(signal: .terminate, toProcessGroup: true, allowedDurationToNextStep: .seconds(5))]
        let command = self.command
        let platformOptions = options
        let body = event.rawBody
        let limit = self.timeout
        // Cancelling the run (time is up, or the shutdown grace period is over) runs the teardown above
        // and reaps the process; `run` then returns how it ended.
        let ended: TerminationStatus? = try await withThrowingTaskGroup(of: TerminationStatus?.self) { group in
            group.addTask {
                try await Subprocess.run(
                    .path("/bin/sh"), arguments: ["-c", command], environment: .inherit.updating(environment),
                    platformOptions: platformOptions, input: .inputWriter,
                    output: .fileDescriptor(.standardError, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false)
                ) { execution in
                    // A command that exits without reading its input is fine: the write just stops.
                    _ = try? await execution.standardInputWriter.write(body)
                    try? await execution.standardInputWriter.finish()
                }.terminationStatus
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            if first == nil { _ = try? await group.next() }  // the command, now stopped and reaped
            return first
        }
        switch ended {
        case .none: throw Timeout(command: self.command, limit: limit)
        case .exited(0)?: return
        case .exited(let status)?: throw Failure(command: self.command, status: status, signalled: false)
        case .signaled(let signal)?: throw Failure(command: self.command, status: signal, signalled: true)
        }
    }

    /// Environment values cannot hold NUL; an id with one (accepted and stored under an encoded name) is cut there.
    static func environmentSafe(_ value: String) -> String {
        String(value.prefix { $0 != "\0" })
    }
}
