#if canImport(Glibc)
import Glibc
#endif
import Subprocess
import Synchronization
import SystemPackage

/// A child process the tests start, watch and kill: `kliq-webhooks serve`, nginx, mount.
///
/// Built on swift-subprocess, never Foundation's `Process`: on Linux, `Process.run()` reads
/// `/proc/self/fd` with a 256-byte copy of each directory entry and can crash the whole test process
/// (swift-corelibs-foundation#5472, fixed after Swift 6.3.1). It did so in this project's CI.
///
/// The process runs in a task of its own until it ends; ``status`` is `nil` until then.
public final class ChildProcess: Sendable {
    /// How the process ended.
    public enum Status: Sendable, Equatable {
        /// It exited with this code.
        case exited(Int32)
        /// A signal with this number ended it.
        case signalled(Int32)

        init(_ status: TerminationStatus) {
            switch status {
            case .exited(let code): self = .exited(code)
            case .signaled(let signal): self = .signalled(signal)
            }
        }
    }

    /// Where one of the child's output streams goes.
    public enum Destination: Sendable {
        /// Appended to the file at this path (created when missing).
        case file(String)
        /// Thrown away.
        case discarded
    }

    public let processIdentifier: pid_t
    private let ended: Ended
    private let run: Task<Status, any Error>

    /// Starts `executable` with `arguments`.
    /// - Parameters:
    ///   - environment: the whole environment of the child; `nil` inherits this process's.
    ///   - stdin: bytes written to the child's standard input, which is then closed; `nil`: none.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, workingDirectory: String? = nil,
        stdin: [UInt8]? = nil, stdout: Destination = .discarded, stderr: Destination = .discarded
    ) async throws {
        let ended = Ended()
        let (started, starting) = AsyncStream.makeStream(of: pid_t.self)
        let output = try Self.open(stdout)
        let errors = try Self.open(stderr)
        let env = Self.environment(environment)
        self.run = Task {
            defer { starting.finish() }
            let result = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(arguments), environment: env,
                workingDirectory: workingDirectory.map { FilePath($0) }, input: .inputWriter,
                output: output, error: errors
            ) { execution in
                starting.yield(execution.processIdentifier.value)
                starting.finish()
                if let stdin { _ = try? await execution.standardInputWriter.write(stdin) }
                try? await execution.standardInputWriter.finish()
            }
            let status = Status(result.terminationStatus)
            ended.value.withLock { $0 = status }
            return status
        }
        self.ended = ended
        var first = started.makeAsyncIterator()
        guard let pid = await first.next() else {
            _ = try await self.run.value  // throws why it did not start
            throw NotStarted(executable: executable)
        }
        self.processIdentifier = pid
    }

    struct NotStarted: Error { var executable: String }

    /// The whole environment given, or this process's when `nil`.
    private static func environment(_ given: [String: String]?) -> Environment {
        given.map { Environment.custom(Dictionary(uniqueKeysWithValues: $0.map { (Environment.Key(stringLiteral: $0.key), $0.value) })) } ?? .inherit
    }

    /// How the process ended, shared by the task that runs it and its readers.
    private final class Ended: Sendable { let value = Mutex<Status?>(nil) }

    private static func open(_ destination: Destination) throws -> FileDescriptorOutput {
        switch destination {
        case .discarded:
            return .fileDescriptor(try FileDescriptor.open("/dev/null", .writeOnly), closeAfterSpawningProcess: true)
        case .file(let path):
            let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            return .fileDescriptor(fd, closeAfterSpawningProcess: true)
        }
    }

    /// How the process ended, or `nil` while it runs.
    public var status: Status? { self.ended.value.withLock { $0 } }

    public var isRunning: Bool { self.status == nil }

    /// Sends `signal` (default SIGKILL) to the process, if it still runs.
    public func kill(_ signal: Int32 = SIGKILL) {
        if self.isRunning { _ = Glibc.kill(self.processIdentifier, signal) }
    }

    /// Waits until the process has ended.
    public func waitForExit() async throws -> Status {
        try await self.run.value
    }

    /// Waits at most `timeout`; then kills the process and returns `nil`.
    public func waitForExit(timeout: Duration) async throws -> Status? {
        let deadline = ContinuousClock.now + timeout
        while self.isRunning {
            guard ContinuousClock.now < deadline else {
                self.kill()
                _ = try await self.run.value
                return nil
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await self.run.value
    }

    /// Runs `executable` to its end and returns its exit status with its output (stdout and stderr together).
    public static func output(
        of executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: [UInt8]? = nil
    ) async throws -> (status: Status, output: String) {
        let env = Self.environment(environment)
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(arguments), environment: env,
            input: .array(stdin ?? []), output: .string(limit: 16 << 20), error: .combinedWithOutput
        )
        return (Status(result.terminationStatus), result.standardOutput ?? "")
    }
}
