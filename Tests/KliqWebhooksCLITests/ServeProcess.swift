import Foundation
import KliqWebhooksTesting

/// The built `kliq-webhooks` binary, run as a child process for black-box tests.
final class ServeProcess: @unchecked Sendable {
    /// The executable next to the test bundle (`swift build` puts both in the same folder).
    static var executable: URL {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("kliq-webhooks")
    }

    let process = Process()
    let stdout: String
    let stderr: String
    private(set) var port = 0

    /// Starts `kliq-webhooks ARGS…` with `environment` added to a clean one (PATH, HOME, and
    /// `KLIQ_METRICS_PORT=0`).
    init(_ arguments: [String], environment: [String: String], workingDirectory: String, executable: String? = nil) throws {
        self.stdout = workingDirectory + "/stdout-\(UUID().uuidString).log"
        self.stderr = workingDirectory + "/stderr-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: self.stdout, contents: nil)
        _ = FileManager.default.createFile(atPath: self.stderr, contents: nil)
        self.process.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? Self.executable
        self.process.arguments = arguments
        // A free metrics port, so parallel tests never collide on the default one.
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": workingDirectory, "KLIQ_METRICS_PORT": "0"]
        env.merge(environment) { $1 }
        self.process.environment = env
        self.process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        self.process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: self.stdout))
        self.process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: self.stderr))
        try launch(self.process)
    }

    /// Waits for the listening line and returns the bound port.
    @discardableResult
    func waitUntilListening(timeout: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = self.output.split(separator: "\n").first(where: { $0.contains("listening on http://") }),
                let match = line.firstMatch(of: /:(\d+)\//), let port = Int(match.1)
            {
                self.port = port
                return port
            }
            guard self.process.isRunning else { throw Failure("serve exited (\(self.process.terminationStatus)): \(self.errors)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure("serve did not print its listening line: \(self.errors)")
    }

    /// Sends SIGTERM and waits for the exit status.
    func terminate(timeout: Duration = .seconds(30)) async throws -> Int32 {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGTERM) }
        return try await self.waitForExit(timeout: timeout)
    }

    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning {
            guard ContinuousClock.now < deadline else {
                kill(self.process.processIdentifier, SIGKILL)
                throw Failure("serve did not exit in time")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return self.process.terminationStatus
    }

    var output: String { (try? String(contentsOfFile: self.stdout, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: self.stderr, encoding: .utf8)) ?? "" }

    var client: RawHTTPClient { RawHTTPClient(port: self.port) }

    deinit {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

