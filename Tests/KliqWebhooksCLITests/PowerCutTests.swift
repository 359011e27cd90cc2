import Foundation
import KliqWebhooksTesting
import Testing

/// A power cut, not only a SIGKILL: `serve` runs on a FUSE file system that, when the power is cut,
/// keeps only what was made durable by its own fsync (`Tests/PowerCut/powercutfs.py`; `syncfs` makes
/// nothing durable there). Then `serve` starts on what survived, and `Tests/PowerCut/power_cut.py`
/// checks that no acknowledged event is missing or empty, none is wrongly a duplicate, no job state went
/// back, and every acknowledged event reaches its handler. 0.5.1 fails it (acknowledged events lost).
/// `.ci/run` installs fuse3 and mfusepy; without them (and outside CI) the test says so and stops.
@Suite(.serialized)
struct PowerCutTests {
    static let script = NginxIntegrationTests.repository.appendingPathComponent("Tests/PowerCut/power_cut.py").path

    /// `python3` as the shell finds it (pip installs mfusepy for that one).
    static var python: String? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/python3" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func missing() async -> String? {
        guard FileManager.default.fileExists(atPath: "/dev/fuse") else { return "/dev/fuse" }
        guard NginxIntegrationTests.find("fusermount3") != nil else { return "fusermount3 (apt-get install fuse3)" }
        guard let python = Self.python,
            (try? await NginxIntegrationTests.run(python, ["-c", "import mfusepy"]).status) == 0
        else { return "python3 with mfusepy (pip install mfusepy)" }
        return nil
    }

    @Test func acknowledgedEventsSurviveAPowerCut() async throws {
        if let missing = await Self.missing() {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("the power-cut test needs \(missing); .ci/run installs it") }
            print("PowerCutTests: \(missing) is missing; the power-cut test did not run")
            return
        }
        let python = try #require(Self.python)
        let result = try await NginxIntegrationTests.run(python, [Self.script, ServeProcess.executable.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains(", 0 failed"), "\(result.output)")
        #expect(result.output.contains("power cut after"), "\(result.output)")
    }
}
