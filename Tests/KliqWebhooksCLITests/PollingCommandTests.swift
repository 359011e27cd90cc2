import Foundation
import KliqWebhooks
import KliqWebhooksHummingbirdTesting
import KliqWebhooksTesting
import Testing

/// The polling fallback end to end: `serve` with KLIQ's API (the stub), `jobs track`, `jobs reconcile`,
/// `jobs start`, `jobs wait`, as processes on one data directory.
@Suite(.serialized)
struct PollingCommandTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_polling_cli"
    let key = "key_cli_SECRET_9f8e7d"

    var apiEnvironment: [String: String] { ["KLIQ_API_KEY": self.key, "KLIQ_TENANT_ID": "t_1", "KLIQ_WEBHOOK_SECRET": self.secret] }

    func cli(_ arguments: [String], _ api: StubKliqAPI?) async throws -> (status: Int32, output: String, errors: String) {
        var environment = self.apiEnvironment
        if let api { environment["KLIQ_API_URL"] = api.baseURL }
        let process = try await ServeProcess(arguments, environment: environment, workingDirectory: self.dir.path)
        let status = try await process.waitForExit()
        return (status, process.output, "\(process.errors)")
    }

    func serve(_ api: StubKliqAPI, handled: String, extra: [String] = []) async throws -> ServeProcess {
        try FileManager.default.createDirectory(atPath: handled, withIntermediateDirectories: true)
        let serve = try await ServeProcess(
            ["serve", "--port", "0", "--data-dir", self.dir.file("data"), "--poll-after", "1s", "--poll-rate", "5",
             "--exec", #"cat > "$OUT/$KLIQ_EVENT_ID.json""#] + extra,
            environment: self.apiEnvironment.merging(["KLIQ_API_URL": api.baseURL, "OUT": handled]) { $1 }, workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        return serve
    }

    func webhook(_ id: String, job: String) -> [UInt8] {
        Array(#"{"id":"\#(id)","type":"cv.job.completed","tenantId":"t_1","timestamp":"2026-04-28T12:30:00Z","data":{"jobId":"\#(job)","status":"completed","result":{"detections":[]}}}"#.utf8)
    }

    @Test func serveFindsATrackedJobNoWebhookFinishedAndHandlesItsFinalStateOnce() async throws {
        let api = try await StubKliqAPI.start(apiKey: self.key)
        defer { api.stop() }
        api.setJob("job_a", status: .completed, detections: 2, completedAt: "2026-04-28T12:00:00Z")
        api.setJob("job_b", status: .processing)
        let handled = self.dir.file("handled")
        let serve = try await self.serve(api, handled: handled)
        #expect(serve.output.contains("polling \(api.baseURL) as tenant t_1"))
        let tracked = try await self.cli(["jobs", "track", "job_a", "job_b", "--data-dir", self.dir.file("data")], nil)
        #expect(tracked.status == 0 && tracked.output.contains("tracking 2 jobs"), "\(tracked)")

        #expect(try await eventually { FileManager.default.fileExists(atPath: handled + "/poll_job_a_completed.json") })
        let job = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: self.dir.file("data/jobs/job_a.json")))))
        #expect(job["source"]?.stringValue == "poll" && job["status"]?.stringValue == "completed")
        #expect(job["result"]?["detections"]?.arrayValue?.count == 2)

        // The webhook arrives late: stored and answered, the handler not run again.
        let late = try await serve.client.post("/webhooks/kliq", body: self.webhook("evt_late_a", job: "job_a"),
                                               headers: [("X-Kliq-Signature", Signer(secret: self.secret).signature(for: self.webhook("evt_late_a", job: "job_a")))])
        #expect(late.status == 200)
        #expect(FileManager.default.fileExists(atPath: self.dir.file("data/events/evt_late_a.json")))

        // job_b finishes; `jobs reconcile` finds it now and hands it to serve. (Right after one of serve's
        // polls of job_b, its second or later: the next is at least 4 s away, so serve cannot find it first.)
        let polls = { api.requests.filter { $0.path.hasSuffix("/cv/jobs/job_b") }.count }
        let before = polls()
        #expect(try await eventually { polls() > before && polls() >= 2 })
        api.setJob("job_b", status: .failed, completedAt: "2026-04-28T12:05:00Z")
        let reconciled = try await self.cli(["jobs", "reconcile", "job_b", "job_missing", "--data-dir", self.dir.file("data")], api)
        #expect(reconciled.status == 0, "\(reconciled)")
        #expect(reconciled.output.contains("job_b none → failed\n"), "\(reconciled.output)")
        #expect(reconciled.output.contains("job_missing not found: KLIQ's API answered 404\n"), "\(reconciled.output)")
        #expect(try await eventually { FileManager.default.fileExists(atPath: handled + "/poll_job_b_failed.json") })

        try await Task.sleep(for: .seconds(1))
        // The metrics say what polling did.
        let metricsPort = try #require(serve.output.firstMatch(of: /metrics at http:\/\/127\.0\.0\.1:(\d+)\//).flatMap { Int($0.1) })
        let metrics = String(decoding: try await RawHTTPClient(port: metricsPort).request("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"kliq_webhooks_polls_total{outcome="finished"}"#), "\(metrics)")
        #expect(metrics.contains("kliq_webhooks_jobs_reconciled_total 2"), "\(metrics)")
        #expect(try await serve.terminate() == 0)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: handled))?.sorted() ?? []
        #expect(names == ["poll_job_a_completed.json", "poll_job_b_failed.json"], "each final state handled once: \(names)")
        for text in [serve.output, serve.errors, reconciled.output, reconciled.errors] { #expect(!text.contains(self.key)) }
    }

    @Test func jobsStartPrintsTheNewJobAndTracksIt() async throws {
        let api = try await StubKliqAPI.start(apiKey: self.key)
        defer { api.stop() }
        let data = self.dir.file("data-start")
        try FileManager.default.createDirectory(atPath: data + "/events", withIntermediateDirectories: true)
        let started = try await self.cli(["jobs", "start", "--observation", "obs_1", "--model", "shelf-detection-v2", "--data-dir", data], api)
        #expect(started.status == 0, "\(started)")
        let id = started.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.hasPrefix("job_stub"))
        #expect(FileManager.default.fileExists(atPath: data + "/tracked/\(id).json"))
        #expect(api.requests.first?.method == "POST")

        let refused = try await StubKliqAPI.start(apiKey: "another")
        defer { refused.stop() }
        let denied = try await self.cli(["jobs", "start", "--observation", "obs_1", "--model", "m", "--data-dir", data], refused)
        #expect(denied.status == 1 && denied.errors.contains("401") && !denied.errors.contains(self.key), "\(denied)")
        #expect(denied.errors.split(separator: "\n").count == 1 && !denied.errors.contains("USAGE"))
    }

    @Test func anAPIKeyWithoutATenantIsRefusedAtStartAndTheKeyIsNeverPrinted() async throws {
        let process = try await ServeProcess(["serve", "--port", "0", "--data-dir", self.dir.file("data-cfg")],
                                       environment: ["KLIQ_API_KEY": self.key, "KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        #expect(try await process.waitForExit() == 2)
        #expect(process.errors.contains("needs the tenant too") && !process.errors.contains(self.key), "\(process.errors)")
        let printed = try await self.cli(["serve", "--print-config", "--poll-after", "90s"], nil)
        #expect(printed.status == 0)
        #expect(printed.output.contains("kliq-tenant = t_1") && printed.output.contains("# KLIQ_TENANT_ID"), "\(printed.output)")
        #expect(printed.output.contains("poll-after = 90s") && printed.output.contains("KLIQ API key from KLIQ_API_KEY"), "\(printed.output)")
        #expect(!printed.output.contains(self.key))
        let config = self.dir.file("with-key.conf")
        #expect(FileManager.default.createFile(atPath: config, contents: Data("kliq-api-key = \(self.key)\n".utf8)))
        let refused = try await self.cli(["serve", "--config", config, "--print-config"], nil)
        #expect(refused.status == 2 && refused.errors.contains("the API key does not go in the config file"), "\(refused)")
        #expect(!refused.errors.contains(self.key))
        let bad = try await self.cli(["serve", "--poll-rate", "0"], nil)
        #expect(bad.status == 2 && bad.errors.contains("poll-rate"), "\(bad)")
    }
}

extension PollingCommandTests {
    /// On PostgreSQL: `jobs track` from anywhere, two replicas polling, `jobs reconcile` handing its find
    /// to whichever replica takes it from the database — and each final state handled once.
    @Test func replicasOnPostgreSQLShareTrackedJobsAndHandleEachFinalStateOnce() async throws {
        guard let url = TestPostgres.url() else { return }
        let schema = TestPostgres.schema()
        let api = try await StubKliqAPI.start(apiKey: self.key)
        defer { api.stop() }
        api.setJob("job_p1", status: .completed, completedAt: "2026-04-28T12:00:00Z")
        api.setJob("job_p2", status: .processing)
        let log = self.dir.file("pg-handled.log")
        var environment = self.apiEnvironment.merging(["KLIQ_API_URL": api.baseURL, "KLIQ_DATABASE_URL": url, "LOG": log]) { $1 }
        var replicas: [ServeProcess] = []
        for _ in 0..<2 {
            replicas.append(try await ServeProcess(["serve", "--port", "0", "--database-schema", schema, "--poll-after", "1s", "--exec", #"echo "$KLIQ_EVENT_ID" >> "$LOG""#],
                             environment: environment, workingDirectory: self.dir.path))
        }
        for replica in replicas { try await replica.waitUntilListening() }
        environment["KLIQ_API_URL"] = api.baseURL
        let store = ["--store", "postgres", "--database-schema", schema]
        let tracked = try await self.cli(["jobs", "track", "job_p1", "job_p2"] + store + ["--database-url", url], nil)
        #expect(tracked.status == 0, "\(tracked)")
        func handled() -> [String] { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        #expect(try await eventually { handled().contains("poll_job_p1_completed") })

        api.setJob("job_p2", status: .completed, completedAt: "2026-04-28T12:07:00Z")
        let reconciled = try await self.cli(["jobs", "reconcile", "job_p2"] + store + ["--database-url", url], api)
        #expect(reconciled.status == 0 && reconciled.output.contains("job_p2"), "\(reconciled)")
        #expect(try await eventually { handled().contains("poll_job_p2_completed") })
        try await Task.sleep(for: .seconds(2.5))
        for replica in replicas { #expect(try await replica.terminate() == 0) }
        #expect(handled().sorted() == ["poll_job_p1_completed", "poll_job_p2_completed"], "\(handled())")
        for text in replicas.flatMap({ [$0.output, $0.errors] }) + [reconciled.output, reconciled.errors] {
            #expect(!text.contains(self.key))
        }
    }
}

extension PollingCommandTests {
    /// `jobs wait` with the API options polls the job itself once it is overdue, and hands what it
    /// finds to the running serve (which has no API key here), which stores it; the wait then shows it.
    @Test func jobsWaitPollsAnOverdueJobItselfAndServeStoresIt() async throws {
        let api = try await StubKliqAPI.start(apiKey: self.key)
        defer { api.stop() }
        api.setJob("job_w", status: .completed, detections: 3, completedAt: "2026-04-28T12:00:00Z")
        let data = self.dir.file("data-wait")
        let serve = try await ServeProcess(["serve", "--port", "0", "--data-dir", data],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        #expect(!serve.output.contains("polling"), "this serve does not poll: the wait must")
        let waited = try await self.cli(["jobs", "wait", "job_w", "--data-dir", data, "--poll-after", "1s", "--timeout", "30"], api)
        #expect(waited.status == 0, "\(waited)")
        #expect(waited.output.contains("job          job_w") && waited.output.contains("detections   3"), "\(waited.output)")
        #expect(api.reads(of: "job_w") == 1)
        let job = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: data + "/jobs/job_w.json"))))
        #expect(job["source"]?.stringValue == "poll")
        #expect(try await serve.terminate() == 0)
    }
}
