import Foundation
import KliqTestSupport
import KliqWebhooksTesting

/// The built `kliq-webhooks` binary, run as a child process for black-box tests.
final class ServeProcess: @unchecked Sendable {
    /// The executable next to the test bundle (`swift build` puts both in the same folder).
    static var executable: URL {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return me.deletingLastPathComponent().appendingPathComponent("kliq-webhooks")
    }

    let process: ChildProcess
    let stdout: String
    let stderr: String
    private(set) var port = 0

    /// Starts `kliq-webhooks ARGS…` with `environment` added to a clean one (PATH, HOME, and
    /// `KLIQ_METRICS_PORT=0`, `KLIQ_ADMIN_PORT=0`).
    init(_ arguments: [String], environment: [String: String], workingDirectory: String, executable: String? = nil) async throws {
        self.stdout = workingDirectory + "/stdout-\(UUID().uuidString).log"
        self.stderr = workingDirectory + "/stderr-\(UUID().uuidString).log"
        // A free metrics port, so parallel tests never collide on the default one.
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": workingDirectory, "KLIQ_METRICS_PORT": "0", "KLIQ_ADMIN_PORT": "0"]
        env.merge(environment) { $1 }
        self.process = try await ChildProcess(
            executable ?? Self.executable.path, arguments, environment: env, workingDirectory: workingDirectory,
            stdout: .file(self.stdout), stderr: .file(self.stderr)
        )
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
            if let status = self.process.status { throw Failure("serve exited (\(status)): \(self.errors)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure("serve did not print its listening line: \(self.errors)")
    }

    /// Sends SIGTERM and waits for the exit status.
    func terminate(timeout: Duration = .seconds(30)) async throws -> Int32 {
        self.process.kill(SIGTERM)
        return try await self.waitForExit(timeout: timeout)
    }

    /// The exit code, or the signal's number when a signal ended it.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        switch try await self.process.waitForExit(timeout: timeout) {
        case nil: throw Failure("serve did not exit in time")
        case .exited(let code), .signalled(let code): return code
        }
    }

    var output: String { (try? String(contentsOfFile: self.stdout, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: self.stderr, encoding: .utf8)) ?? "" }

    var client: RawHTTPClient { RawHTTPClient(port: self.port) }

    deinit {
        self.process.kill()
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

