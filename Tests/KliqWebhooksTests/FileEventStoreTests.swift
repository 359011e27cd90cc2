import Foundation
import Synchronization
@testable import KliqWebhooks
import KliqTestSupport
import KliqWebhooksTesting
import Testing

struct FileEventStoreTests {
    let dir = TemporaryDirectory()

    @Test func storesEveryFixtureByteForByte() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        for fixture in try fixtures.all() {
            let event = try fixture.event()
            #expect(try await store.commit(event) == .accepted)
            #expect(self.dir.contents("events/\(event.id).json") == fixture.body, "\(fixture.name)")
        }
        #expect(self.dir.names("tmp").isEmpty)
    }

    @Test func concurrentCommitsOfOneIdAcceptExactlyOne() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let event = try Event(decoding: envelope(id: "evt_race"))
        let outcomes = await withTaskGroup(of: Outcome?.self) { group in
            for _ in 0..<50 { group.addTask { try? await store.commit(event) } }
            return await group.reduce(into: [Outcome?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == .accepted }.count == 1)
        #expect(outcomes.filter { $0 == .duplicate }.count == 49)
        #expect(self.dir.names("events") == ["evt_race.json"])
        #expect(self.dir.names("tmp").isEmpty)
    }

    @Test func deduplicationSurvivesReopeningTheStore() async throws {
        let event = try Event(decoding: envelope(id: "evt_restart"))
        do {
            let store = try FileEventStore(directory: self.dir.path)
            #expect(try await store.commit(event) == .accepted)
        }
        let reopened = try FileEventStore(directory: self.dir.path)
        #expect(try await reopened.commit(event) == .duplicate)
        #expect(try await reopened.event(id: "evt_restart")?.rawBody == event.rawBody)
    }

    /// (Another process owning it is refused with its pid: `ServeCommandTests`.)
    @Test func aSecondOwnerOfTheDirectoryInThisProcessIsRefused() throws {
        let first = try FileEventStore(directory: self.dir.path)
        let error = #expect(throws: WebhookError.self) { try FileEventStore(directory: self.dir.path) }
        #expect(error?.code == .storageUnavailable)
        #expect(error?.message == "the data directory is already open in this process; release the other FileEventStore before opening it again")
        _ = first
    }

    /// A process started while a store was open holds a copy of its lock until it execs: reopening the
    /// directory right after releasing the store still works. (Without the retry this failed within a
    /// few dozen rounds.)
    @Test func reopeningWhileThisProcessStartsOthersIsNotRefused() async throws {
        let spawner = Task.detached {
            while !Task.isCancelled { _ = try? await ChildProcess.output(of: "/bin/true", []) }
        }
        defer { spawner.cancel() }
        for round in 0..<150 {
            let store = try FileEventStore(directory: self.dir.path)
            #expect(try await store.commit(Event(decoding: envelope(id: "evt_spawn\(round)"))) == .accepted)
        }
    }

    @Test func writesTheJobInTheShapeOfGetCVJob() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let fixture = try fixtures.load("unknown-fields")
        _ = try await store.commit(try fixture.event())
        let bytes = try #require(self.dir.contents("jobs/job_extra_0001.json"))
        let job = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
        #expect(Set(job.keys) == ["id", "status", "model", "observationId", "tenantId", "result", "eventId", "updatedAt"])
        #expect(job["id"] as? String == "job_extra_0001")
        #expect(job["status"] as? String == "completed")
        #expect(job["eventId"] as? String == "evt_extra_0001")
        #expect(job["updatedAt"] as? String == "2026-04-28T12:10:00Z")
        #expect(job["tenantId"] as? String == "t_xyz789")
        // result is the exact bytes KLIQ sent, unknown fields and all, never re-encoded.
        let event = try fixture.event()
        let sentResult = Array(fixture.body[try #require(event.dataMembers["result"])])
        #expect(bytes.firstRange(of: sentResult) != nil)
        let stored = try #require(try await store.job(id: "job_extra_0001"))
        #expect(stored.status == .completed)
        #expect(stored.result?.detections.first?.attributes.hasNullPriceTag == true)
    }

    @Test func failedJobsKeepTheirErrorAndNoResult() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        _ = try await store.commit(try fixtures.load("cv.job.failed.error-string").event())
        let job = try #require(try await store.job(id: "job_failed_0002"))
        #expect(job.status == .failed)
        #expect(job.error?.message == "Model timed out after 300s")
        #expect(job.result == nil)
    }

    @Test func aLateEarlierEventNeverOverwritesALaterState() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let later = try Event(decoding: envelope(id: "evt_b", jobId: "job_order", status: "completed", timestamp: "2026-04-28T12:05:00Z"))
        let earlier = try Event(decoding: envelope(id: "evt_a", type: "cv.job.processing", jobId: "job_order", status: "processing",
                                                   timestamp: "2026-04-28T12:01:00Z"))
        #expect(try await store.commit(later) == .accepted)
        #expect(try await store.commit(earlier) == .accepted)
        let job = try #require(try await store.job(id: "job_order"))
        #expect(job.eventId == "evt_b")
        #expect(job.status == .completed)
        #expect(self.dir.names("events") == ["evt_a.json", "evt_b.json"])
    }

    @Test func theKeptStateDoesNotDependOnArrivalOrder() async throws {
        let events = try [
            envelope(id: "evt_1", jobId: "job_x", status: "processing", timestamp: "2026-04-28T12:00:00Z"),
            envelope(id: "evt_2", jobId: "job_x", status: "completed", timestamp: "2026-04-28T12:00:00Z"),
            envelope(id: "evt_3", jobId: "job_x", status: "failed", timestamp: "2026-04-28T11:00:00Z"),
        ].map(Event.init(decoding:))
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
            let dir = TemporaryDirectory()
            let store = try FileEventStore(directory: dir.path)
            for index in order { _ = try await store.commit(events[index]) }
            #expect(try await store.job(id: "job_x")?.eventId == "evt_2", "order \(order)")
        }
    }

    static let hostileIds = ["../../x", "a/b", "evt\u{0}nul", String(repeating: "e", count: 5000), ".hidden", "..", "évt", "~abc", ""]

    @Test(arguments: hostileIds.filter { !$0.isEmpty })
    func hostileIdsAreStoredUnderAnEncodedName(_ id: String) async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let event = try Event(decoding: envelope(id: id, jobId: id))
        #expect(try await store.commit(event) == .accepted)
        #expect(try await store.commit(event) == .duplicate)
        let names = self.dir.names("events")
        #expect(names.count == 1)
        #expect(names[0].hasPrefix("~") && names[0].count == 1 + 64 + 5)
        #expect(self.dir.contents("events/\(names[0])") == event.rawBody)
        #expect(try await store.event(id: id)?.id == id)
        #expect(try await store.job(id: id)?.id == id)
        // Nothing was written outside the data directory's own folders.
        #expect(Set(self.dir.names("")) == ["events", "index", "jobs", "journal", "ledger", "quarantine", "state", "tmp", "tracked"])
    }

    @Test func safeIdsAreTheirOwnNamesAndNeverCollideWithEncodedOnes() {
        #expect(StorageName.fileName(for: "evt_abc-1.2") == "evt_abc-1.2.json")
        #expect(StorageName.isSafe(String(repeating: "a", count: 200)))
        #expect(!StorageName.isSafe(String(repeating: "a", count: 201)))
        #expect(!StorageName.isSafe("~" + String(repeating: "0", count: 64)))
        #expect(StorageName.fileName(for: "../../x") == "~9cdf6a50100a862e14286c7a334296daf7da8b45d48e20302424ca729b62a31a.json")
    }

    @Test func quarantineKeepsTheBodyAndTheReason() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let body = Array("not json at all \u{1}".utf8)
        try await store.quarantine(body: body, reason: "body is not a JSON object")
        let names = self.dir.names("quarantine")
        #expect(names.count == 2)
        let bodyName = try #require(names.first { $0.hasSuffix(".body") })
        #expect(self.dir.contents("quarantine/\(bodyName)") == body)
        let note = try #require(self.dir.contents("quarantine/\(names.first { $0.hasSuffix(".json") }!)"))
        let reason = try JSONValue(parsing: note)
        #expect(reason["reason"] == .string("body is not a JSON object"))
        #expect(reason["body"] == .string(bodyName))
        #expect(reason["bytes"] == .number(Double(body.count)))
    }

    @Test func filesAndDirectoriesAreCreatedPrivate() async throws {
        let store = try FileEventStore(directory: self.dir.path + "/nested/data")
        _ = try await store.commit(try Event(decoding: envelope(id: "evt_mode")))
        let attributes = try FileManager.default.attributesOfItem(atPath: self.dir.file("nested/data/events/evt_mode.json"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let directory = try FileManager.default.attributesOfItem(atPath: self.dir.file("nested/data/events"))
        #expect((directory[.posixPermissions] as? Int) == 0o700)
    }

    @Test func leftoverTemporaryFilesAreRemovedAtStartUp() throws {
        do { _ = try FileEventStore(directory: self.dir.path) }
        #expect(FileManager.default.createFile(atPath: self.dir.file("tmp/crashed.tmp"), contents: Data("half".utf8)))
        _ = try FileEventStore(directory: self.dir.path)
        #expect(self.dir.names("tmp").isEmpty)
    }

    @Test func healthCheckPassesOnAWritableDirectory() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        try await store.checkHealth()
        #expect(self.dir.names("tmp").isEmpty)
    }

    @Test func anUnusableDataDirectoryIsAClearError() throws {
        #expect(FileManager.default.createFile(atPath: self.dir.file("plain-file"), contents: Data()))
        let error = #expect(throws: WebhookError.self) { try FileEventStore(directory: self.dir.file("plain-file")) }
        #expect(error?.code == .storageUnavailable)
        #expect(error?.message.contains("plain-file") == true)
    }
}
