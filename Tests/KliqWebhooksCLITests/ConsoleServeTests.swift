import Foundation
import KliqWebhooksTesting
import Testing

/// `serve`'s console listener: where it listens, when it needs a token, and that the token never shows.
@Suite(.serialized)
struct ConsoleServeTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_console_test"
    let adminToken = "adm_9f2c1e_do_not_print"

    static func consolePort(_ serve: ServeProcess) -> Int? {
        serve.output.firstMatch(of: /console at http:\/\/[^:]+:(\d+)\//).flatMap { Int($0.1) }
    }

    func get(_ port: Int, _ path: String, token: String? = nil) async throws -> RawHTTPClient.Response {
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        return try await RawHTTPClient(port: port).send(Array((head + "\r\n").utf8))
    }

    @Test func theConsoleListensOnLoopbackAndShowsWhatWasReceived() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--data-dir", self.dir.file("data")],
                                           environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let lines = serve.output.split(separator: "\n")
        #expect(lines.count == 3 && lines[2].hasPrefix("kliq-webhooks console at http://127.0.0.1:"), "\(serve.output)")
        let port = try #require(Self.consolePort(serve))
        #expect(port != 9465, "the test set KLIQ_ADMIN_PORT=0: a free port")

        let body = Array(#"{"id":"evt_console_1","type":"visit.submitted","tenantId":"t","timestamp":"2026-04-28T12:00:00Z","data":{}}"#.utf8)
        let signature = Signer(secret: self.secret).signature(for: body)
        #expect(try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signature)]).status == 200)
        #expect(try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", "0000")]).status == 401)

        let stats = try await self.get(port, "/api/stats")
        #expect(stats.status == 200)
        let counts = try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any]
        #expect(counts?["accepted"] as? Int == 1)
        #expect((counts?["refused"] as? [String: Int])?["invalid_signature"] == 1)
        let event = try await self.get(port, "/api/events/evt_console_1")
        #expect(event.status == 200 && event.bodyText.contains(#""bytes":\#(body.count)"#))
        // A redrive from the console's own origin with its CSRF token is taken; from another origin it is not.
        let csrf = try #require(stats.header("X-CSRF-Token"))
        let console = RawHTTPClient(port: port)
        let ours = try await console.post("/api/events/evt_console_1/redrive", body: [],
                                          headers: [("X-CSRF-Token", csrf), ("Origin", "http://127.0.0.1:\(port)")])
        #expect(ours.status == 200, "\(ours.bodyText)")
        let theirs = try await console.post("/api/events/evt_console_1/redrive", body: [],
                                            headers: [("X-CSRF-Token", csrf), ("Origin", "http://127.0.0.1:\(port + 1)")])
        #expect(theirs.status == 403 && theirs.bodyText.contains("cross_origin"))
        // The webhook listener does not serve the admin API.
        #expect(try await serve.client.request("GET", "/api/stats").status == 404)
        #expect(try await serve.terminate() == 0)
    }

    @Test func offLoopbackTheConsoleNeedsATokenWhichNeverShows() async throws {
        let refused = try await ServeProcess(["serve", "--port", "0", "--admin-host", "0.0.0.0"],
                                             environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        #expect(try await refused.waitForExit() == 2)
        #expect(refused.errors.split(separator: "\n").count == 1 && refused.errors.contains("--admin-token-file PATH"), "\(refused.errors)")
        #expect(!refused.output.contains("listening"))

        let missing = try await ServeProcess(["serve", "--port", "0", "--admin-token-file", self.dir.file("nope")],
                                             environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        #expect(try await missing.waitForExit() == 2)
        #expect(missing.errors.contains("cannot read --admin-token-file"), "\(missing.errors)")

        let file = self.dir.file("admin-token")
        try (self.adminToken + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let printed = try await ServeProcess(["serve", "--admin-host", "0.0.0.0", "--admin-token-file", file, "--print-config"],
                                             environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        #expect(try await printed.waitForExit() == 0)
        #expect(printed.output.contains("admin-token-file = \(file)") && printed.output.contains("admin-host = 0.0.0.0"), "\(printed.output)")

        let serve = try await ServeProcess(["serve", "--port", "0", "--data-dir", self.dir.file("data"), "--admin-host", "0.0.0.0", "--admin-token-file", file],
                                           environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let port = try #require(Self.consolePort(serve))
        #expect(try await self.get(port, "/api/stats").status == 401)
        #expect(try await self.get(port, "/api/stats", token: "adm_wrong").status == 401)
        #expect(try await self.get(port, "/api/stats", token: self.adminToken).status == 200)
        #expect(try await serve.terminate() == 0)
        for text in [refused.output, refused.errors, missing.errors, printed.output, printed.errors, serve.output, serve.errors] {
            #expect(!text.contains(self.adminToken))
        }
    }

    @Test func theConsoleCanBeTurnedOff() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--admin-port", "off", "--data-dir", self.dir.file("data")],
                                           environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!serve.output.contains("console at"))
        #expect(try await serve.terminate() == 0)
    }
}
