import Foundation
import KliqWebhooksTesting
import Testing

/// `kliq-webhooks events list/show/redeliver` against a data directory, with and without a running serve.
@Suite(.serialized)
struct EventsCommandTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_events_test"
    let fixtures: Fixtures = try! Fixtures()

    /// Runs `kliq-webhooks ARGS…` to completion in the test directory.
    func cli(_ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
        let process = try await ServeProcess(arguments, environment: [:], workingDirectory: self.dir.path)
        let status = try await process.waitForExit()
        return (status, process.output, process.errors)
    }

    func startServe() async throws -> ServeProcess {
        let serve = try await ServeProcess(
            ["serve", "--port", "0", "--exec", #"test -f "$OK""#, "--retry-attempts", "3", "--retry-delay", "0.05"],
            environment: ["KLIQ_WEBHOOK_SECRET": self.secret, "OK": self.dir.file("ok")], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        return serve
    }

    func deliver(_ serve: ServeProcess, _ name: String) async throws {
        let body = try self.fixtures.load(name).body
        let response = try await serve.client.post("/webhooks/kliq", body: body,
                                                   headers: [("X-Kliq-Signature", Signer(secret: self.secret).signature(for: body))])
        #expect(response.status == 200)
    }

    @Test func deadDeliveriesAreListedShownAndRedrivenThroughARunningServe() async throws {
        let serve = try await self.startServe()
        try await self.deliver(serve, "cv.job.failed.error-object")
        var listed = ""
        #expect(try await eventually {
            listed = (try? await self.cli(["events", "list", "--dead"]).output) ?? ""
            return listed.contains("evt_failed_0001")
        })
        #expect(listed.contains("exec#1: dead (3 attempts)"))
        let show = try await self.cli(["events", "show", "evt_failed_0001"])
        #expect(show.status == 0)
        #expect(show.output.contains("job        job_failed_0001"))
        #expect(show.output.components(separatedBy: "exited with status 1").count - 1 == 3)

        #expect(FileManager.default.createFile(atPath: self.dir.file("ok"), contents: Data()))
        let redeliver = try await self.cli(["events", "redeliver", "evt_failed_0001"])
        #expect(redeliver.status == 0)
        #expect(redeliver.output.contains("re-driven by the running serve (pid \(serve.process.processIdentifier))"))
        #expect(try await eventually {
            (try? await self.cli(["events", "show", "evt_failed_0001"]).output.contains("exec#1: succeeded (4 attempts)")) == true
        })
        let json = try await self.cli(["events", "show", "evt_failed_0001", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect((parsed?["event"] as? [String: Any])?["id"] as? String == "evt_failed_0001")
        #expect(try await self.cli(["events", "list", "--dead"]).output.contains("no dead deliveries"))
        #expect(try await serve.terminate() == 0)
    }

    @Test func deadDeliveriesRedrivenOfflineRunAtTheNextStart() async throws {
        let first = try await self.startServe()
        try await self.deliver(first, "cv.job.failed.error-string")
        #expect(try await eventually { (try? await self.cli(["events", "list", "--dead"]).output.contains("evt_failed_0002")) == true })
        #expect(try await first.terminate() == 0)

        let offline = try await self.cli(["events", "redeliver", "--dead"])
        #expect(offline.status == 0)
        #expect(offline.output.contains("1 event re-driven; the next serve start"))
        #expect(try await self.cli(["events", "list", "--pending"]).output.contains("evt_failed_0002"))

        #expect(FileManager.default.createFile(atPath: self.dir.file("ok"), contents: Data()))
        let second = try await self.startServe()
        #expect(try await eventually {
            (try? await self.cli(["events", "show", "evt_failed_0002"]).output.contains("exec#1: succeeded (4 attempts)")) == true
        })
        #expect(try await second.terminate() == 0)
    }

    /// `events list --accepted` pages through every stored event in acceptance order, while serve runs,
    /// printing the command for the next page (with `--data-dir`); filters narrow it.
    @Test func acceptedEventsArePagedInOrderWithTheNextCommand() async throws {
        let serve = try await self.startServe()
        let names = ["visit.submitted", "cv.job.completed.shelf-detection-v2", "observation.created", "cv.job.failed.error-string"]
        for name in names { try await self.deliver(serve, name) }
        let ids = try names.map { try self.fixtures.load($0).event().id }
        let data = self.dir.file("kliq-data")
        let first = try await self.cli(["events", "list", "--accepted", "--limit", "3", "--data-dir", data])
        #expect(first.status == 0)
        let rows = first.output.split(separator: "\n").dropFirst().prefix(3)
        #expect(rows.map { String($0.split(separator: " ")[1]) } == Array(ids.prefix(3)), "\(first.output)")
        #expect(rows.map { String($0.split(separator: " ")[0]) } == ["1", "2", "3"])
        let more = try #require(first.output.split(separator: "\n").last.map(String.init))
        #expect(more == "more: kliq-webhooks events list --accepted --after 3 --limit 3 --data-dir \(data)")
        let second = try await self.cli(Array(more.dropFirst("more: kliq-webhooks ".count).split(separator: " ").map(String.init)))
        #expect(second.output.contains(ids[3]) && !second.output.contains(ids[2]) && !second.output.contains("more:"), "\(second.output)")
        let failed = try await self.cli(["events", "list", "--accepted", "--type", "cv.job.failed", "--json", "--data-dir", data])
        let objects = failed.output.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 1 && objects.first??["id"] as? String == ids[3] && objects.first??["sequence"] as? Int == 4, "\(failed.output)")
        let misuse = try await self.cli(["events", "list", "--type", "x"])
        #expect(misuse.status != 0 && misuse.errors.contains("go with --accepted"))
        #expect(try await serve.terminate() == 0)
    }

    @Test func unknownEventsAndMissingDirectoriesAreClearErrors() async throws {
        let missing = try await self.cli(["events", "list", "--data-dir", self.dir.file("nowhere")])
        #expect(missing.status != 0)
        #expect(missing.errors.contains("is not a kliq-webhooks data directory"))
        #expect(missing.status == 1 && !missing.errors.contains("Usage"), "a wrong --data-dir is no misuse of the command line: \(missing.errors)")
        let first = try await self.startServe()
        #expect(try await first.terminate() == 0)
        let unknown = try await self.cli(["events", "show", "evt_nope"])
        #expect(unknown.status != 0)
        #expect(unknown.errors.contains("no event evt_nope") && !unknown.errors.contains("Usage"))
        let nothing = try await self.cli(["events", "redeliver", "evt_nope"])
        #expect(nothing.errors.contains("has no handler deliveries"))
    }
}

func eventually(timeout: Duration = .seconds(20), _ condition: () async -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return await condition()
}
