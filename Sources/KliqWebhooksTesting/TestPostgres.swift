import Foundation
import Synchronization
import Testing

/// The PostgreSQL server this package's tests use: `KLIQ_TEST_DATABASE_URL` when set (`.ci/run` starts
/// one), else a throw-away cluster the test process starts with `.ci/postgres.sh` and stops when it
/// exits. Each test works in a schema of its own.
package enum TestPostgres {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The database URL, or `nil` (with the reason printed) when there is no server and none can be started;
    /// with `CI=true` that is a failure.
    package static func url() -> String? {
        switch self.server {
        case .success(let url): return url
        case .failure(let reason):
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("the PostgreSQL tests need a server: \(reason); .ci/run installs and starts one")
            } else {
                print("PostgreSQL tests not run: \(reason) (set KLIQ_TEST_DATABASE_URL, or install postgresql)")
            }
            return nil
        }
    }

    private static let server: Result<String, Reason> = {
        if let url = ProcessInfo.processInfo.environment["KLIQ_TEST_DATABASE_URL"], !url.isEmpty { return .success(url) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kliq-pg-\(getpid())").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repository.appendingPathComponent(".ci/postgres.sh").path, "start", directory]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return .failure(Reason(text: "cannot run .ci/postgres.sh: \(error)")) }
        let url = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, url.hasPrefix("postgres://") else {
            return .failure(Reason(text: problem.split(separator: "\n").last.map(String.init) ?? "postgres.sh failed"))
        }
        startedCluster.withLock { $0 = directory }
        atexit {
            guard let directory = startedCluster.withLock({ $0 }) else { return }
            let stop = Process()
            stop.executableURL = URL(fileURLWithPath: "/bin/bash")
            stop.arguments = [TestPostgres.repository.appendingPathComponent(".ci/postgres.sh").path, "stop", directory]
            try? stop.run()
            stop.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory)
        }
        return .success(url)
    }()

    struct Reason: Error { var text: String }

    /// A fresh schema name.
    package static func schema() -> String { "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16) }
}

private let startedCluster = Mutex<String?>(nil)

