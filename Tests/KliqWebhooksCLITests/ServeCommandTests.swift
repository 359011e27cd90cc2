import Foundation
import Hummingbird
import HummingbirdTesting
import KliqWebhooksTesting
import Logging
import Synchronization
import Testing

/// Black-box tests of `kliq-webhooks serve`: the built binary, real sockets, real files.
@Suite(.serialized)
struct ServeCommandTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_cli_test"
    var signer: Signer { Signer(secret: self.secret) }
    let fixtures: Fixtures = try! Fixtures()

    func post(_ serve: ServeProcess, _ body: [UInt8], signer: Signer? = nil) async throws -> RawHTTPClient.Response {
        try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", (signer ?? self.signer).signature(for: body))])
    }

    @Test func refusesToStartWithoutASecret() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0"], environment: [:], workingDirectory: self.dir.path)
        #expect(try await serve.waitForExit() == 2)
        let lines = serve.errors.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(serve.errors.contains("KLIQ_WEBHOOK_SECRET") && serve.errors.contains("--secret-file"))
        #expect(!FileManager.default.fileExists(atPath: self.dir.file("kliq-data")))
    }

    @Test func refusesAnUnreadableOrEmptySecretFile() async throws {
        let missing = try await ServeProcess(["serve", "--secret-file", self.dir.file("nope")], environment: [:], workingDirectory: self.dir.path)
        #expect(try await missing.waitForExit() == 2)
        #expect(missing.errors.contains("cannot read --secret-file"))
        #expect(FileManager.default.createFile(atPath: self.dir.file("empty"), contents: Data("# nothing\n\n".utf8)))
        let empty = try await ServeProcess(["serve", "--secret-file", self.dir.file("empty")], environment: [:], workingDirectory: self.dir.path)
        #expect(try await empty.waitForExit() == 2)
        #expect(empty.errors.contains("holds no secret"))
    }

    @Test func acceptsThenDeduplicatesAcrossARestartAndExitsCleanly() async throws {
        let env = ["KLIQ_WEBHOOK_SECRET": self.secret]
        let body = try self.fixtures.load("cv.job.completed.shelf-detection-v2").body
        let first = try await ServeProcess(["serve", "--port", "0"], environment: env, workingDirectory: self.dir.path)
        try await first.waitUntilListening()
        #expect(first.output.contains("http://127.0.0.1:\(first.port)/webhooks/kliq"))
        let accepted = try await self.post(first, body)
        #expect(accepted.status == 200)
        #expect(accepted.bodyText == #"{"status":"accepted","eventId":"evt_shelf_0001"}"# + "\n")
        #expect(self.dir.contents("kliq-data/events/evt_shelf_0001.json") == body)
        #expect(try await first.terminate() == 0)

        let second = try await ServeProcess(["serve", "--port", "0"], environment: env, workingDirectory: self.dir.path)
        try await second.waitUntilListening()
        let again = try await self.post(second, body)
        #expect(again.status == 200)
        #expect(again.bodyText.contains(#""status":"duplicate""#))
        #expect(try await second.client.request("GET", "/healthz").status == 200)
        #expect(try await second.client.request("GET", "/readyz").status == 200)
        #expect(try await second.terminate() == 0)
        #expect(!second.errors.contains(self.secret))
    }

    @Test func aSecondServerOnTheSameDataDirectoryIsRefused() async throws {
        let env = ["KLIQ_WEBHOOK_SECRET": self.secret]
        let first = try await ServeProcess(["serve", "--port", "0"], environment: env, workingDirectory: self.dir.path)
        try await first.waitUntilListening()
        let second = try await ServeProcess(["serve", "--port", "0"], environment: env, workingDirectory: self.dir.path)
        #expect(try await second.waitForExit() == 1)
        #expect(second.errors.contains("in use by process \(first.process.processIdentifier)"))
        #expect(try await first.terminate() == 0)
    }

    @Test func forwardHandlerPostsTheRawBodyWithItsSignatureAndHonoursTheEventsFilter() async throws {
        struct Received: Sendable {
            var body: [UInt8]
            var signature: String?
            var contentType: String?
        }
        let received = Mutex<[Received]>([])
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 22)
            let item = Received(body: Array(body.readableBytesView), signature: request.headers[.init("X-Kliq-Signature")!],
                                contentType: request.headers[.contentType])
            received.withLock { $0.append(item) }
            return .noContent
        }
        let sink = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                               logger: Logger(label: "sink", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await sink.test(.live) { client in
            let serve = try await ServeProcess(
                ["serve", "--port", "0", "--forward", "http://127.0.0.1:\(client.port!)/hook", "--events", "cv.job.completed, cv.job.failed"],
                environment: ["KLIQ_WEBHOOK_SECRET": "whsec_old,\(self.secret)"], workingDirectory: self.dir.path)
            try await serve.waitUntilListening()
            let completed = try self.fixtures.load("cv.job.completed.large").body
            let failed = try self.fixtures.load("cv.job.failed.error-string").body
            let visit = try self.fixtures.load("visit.submitted").body
            #expect(try await self.post(serve, completed).status == 200)
            #expect(try await self.post(serve, failed, signer: Signer(secret: "whsec_old")).status == 200)
            #expect(try await self.post(serve, visit).status == 200)
            #expect(try await self.post(serve, completed).bodyText.contains("duplicate"))
            #expect(try await eventually { received.withLock { $0.count } >= 2 })
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await serve.terminate() == 0)
            let got = received.withLock { $0 }
            #expect(got.count == 2)
            let byBody = Dictionary(got.map { ($0.body, $0) }, uniquingKeysWith: { a, _ in a })
            #expect(byBody[completed]?.signature == self.signer.signature(for: completed))
            #expect(byBody[failed]?.signature == Signer(secret: "whsec_old").signature(for: failed))
            #expect(byBody[completed]?.contentType == "application/json")
            #expect(byBody[visit] == nil)
        }
    }

    @Test func execHandlerGetsTheEventOnStdinAndItsIdsInTheEnvironmentButNotTheSecret() async throws {
        let out = self.dir.file("handled")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let command = #"cat > "$OUT/$KLIQ_EVENT_ID.json"; echo "$KLIQ_EVENT_ID $KLIQ_EVENT_TYPE [$KLIQ_JOB_ID] secret=${KLIQ_WEBHOOK_SECRET:-none}" >> "$OUT/env.txt""#
        // A retry a minute later: within the test each event's failing run is reported exactly once.
        let serve = try await ServeProcess(["serve", "--port", "0", "--exec", command, "--exec", "exit 3", "--retry-delay", "60"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret, "OUT": out], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let job = try self.fixtures.load("cv.job.completed.custom").body
        let visit = try self.fixtures.load("visit.submitted").body
        #expect(try await self.post(serve, job).status == 200)
        #expect(try await self.post(serve, visit).status == 200)
        #expect(try await eventually { (try? String(contentsOfFile: out + "/env.txt", encoding: .utf8))?.split(separator: "\n").count == 2 })
        #expect(try await eventually { serve.errors.components(separatedBy: "exited with status 3").count - 1 == 2 })
        #expect(try await serve.terminate() == 0)
        #expect(FileManager.default.contents(atPath: out + "/evt_custom_0001.json").map(Array.init) == job)
        #expect(FileManager.default.contents(atPath: out + "/evt_visit_0001.json").map(Array.init) == visit)
        let env = try String(contentsOfFile: out + "/env.txt", encoding: .utf8)
        #expect(env.contains("evt_custom_0001 cv.job.completed [job_custom_0001] secret=none"))
        #expect(env.contains("evt_visit_0001 visit.submitted [] secret=none"))
        // The failing command is reported, once per event, without stopping the other handler.
        #expect(serve.errors.components(separatedBy: "exited with status 3").count - 1 == 2)
    }

    @Test func secretFileRotationAcceptsEachLine() async throws {
        let file = self.dir.file("secrets")
        #expect(FileManager.default.createFile(atPath: file, contents: Data("whsec_new\nwhsec_previous\n".utf8)))
        let serve = try await ServeProcess(["serve", "--port", "0", "--secret-file", file, "--data-dir", self.dir.file("data")],
                                     environment: [:], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(serve.output.contains("2 secrets from --secret-file"))
        let a = try self.fixtures.load("observation.created").body
        let b = try self.fixtures.load("observation.updated").body
        #expect(try await self.post(serve, a, signer: Signer(secret: "whsec_new")).status == 200)
        #expect(try await self.post(serve, b, signer: Signer(secret: "whsec_previous")).status == 200)
        #expect(try await self.post(serve, b, signer: Signer(secret: "whsec_retired")).status == 401)
        #expect(self.dir.names("data/events") == ["evt_obs_created_0001.json", "evt_obs_updated_0001.json"])
        #expect(try await serve.terminate() == 0)
    }

    @Test func invalidOptionsFailFastWithOneClearMessage() async throws {
        let serve = try await ServeProcess(["serve", "--path", "no-slash"], environment: ["KLIQ_WEBHOOK_SECRET": self.secret],
                                     workingDirectory: self.dir.path)
        #expect(try await serve.waitForExit() != 0)
        #expect(serve.errors.contains("--path: path must start with '/'"))
    }

    @Test func sigtermLetsRunningHandlersFinishThenExitsZero() async throws {
        let out = self.dir.file("handled")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let serve = try await ServeProcess(["serve", "--port", "0", "--exec", #"sleep 1; touch "$OUT/done-$KLIQ_EVENT_ID""#],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret, "OUT": out], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(try await self.post(serve, try self.fixtures.load("cv.job.failed.error-object").body).status == 200)
        let status = try await serve.terminate()
        #expect(status == 0)
        #expect(FileManager.default.fileExists(atPath: out + "/done-evt_failed_0001"))
    }

    @Test func aHandlerStillRunningWhenTheGracePeriodEndsIsStoppedAndStaysPending() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--exec", "sleep 30", "--shutdown-grace", "0.5"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let response = try await self.post(serve, try self.fixtures.load("visit.submitted").body)
        #expect(response.status == 200)
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        #expect(try await serve.terminate() == 0)
        #expect(ContinuousClock.now - start < .seconds(5))
        let list = try await ServeProcess(["events", "list", "--pending"], environment: [:], workingDirectory: self.dir.path)
        #expect(try await list.waitForExit() == 0)
        #expect(list.output.contains("evt_visit_0001"))
        #expect(list.output.contains("exec#1: pending"))
    }

    @Test func anExecRunThatTakesTooLongIsStoppedAndRetriedThenDead() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--exec", "sleep 20", "--exec-timeout", "0.3",
                                      "--retry-attempts", "2", "--retry-delay", "0.05"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let start = ContinuousClock.now
        #expect(try await self.post(serve, try self.fixtures.load("visit.submitted").body).status == 200)
        var shown = ""
        #expect(try await eventually(timeout: .seconds(15)) {
            let show = try? await ServeProcess(["events", "show", "evt_visit_0001"], environment: [:], workingDirectory: self.dir.path)
            _ = try? await show?.waitForExit()
            shown = show?.output ?? ""
            return shown.contains("exec#1: dead (2 attempts)")
        })
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(shown.components(separatedBy: "ran longer than").count - 1 == 2)
        #expect(try await serve.terminate() == 0)
    }

    @Test func jsonLogsAreOneObjectALineWithTheDeliveryFields() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--log-format", "json"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(try await self.post(serve, try self.fixtures.load("cv.job.failed.error-object").body).status == 200)
        #expect(try await serve.terminate() == 0)
        let lines = serve.errors.split(separator: "\n")
        #expect(!lines.isEmpty)
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == lines.count)
        let accepted = try #require(objects.first { $0["message"] as? String == "delivery accepted" })
        #expect(accepted["kliq.event_id"] as? String == "evt_failed_0001")
        #expect(accepted["kliq.event_type"] as? String == "cv.job.failed")
        #expect(accepted["kliq.job_id"] as? String == "job_failed_0001")
        #expect(accepted["kliq.outcome"] as? String == "accepted")
        #expect(accepted["level"] as? String == "info")
        #expect((accepted["time"] as? String)?.hasPrefix("20") == true)
    }

    @Test func memoryStoreKeepsNothingOnDiskButStillDeduplicates() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--store", "memory"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(serve.output.contains("in memory only"))
        let body = try self.fixtures.load("visit.submitted").body
        #expect(try await self.post(serve, body).bodyText.contains("accepted"))
        #expect(try await self.post(serve, body).bodyText.contains("duplicate"))
        #expect(try await serve.terminate() == 0)
        #expect(!FileManager.default.fileExists(atPath: self.dir.file("kliq-data/events")))
        #expect(serve.errors.contains("nothing survives a restart"))
    }

    @Test func helpNeverShowsTheSecret() async throws {
        for arguments in [["--help"], ["serve", "--help"], ["sign", "--help"], ["replay", "--help"]] {
            let help = try await ServeProcess(arguments, environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
            #expect(try await help.waitForExit() == 0)
            #expect(help.output.contains("USAGE"))
            #expect(!(help.output + help.errors).contains(self.secret), "\(arguments)")
        }
    }

    /// A port already taken or an address this machine does not have: no line claims serve is up, one
    /// line says which listener and why, exit 1 at once (it hung until SIGKILL before).
    @Test func aListenerThatCannotBindFailsAtOnceWithOneLine() async throws {
        let first = try await ServeProcess(["serve", "--port", "0", "--data-dir", self.dir.file("bind-a")],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        let port = try await first.waitUntilListening()
        let cases: [([String], String)] = [
            (["--port", "\(port)"], "cannot listen on http://127.0.0.1:\(port)/webhooks/kliq: the port is in use by another process"),
            (["--port", "0", "--metrics-port", "\(port)"], "cannot listen on http://127.0.0.1:\(port)/metrics: the port is in use by another process"),
            (["--port", "0", "--admin-port", "\(port)"], "cannot listen on http://127.0.0.1:\(port)/: the port is in use by another process"),
            (["--host", "10.255.255.254", "--port", "0"], "this machine has no such address"),
            (["--host", "256.1.1.1", "--port", "0"], "'256.1.1.1' is neither an IP address nor a host name"),
        ]
        for (arguments, expected) in cases {
            let started = ContinuousClock.now
            let second = try await ServeProcess(["serve", "--data-dir", self.dir.file("bind-b")] + arguments,
                                          environment: ["KLIQ_WEBHOOK_SECRET": self.secret, "KLIQ_METRICS_PORT": "0"], workingDirectory: self.dir.path)
            #expect(try await second.waitForExit(timeout: .seconds(20)) == 1, "\(arguments)")
            #expect(ContinuousClock.now - started < .seconds(15))
            #expect(!second.output.contains("listening on") && !second.output.contains("metrics at") && !second.output.contains("console at"), "\(second.output)")
            let ours = second.errors.split(separator: "\n").filter { $0.hasPrefix("kliq-webhooks:") }
            #expect(ours.count == 1 && ours[0].contains(expected), "\(arguments): \(second.errors)")
        }
        #expect(try await first.terminate() == 0)
    }

    /// Every refusal is in the log — a 413 too, whose body the receiver never reads — and a signature
    /// that does not verify points to the tool that says why.
    @Test func refusalsAreLoggedWithWhatToDo() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--max-body-bytes", "100", "--data-dir", self.dir.file("refusals")],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let big = Array(#"{"id":"evt_big","type":"visit.submitted","data":{"pad":"\#(String(repeating: "x", count: 200))"}}"#.utf8)
        #expect(try await self.post(serve, big).status == 413)
        #expect(try await self.post(serve, Array(#"{"id":"evt_x","type":"visit.submitted"}"#.utf8), signer: Signer(secret: "whsec_other")).status == 401)
        #expect(try await serve.terminate() == 0)
        let lines = serve.errors.split(separator: "\n")
        #expect(lines.contains { $0.contains("kliq.outcome=payload_too_large") && $0.contains("over the limit of 100 bytes") }, "\(serve.errors)")
        #expect(lines.contains { $0.contains("kliq.outcome=invalid_signature") && $0.contains("kliq-webhooks verify") }, "\(serve.errors)")
    }
}
