#if canImport(Glibc)
import Glibc
#endif
import Foundation
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
        // Run with system(3), output to files: the server it starts would inherit a pipe, and Foundation's
        // Process does not always notice its child ending when called off the main thread.
        let log = directory + ".log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = repository.appendingPathComponent(".ci/postgres.sh").path
        // Stopped (and its directory removed) by a watcher once this process has ended, however it ends.
        let status = system("/bin/bash '\(script)' start '\(directory)' --until-exit \(getpid()) >/dev/null 2>'\(log)'")
        let url = ((try? String(contentsOfFile: directory + "/url", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0, url.hasPrefix("postgres://") else {
            let problem = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return .failure(Reason(text: problem.split(separator: "\n").last.map(String.init) ?? "postgres.sh failed"))
        }
        return .success(url)
    }()

    struct Reason: Error { var text: String }

    /// A cluster of the test's own (for tests that restart the server), stopped when this process ends.
    /// - Returns: its URL and directory, or `nil` when none can be started (recorded as an issue).
    package static func ownCluster() -> (url: String, directory: String)? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kliq-pg-own-\(UUID().uuidString.prefix(8))").path
        let script = repository.appendingPathComponent(".ci/postgres.sh").path
        let status = system("/bin/bash '\(script)' start '\(directory)' --until-exit \(getpid()) >/dev/null 2>&1")
        guard status == 0, let url = try? String(contentsOfFile: directory + "/url", encoding: .utf8) else {
            Issue.record("could not start a PostgreSQL cluster of the test's own")
            return nil
        }
        return (url.trimmingCharacters(in: .whitespacesAndNewlines), directory)
    }

    /// Restarts a cluster from ``ownCluster()`` (fast shutdown: every connection is cut). - Returns: success.
    package static func restart(_ directory: String) -> Bool {
        system("/bin/bash '\(repository.appendingPathComponent(".ci/postgres.sh").path)' restart '\(directory)' >/dev/null 2>&1") == 0
    }

    /// A fresh schema name.
    package static func schema() -> String { "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16) }
}
