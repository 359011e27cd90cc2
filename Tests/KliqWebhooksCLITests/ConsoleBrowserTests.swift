import Foundation
import KliqWebhooksTesting
import Testing

/// The operator console as its users meet it: driven in a real headless Chromium
/// (`Tests/Browser/console_browser.py`, selenium), and its admin API fuzzed against its own OpenAPI
/// document by schemathesis. `.ci/run` installs chromium, chromium-driver, selenium and schemathesis;
/// without them (and outside CI) the tests say so and stop.
@Suite(.serialized)
struct ConsoleBrowserTests {
    static let script = NginxIntegrationTests.repository.appendingPathComponent("Tests/Browser/console_browser.py").path
    let dir = TemporaryDirectory()

    static func missing(_ module: String, tools: [String]) async -> String? {
        for tool in tools where NginxIntegrationTests.find(tool) == nil { return tool }
        guard let python = PowerCutTests.python,
            (try? await NginxIntegrationTests.run(python, ["-c", "import \(module)"]).status) == 0
        else { return "python3 with \(module) (pip install \(module))" }
        return nil
    }

    static func skip(_ missing: String, _ what: String) {
        if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("\(what) needs \(missing); .ci/run installs it") }
        print("ConsoleBrowserTests: \(missing) is missing; \(what) did not run")
    }

    /// Filter, open, re-drive with confirmation, the SVG box count, script-bearing payloads that must not
    /// run. `KLIQ_SCREENSHOTS=DIR` also saves the README's pictures of each page there.
    @Test func theConsoleWorksInAHeadlessBrowser() async throws {
        if let missing = await Self.missing("selenium", tools: ["chromium", "chromedriver"]) { return Self.skip(missing, "the browser test") }
        var arguments = [Self.script, ServeProcess.executable.path]
        if let shots = ProcessInfo.processInfo.environment["KLIQ_SCREENSHOTS"] { arguments += ["--screenshots", shots] }
        let result = try await NginxIntegrationTests.run(try #require(PowerCutTests.python), arguments)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("20 checks, 0 failed"), "\(result.output)")
    }

    /// schemathesis generates requests from `/api/openapi.json` (the POSTs with the CSRF token) and checks
    /// every answer against it. Two checks are left out, each for a reason: a made-up cursor is refused
    /// with 400 (cursors are tokens only the API gives, which OpenAPI cannot say), and a method no route
    /// has gets 404 (Hummingbird's router), not 405.
    @Test func theAdminAPIKeepsToItsOpenAPIDocument() async throws {
        if let missing = await Self.missing("schemathesis", tools: []) { return Self.skip(missing, "the schemathesis run") }
        let serve = try await ServeProcess(["serve", "--port", "0", "--data-dir", self.dir.file("data"), "--exec", "exit 1", "--retry-attempts", "1"],
                                           environment: ["KLIQ_WEBHOOK_SECRET": "whsec_schema"], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let port = try #require(ConsoleServeTests.consolePort(serve))
        let body = try Fixtures().load("cv.job.completed.shelf-detection-v2").body
        #expect(try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", Signer(secret: "whsec_schema").signature(for: body))]).status == 200)
        let csrf = try #require(try await RawHTTPClient(port: port).request("GET", "/api/stats").header("X-CSRF-Token"))
        let result = try await NginxIntegrationTests.run(try #require(PowerCutTests.python), [
            "-m", "schemathesis.cli", "run", "http://127.0.0.1:\(port)/api/openapi.json", "--url", "http://127.0.0.1:\(port)", "--max-examples", "30",
            "--header", "X-CSRF-Token: \(csrf)", "--exclude-checks", "positive_data_acceptance,unsupported_method", "--seed", "1",
        ])
        #expect(result.status == 0, "\(result.output.suffix(6000))")
        #expect(try await serve.terminate() == 0)
    }
}
