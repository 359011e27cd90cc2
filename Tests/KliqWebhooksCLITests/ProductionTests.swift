import Foundation
import Synchronization
import KliqWebhooksTesting
import Testing

/// `serve` as operators run it: configuration from flags, environment and file; metrics; secret
/// rotation on SIGHUP; draining on SIGTERM.
@Suite(.serialized)
struct ProductionTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_prod_test"
    var signer: Signer { Signer(secret: self.secret) }
    let fixtures: Fixtures = try! Fixtures()

    func write(_ name: String, _ text: String, mode: mode_t = 0o600) -> String {
        let path = self.dir.file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, mode)
        return path
    }

    func printConfig(_ arguments: [String], environment: [String: String]) async throws -> (status: Int32, out: String, err: String) {
        let serve = try await ServeProcess(["serve", "--print-config"] + arguments, environment: environment, workingDirectory: self.dir.path)
        let status = try await serve.waitForExit()
        return (status, serve.output, serve.errors)
    }

    /// The line for `name` in `--print-config` output, as (value, origin).
    func setting(_ name: String, in output: String) -> [(String, String)] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("\(name) = ") else { return nil }
            let parts = line.dropFirst(name.count + 3).split(separator: "#", maxSplits: 1)
            return (parts[0].trimmingCharacters(in: .whitespaces), parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
        }
    }

    @Test func commandLineBeatsEnvironmentBeatsFileBeatsDefault() async throws {
        let file = self.write("k.conf", """
            # a comment
            port = 7001
            path = /from/file
            data-dir = /srv/kliq
            exec = ./first.sh
            exec = ./second.sh, with a comma
            """)
        let env = ["KLIQ_PORT": "7002", "KLIQ_PATH": "/from/env", "KLIQ_TRUSTED_PROXY": "127.0.0.1, 10.0.0.0/8", "KLIQ_WEBHOOK_SECRET": "a,b"]
        let (status, out, err) = try await self.printConfig(["--config", file, "--port", "7003"], environment: env)
        #expect(status == 0, "\(err)")
        #expect(self.setting("port", in: out).first! == ("7003", "--port"))
        #expect(self.setting("path", in: out).first! == ("/from/env", "KLIQ_PATH"))
        #expect(self.setting("data-dir", in: out).first! == ("/srv/kliq", "\(file):4"))
        #expect(self.setting("host", in: out).first! == ("127.0.0.1", "default"))
        #expect(self.setting("max-queued-bytes", in: out).first! == ("33554432", "default"))
        #expect(self.setting("exec", in: out).map(\.0) == ["./first.sh", "./second.sh, with a comma"])
        #expect(self.setting("exec", in: out).map(\.1) == ["\(file):5", "\(file):6"])
        #expect(self.setting("trusted-proxy", in: out).map(\.0) == ["127.0.0.1", "10.0.0.0/8"])
        #expect(out.contains("# secrets: 2 from KLIQ_WEBHOOK_SECRET (values not shown)"))
        #expect(!out.contains("\na\n") && !out.contains("= a") && !out.contains(" b"))

        // KLIQ_CONFIG names the file when --config does not.
        let viaEnv = try await self.printConfig([], environment: ["KLIQ_CONFIG": file])
        #expect(self.setting("port", in: viaEnv.out).first! == ("7001", "\(file):2"))
        #expect(viaEnv.out.contains("# secrets: none: serve refuses to start"))
    }

    @Test func secretsNeverShowInPrintConfig() async throws {
        let secrets = self.write("secrets", "whsec_topsecret_one\nwhsec_topsecret_two\n")
        let (status, out, _) = try await self.printConfig(["--secret-file", secrets], environment: ["KLIQ_WEBHOOK_SECRET": "whsec_env_secret"])
        #expect(status == 0)
        #expect(!out.contains("topsecret") && !out.contains("whsec_env_secret"))
        #expect(out.contains("# secrets: 2 from secret-file \(secrets)"))
        let inFile = self.write("bad.conf", "webhook-secret = whsec_x\n")
        let refused = try await self.printConfig(["--config", inFile], environment: [:])
        #expect(refused.status == 2)
        #expect(!refused.err.contains("whsec_x"))
        #expect(refused.err.contains("secrets do not go in the config file"))
    }

    @Test(arguments: [
        (["--port", "70000"], [String: String](), "--port: '70000' is not a port"),
        ([], ["KLIQ_MAX_BODY_BYTES": "-5"], "KLIQ_MAX_BODY_BYTES: '-5' is not a positive number of bytes"),
        (["--max-queued-bytes", "lots"], [:], "--max-queued-bytes: 'lots' is not a positive number of bytes"),
        ([], ["KLIQ_STORE": "sqlite"], "KLIQ_STORE: store is files, postgres or memory, not 'sqlite'"),
        ([], ["KLIQ_STORE": "postgres"], "--store postgres needs the database: --database-url URL or KLIQ_DATABASE_URL"),
        (["--database-url", "mysql://kliq:pw-never-shown@db/kliq"], [:], "--database-url: the database URL must start with postgres://"),
        (["--database-url", "postgres://kliq:pw-never-shown@db"], [:], "--database-url: the database URL names no database"),
        ([], ["KLIQ_DATABASE_SCHEMA": "kliq; drop"], "KLIQ_DATABASE_SCHEMA: database-schema must be letters, digits and _"),
        (["--lease", "0"], [:], "--lease: '0' is not a number of seconds above 0"),
        ([], ["KLIQ_LOG_LEVEL": "loud"], "KLIQ_LOG_LEVEL: log-level is trace, debug, info"),
        ([], ["KLIQ_TRUSTED_PROXY": "127.0.0.1,proxy.local"], "KLIQ_TRUSTED_PROXY: 'proxy.local' is not an IP address or network"),
        ([], ["KLIQ_FORWARD": "ftp://x"], "KLIQ_FORWARD: forward needs an http:// or https:// URL, not 'ftp://x'"),
        (["--retry-delay", "soon"], [:], "--retry-delay: 'soon' is not a number of seconds"),
        (["--metrics-port", "sometimes"], [:], "--metrics-port: 'sometimes' is not a port (0…65535) or off"),
        ([], ["KLIQ_CONFIG": "/nonexistent/k.conf"], "cannot read config file /nonexistent/k.conf"),
        (["--retention", "30d"], [:], "retention needs replay-window"),
        (["--retention", "1h", "--replay-window", "1h"], [:], "retention (3600 s) must be at least twice replay-window (3600 s)"),
        (["--retention", "soon"], [:], "--retention: 'soon' is not a duration"),
        ([], ["KLIQ_REPLAY_WINDOW": "-3h"], "KLIQ_REPLAY_WINDOW: '-3h' is not a duration"),
    ])
    func invalidConfigurationFailsWithOneLine(_ arguments: [String], _ environment: [String: String], _ expected: String) async throws {
        let serve = try await ServeProcess(["serve"] + arguments, environment: environment.merging(["KLIQ_WEBHOOK_SECRET": self.secret]) { a, _ in a },
                                     workingDirectory: self.dir.path)
        #expect(try await serve.waitForExit() == 2)
        let lines = serve.errors.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(serve.errors.hasPrefix("kliq-webhooks: invalid configuration: \(expected)"), "\(serve.errors)")
        #expect(!serve.errors.contains("pw-never-shown"))
        #expect(!FileManager.default.fileExists(atPath: self.dir.file("kliq-data")))
    }

    /// The database URL's password is never printed: `--print-config` shows `***`, and the URL alone
    /// selects the PostgreSQL store, saying so.
    @Test func printConfigHidesTheDatabasePassword() async throws {
        let serve = try await ServeProcess(["serve", "--print-config"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret, "KLIQ_DATABASE_URL": "postgres://kliq:pw-never-shown@db.internal/kliq"],
                                     workingDirectory: self.dir.path)
        #expect(try await serve.waitForExit() == 0)
        #expect(serve.output.contains("database-url = postgres://kliq:***@db.internal/kliq"), "\(serve.output)")
        #expect(serve.output.contains("store = postgres") && serve.output.contains("# implied by the database URL"))
        #expect(!serve.output.contains("pw-never-shown") && !serve.errors.contains("pw-never-shown"))
    }

    @Test func configFileMistakesNameTheLine() async throws {
        let file = self.write("typo.conf", "port = 8080\n\nprot = 9\n")
        let (status, _, err) = try await self.printConfig(["--config", file], environment: [:])
        #expect(status == 2)
        #expect(err == "kliq-webhooks: invalid configuration: \(file):3: unknown setting 'prot' (settings are named as serve's long flags, e.g. port)\n")
        let twice = self.write("twice.conf", "port = 1\nport = 2\n")
        let again = try await self.printConfig(["--config", twice], environment: [:])
        #expect(again.err.contains("\(twice):1: 'port' is given 2 times; it takes one value"))
        let noEquals = self.write("noeq.conf", "port 8080\n")
        #expect(try await self.printConfig(["--config", noEquals], environment: [:]).err.contains("\(noEquals):1: expected 'name = value'"))
    }

    @Test func environmentConfiguresARunningServer() async throws {
        let serve = try await ServeProcess(["serve"], environment: [
            "KLIQ_WEBHOOK_SECRET": self.secret, "KLIQ_PORT": "0", "KLIQ_PATH": "/hooks/kliq", "KLIQ_DATA_DIR": self.dir.file("env-data"),
        ], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(serve.output.contains("/hooks/kliq (data directory \(self.dir.file("env-data"))"))
        let body = try self.fixtures.load("visit.submitted").body
        let response = try await serve.client.post("/hooks/kliq", body: body, headers: [("X-Kliq-Signature", self.signer.signature(for: body))])
        #expect(response.status == 200)
        #expect(FileManager.default.fileExists(atPath: self.dir.file("env-data/events/\(try self.fixtures.load("visit.submitted").event().id).json")))
        #expect(try await serve.terminate() == 0)
    }

    @Test func metricsCountOutcomesHandlersAndLatencyOnTheAdminPortOnly() async throws {
        let failOnce = self.dir.file("failed-once")
        let serve = try await ServeProcess(
            ["serve", "--port", "0", "--data-dir", self.dir.file("m-data"), "--retry-delay", "0.05",
             "--exec", "test -e \(failOnce) || { touch \(failOnce); exit 1; }"],
            environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let metrics = RawHTTPClient(port: try await self.metricsPort(serve))
        let body = try self.fixtures.load("cv.job.completed.shelf-detection-v2").body
        let headers = [("X-Kliq-Signature", self.signer.signature(for: body))]
        #expect(try await serve.client.post("/webhooks/kliq", body: body, headers: headers).status == 200)
        #expect(try await serve.client.post("/webhooks/kliq", body: body, headers: headers).status == 200)
        #expect(try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", String(repeating: "0", count: 64))]).status == 401)
        let big = Array(repeating: UInt8(0x20), count: 5_000_000)
        #expect(try await serve.client.post("/webhooks/kliq", body: big, headers: [("X-Kliq-Signature", self.signer.signature(for: big))]).status == 413)

        var text = ""
        let deadline = ContinuousClock.now + .seconds(20)
        repeat {
            text = String(decoding: try await metrics.request("GET", "/metrics").body, as: UTF8.self)
            if text.contains(#"kliq_webhooks_handler_runs_total{handler="exec#1",outcome="success"} 1"#),
               text.contains("kliq_webhooks_ledger_pending 0.0") { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        for expected in [
            #"kliq_webhooks_deliveries_total{outcome="accepted"} 1"#,
            #"kliq_webhooks_deliveries_total{outcome="duplicate"} 1"#,
            #"kliq_webhooks_deliveries_total{outcome="invalid_signature"} 1"#,
            #"kliq_webhooks_deliveries_total{outcome="payload_too_large"} 1"#,
            #"kliq_webhooks_events_total{type="cv.job.completed",outcome="accepted"} 1"#,
            #"kliq_webhooks_events_total{type="cv.job.completed",outcome="duplicate"} 1"#,
            #"kliq_webhooks_handler_runs_total{handler="exec#1",outcome="failure"} 1"#,
            #"kliq_webhooks_handler_runs_total{handler="exec#1",outcome="success"} 1"#,
            #"kliq_webhooks_handler_retries_total{handler="exec#1"} 1"#,
            "kliq_webhooks_request_duration_seconds_count 4",
            "kliq_webhooks_store_write_duration_seconds_count 2",
            "kliq_webhooks_ledger_pending 0.0",
            #"kliq_webhooks_build_info{version=""#,
            "# TYPE kliq_webhooks_request_duration_seconds histogram",
        ] {
            #expect(text.contains(expected), "missing \(expected) in:\n\(text)")
        }
        // The public port does not serve metrics.
        #expect(try await serve.client.request("GET", "/metrics").status == 404)
        #expect(try await serve.terminate() == 0)
    }

    @Test func theReplayWindowRefusesOldEventsWithAClearAnswer() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--data-dir", self.dir.file("r-data"), "--replay-window", "3600"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let old = try self.fixtures.load("visit.submitted")  // dated 2026-04
        let refused = try await self.post(serve, old.body, self.signer)
        #expect(refused.status == 400)
        #expect(String(decoding: refused.body, as: UTF8.self).contains(#""error":"outside_replay_window""#))
        #expect(!FileManager.default.fileExists(atPath: self.dir.file("r-data/events/\(try old.event().id).json")))
        let now = Date.now.formatted(.iso8601)
        let fresh = try old.with(eventId: "evt_fresh", timestamp: now)
        #expect(try await self.post(serve, fresh.body, self.signer).status == 200)
        #expect(try await serve.terminate() == 0)
    }

    @Test func retentionForgetsOldEventsAtStart() async throws {
        let data = self.dir.file("ret-data")
        let first = try await ServeProcess(["serve", "--port", "0", "--data-dir", data], environment: ["KLIQ_WEBHOOK_SECRET": self.secret],
                                     workingDirectory: self.dir.path)
        try await first.waitUntilListening()
        let fixture = try self.fixtures.load("visit.submitted")
        #expect(try await self.post(first, fixture.body, self.signer).status == 200)
        #expect(try await first.terminate() == 0)
        let file = data + "/events/\(try fixture.event().id).json"
        var times = [timespec(tv_sec: time(nil) - 3 * 86_400, tv_nsec: 0), timespec(tv_sec: time(nil) - 3 * 86_400, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)

        let second = try await ServeProcess(["serve", "--port", "0", "--data-dir", data, "--replay-window", "12h", "--retention", "1d"],
                                      environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await second.waitUntilListening()
        try await self.waitFor { !FileManager.default.fileExists(atPath: file) }
        try await self.waitFor { second.errors.contains("retention: forgot old events") }
        #expect(try await second.terminate() == 0)
    }

    @Test func metricsCanBeTurnedOff() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--metrics-port", "off"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!serve.output.contains("metrics at"))
        #expect(try await serve.terminate() == 0)
    }

    @Test func sighupRotatesSecretsFromTheFileWithoutARestart() async throws {
        let secrets = self.write("secrets", "whsec_before\n")
        let serve = try await ServeProcess(["serve", "--port", "0", "--secret-file", secrets, "--data-dir", self.dir.file("h-data")],
                                     environment: [:], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(!serve.errors.contains("chmod 600"))
        let first = try self.fixtures.load("visit.submitted").with(eventId: "evt_rotate_1").body
        #expect(try await self.post(serve, first, Signer(secret: "whsec_before")).status == 200)

        // A broken file keeps the current secrets.
        _ = FileManager.default.createFile(atPath: secrets, contents: Data("\n# none\n".utf8))
        kill(serve.process.processIdentifier, SIGHUP)
        try await self.waitFor { serve.errors.contains("secrets not reloaded") }
        let second = try self.fixtures.load("visit.submitted").with(eventId: "evt_rotate_2").body
        #expect(try await self.post(serve, second, Signer(secret: "whsec_before")).status == 200)

        _ = FileManager.default.createFile(atPath: secrets, contents: Data("whsec_after\n".utf8))
        kill(serve.process.processIdentifier, SIGHUP)
        try await self.waitFor { serve.errors.contains("secrets reloaded on SIGHUP") }
        let third = try self.fixtures.load("visit.submitted").with(eventId: "evt_rotate_3").body
        #expect(try await self.post(serve, third, Signer(secret: "whsec_before")).status == 401)
        #expect(try await self.post(serve, third, Signer(secret: "whsec_after")).status == 200)
        #expect(!serve.errors.contains("whsec_"))
        #expect(serve.process.isRunning)
        #expect(try await serve.terminate() == 0)
    }

    @Test func aSecretFileOthersCanReadIsWarnedAbout() async throws {
        let group = self.write("group", "whsec_group\n", mode: 0o640)
        let fine = try await ServeProcess(["serve", "--port", "0", "--secret-file", group], environment: [:], workingDirectory: self.dir.path)
        try await fine.waitUntilListening()
        #expect(!fine.errors.contains("chmod"))
        #expect(try await fine.terminate() == 0)
        let secrets = self.write("loose", "whsec_loose\n", mode: 0o644)
        let serve = try await ServeProcess(["serve", "--port", "0", "--secret-file", secrets], environment: [:], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(serve.errors.contains("other users can read or change the secret file; run: chmod 600 \(secrets)"))
        #expect(!serve.errors.contains("whsec_loose"))
        #expect(try await serve.terminate() == 0)
    }

    /// SIGTERM during an upload: the request in flight is still answered (and stored), new connections
    /// are refused, and the process exits 0.
    @Test func sigtermAnswersTheRequestInFlightThenRefusesNewOnes() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--data-dir", self.dir.file("d-data")],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        let port = try await serve.waitUntilListening()
        let fixture = try self.fixtures.load("cv.job.completed.shelf-detection-v2")
        let body = fixture.body
        let head = Array("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nX-Kliq-Signature: \(self.signer.signature(for: body))\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        let half = body.count / 2
        let pid = serve.process.processIdentifier
        let connectedWhileDraining = Mutex<Bool?>(nil)
        let response = try await RawHTTPClient(port: port).send([head + body[..<half], Array(body[half...])], pausing: .milliseconds(300)) {
            usleep(1_000_000)  // the server has read the head: the request is in flight
            kill(pid, SIGTERM)
            // The listener closes soon after the signal (polled, so a loaded machine does not fail the test).
            var refused = false
            for _ in 0..<50 where !refused {
                usleep(100_000)
                refused = !Self.canConnect(port: port)
            }
            connectedWhileDraining.withLock { $0 = !refused }
        }
        #expect(connectedWhileDraining.withLock { $0 } == false)
        #expect(response.status == 200, "\(serve.errors)")
        #expect(String(decoding: response.body, as: UTF8.self).contains("accepted"))
        #expect(FileManager.default.contents(atPath: self.dir.file("d-data/events/\(try fixture.event().id).json")).map(Array.init) == body)
        #expect(try await serve.waitForExit() == 0)
    }

    static func canConnect(port: Int) -> Bool {
        guard let fd = try? RawHTTPClient(port: port).connect() else { return false }
        close(fd)
        return true
    }

    func post(_ serve: ServeProcess, _ body: [UInt8], _ signer: Signer) async throws -> RawHTTPClient.Response {
        try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signer.signature(for: body))])
    }

    func waitFor(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw ServeProcess.Failure("condition not met in 10 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The metrics port from serve's "metrics at" line, which the metrics listener prints when it has
    /// bound — possibly a moment after the webhook listener's line.
    func metricsPort(_ serve: ServeProcess) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            if let line = serve.output.split(separator: "\n").first(where: { $0.contains("metrics at http://") }),
               let match = line.firstMatch(of: /:(\d+)\/metrics/), let port = Int(match.1) {
                return port
            }
            guard ContinuousClock.now < deadline else { throw ServeProcess.Failure("no metrics line in: \(serve.output)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
