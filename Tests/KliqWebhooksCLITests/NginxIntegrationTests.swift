import Foundation
import KliqTestSupport
import KliqWebhooksTesting
import Testing

/// nginx → `kliq-webhooks serve`, with the site config shipped in `deploy/nginx/` (TLS and all), on
/// loopback. `.ci/run` installs nginx; without it (and outside CI) the test says so and stops.
@Suite(.serialized)
struct NginxIntegrationTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_nginx_test"
    var signer: Signer { Signer(secret: self.secret) }
    let fixtures: Fixtures = try! Fixtures()

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func find(_ tool: String) -> String? {
        ["/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/", "/sbin/"].map { $0 + tool }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool to completion; returns its status and output (stdout and stderr together).
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], stdin: [UInt8]? = nil) async throws -> (status: Int32, output: String) {
        let (status, output) = try await ChildProcess.output(of: tool, arguments, stdin: stdin)
        switch status {
        case .exited(let code): return (code, output)
        case .signalled(let signal): return (128 + signal, output)
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ServeProcess.Failure("no free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The shipped site config with this test's ports, certificate and log paths put in. Each edit must
    /// apply exactly once, so a change to the shipped file that this test no longer covers fails it.
    func siteConfig(upstream: Int, https: Int, http: Int) throws -> String {
        var text = try String(contentsOf: Self.repository.appendingPathComponent("deploy/nginx/kliq-webhooks.conf"), encoding: .utf8)
        let edits: [(String, String)] = [
            ("server 127.0.0.1:8080;", "server 127.0.0.1:\(upstream);"),
            ("listen 443 ssl;", "listen 127.0.0.1:\(https) ssl;"),
            ("listen 80;", "listen 127.0.0.1:\(http);"),
            ("/etc/letsencrypt/live/webhooks.example.com/fullchain.pem", self.dir.file("cert.pem")),
            ("/etc/letsencrypt/live/webhooks.example.com/privkey.pem", self.dir.file("key.pem")),
            ("/var/log/nginx/kliq-webhooks.access.log", self.dir.file("access.log")),
            ("/var/log/nginx/kliq-webhooks.error.log", self.dir.file("error.log")),
        ]
        for (from, to) in edits {
            let count = text.components(separatedBy: from).count - 1
            guard count == 1 else { throw ServeProcess.Failure("deploy/nginx/kliq-webhooks.conf: expected '\(from)' once, found it \(count) times") }
            text = text.replacingOccurrences(of: from, with: to)
        }
        return text
    }

    @Test func nginxInFrontOfServeWithTheShippedConfig() async throws {
        guard let nginx = Self.find("nginx"), let curlTool = Self.find("curl"), let openssl = Self.find("openssl") else {
            let ci = ProcessInfo.processInfo.environment["CI"] == "true"
            if ci { Issue.record("nginx, curl and openssl are needed: .ci/run installs them (apt-get install nginx-light curl openssl)") }
            print("NginxIntegrationTests: nginx, curl or openssl is missing; install nginx-light and curl to run this test")
            return
        }
        // A self-signed certificate for the TLS server block.
        let generated = try await Self.run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                                               "-keyout", self.dir.file("key.pem"), "-out", self.dir.file("cert.pem")])
        try #require(generated.status == 0, "\(generated.output)")

        let serve = try await ServeProcess(
            ["serve", "--port", "0", "--data-dir", self.dir.file("data"), "--trusted-proxy", "127.0.0.1", "--log-format", "json"],
            environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        let upstream = try await serve.waitUntilListening()
        let https = try Self.freePort()
        let http = try Self.freePort()
        try self.siteConfig(upstream: upstream, https: https, http: http).write(toFile: self.dir.file("site.conf"), atomically: true, encoding: .utf8)
        for temp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            try FileManager.default.createDirectory(atPath: self.dir.file("nginx-\(temp)"), withIntermediateDirectories: true)
        }
        try """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(self.dir.file("nginx.pid"));
            error_log \(self.dir.file("nginx-main.log")) info;
            events { worker_connections 64; }
            http {
                default_type application/octet-stream;
                client_body_temp_path \(self.dir.file("nginx-body"));
                proxy_temp_path \(self.dir.file("nginx-proxy"));
                fastcgi_temp_path \(self.dir.file("nginx-fastcgi"));
                uwsgi_temp_path \(self.dir.file("nginx-uwsgi"));
                scgi_temp_path \(self.dir.file("nginx-scgi"));
                include \(self.dir.file("site.conf"));
            }
            """.write(toFile: self.dir.file("nginx.conf"), atomically: true, encoding: .utf8)
        let check = try await Self.run(nginx, ["-t", "-c", self.dir.file("nginx.conf")])
        try #require(check.status == 0, "nginx -t: \(check.output)")

        let server = try await ChildProcess(nginx, ["-c", self.dir.file("nginx.conf")], stderr: .file(self.dir.file("nginx-main.log")))
        // SIGKILL: nginx in single-process mode keeps the signal mask it inherits, in which a test
        // runner's thread may block SIGTERM.
        defer { server.kill() }
        let base = "https://127.0.0.1:\(https)"
        // curl from 127.0.0.2: nginx sees that client; serve sees nginx (127.0.0.1, trusted).
        func curl(_ path: String, method: String = "GET", body: [UInt8]? = nil, headers: [String] = []) async throws -> (status: Int, headers: String, body: String) {
            var arguments = ["-sk", "--interface", "127.0.0.2", "-X", method, "-D", "-", "-o", self.dir.file("curl-body"), "-w", "%{http_code}"]
            for header in headers { arguments += ["-H", header] }
            if body != nil { arguments += ["--data-binary", "@-", "-H", "Content-Type: application/json"] }
            try? FileManager.default.removeItem(atPath: self.dir.file("curl-body"))
            let result = try await Self.run(curlTool, arguments + [base + path], stdin: body)
            let status = Int(result.output.suffix(3)) ?? 0
            let answer = (try? String(contentsOfFile: self.dir.file("curl-body"), encoding: .utf8)) ?? ""
            return (status, String(result.output.dropLast(3)), answer)
        }
        // Wait for nginx.
        let deadline = ContinuousClock.now + .seconds(15)
        while (try? await curl("/healthz").status) != 200 {
            guard ContinuousClock.now < deadline, server.isRunning else {
                throw ServeProcess.Failure("nginx did not come up: \((try? String(contentsOfFile: self.dir.file("nginx-main.log"), encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(100))
        }

        let fixture = try self.fixtures.load("cv.job.completed.shelf-detection-v2")
        let event = try fixture.event()
        let signature = "X-Kliq-Signature: \(self.signer.signature(for: fixture.body))"
        // A client that claims to be someone else: nginx overwrites the claim.
        let accepted = try await curl("/webhooks/kliq", method: "POST", body: fixture.body, headers: [signature, "X-Forwarded-For: 203.0.113.66"])
        #expect(accepted.status == 200)
        #expect(accepted.body.contains(#""status":"accepted""#))
        // The raw body reached verification and the disk unchanged through the proxy.
        #expect(FileManager.default.contents(atPath: self.dir.file("data/events/\(event.id).json")).map(Array.init) == fixture.body)

        let duplicate = try await curl("/webhooks/kliq", method: "POST", body: fixture.body, headers: [signature])
        #expect(duplicate.status == 200)
        #expect(duplicate.body.contains(#""status":"duplicate""#))

        let forged = try await curl("/webhooks/kliq", method: "POST", body: fixture.body, headers: ["X-Kliq-Signature: " + String(repeating: "ab", count: 32)])
        #expect(forged.status == 401)
        #expect(forged.body.contains(#""error":"invalid_signature""#))

        // nginx's body limit matches the receiver's: 413, JSON, and serve never sees it.
        let big = Array(repeating: UInt8(ascii: " "), count: 4 * 1024 * 1024 + 1)
        let tooLarge = try await curl("/webhooks/kliq", method: "POST", body: big, headers: [signature])
        #expect(tooLarge.status == 413)
        #expect(tooLarge.body.contains(#""error":"payload_too_large""#))

        #expect(try await curl("/readyz").status == 200)
        #expect(try await curl("/webhooks/kliq").status == 405)
        // Only the webhook path and health checks are exposed.
        for path in ["/metrics", "/", "/events", "/webhooks/kliq/extra", "/healthz/../metrics"] {
            let answer = try await curl(path)
            #expect(answer.status == 404, "\(path)")
            #expect(answer.body.contains(#""error":"not_found""#), "\(path): \(answer.body)")
        }

        // Serve logged the client nginx saw (127.0.0.2), not nginx and not the forged header, with nginx's request id.
        let requestID = accepted.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-request-id:") }
            .map { $0.dropFirst("x-request-id:".count).trimmingCharacters(in: .whitespaces) }
        #expect(requestID?.count == 32)
        let lines = serve.errors.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let line = try #require(lines.first { ($0["kliq.outcome"] as? String) == "accepted" })
        #expect(line["kliq.client"] as? String == "127.0.0.2")
        #expect(line["kliq.request_id"] as? String == requestID)
        #expect(line["kliq.event_id"] as? String == event.id)
        #expect(!serve.errors.contains("203.0.113.66"))
        #expect(lines.filter { ($0["kliq.outcome"] as? String) == "payload_too_large" }.isEmpty)

        // Plain HTTP only redirects to HTTPS.
        let redirect = try await Self.run(curlTool, ["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://127.0.0.1:\(http)/webhooks/kliq"])
        #expect(redirect.output.hasPrefix("301 https://"))
        #expect(try await serve.terminate() == 0)
    }
}
