@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

/// The testing-support library behaves as documented (it is what integrators' tests stand on).
struct TestingSupportTests {
    @Test func overridesChangeOnlyTheNamedValues() throws {
        let original = try fixtures.load("cv.job.completed.shelf-detection-v2")
        let changed = try original.with(eventId: "evt_other", timestamp: "2026-04-28T13:00:00Z", jobId: "job_42",
                                        status: .failed, model: .custom)
        let event = try changed.event()
        #expect(event.id == "evt_other")
        #expect(event.timestamp == "2026-04-28T13:00:00Z")
        let job = try event.cvJob()
        #expect(job.jobId == "job_42")
        #expect(job.status == .failed)
        #expect(job.model == .custom)
        #expect(job.result?.detections.count == 4)
        // Everything else is byte-identical: same length change as the values alone.
        let delta = ["evt_other", "2026-04-28T13:00:00Z", "job_42", "failed", "custom"].map(\.utf8.count).reduce(0, +)
            - ["evt_shelf_0001", "2026-04-28T12:00:00Z", "job_shelf_0001", "completed", "shelf-detection-v2"].map(\.utf8.count).reduce(0, +)
        #expect(changed.body.count == original.body.count + delta)
    }

    @Test func overridesAddAbsentFieldsAndRefuseNonEnvelopes() throws {
        let bare = Fixture(name: "bare", body: Array(#"{"type":"cv.job.completed","data":{}}"#.utf8))
        let event = try bare.with(eventId: "evt_new", jobId: "job_new").event()
        #expect(event.id == "evt_new")
        #expect(event.jobId == "job_new")
        #expect(throws: WebhookError.self) { try Fixture(name: "x", body: Array("[1]".utf8)).with(eventId: "e") }
    }

    @Test func aMissingFixtureNamesTheAvailableOnes() {
        let error = #expect(throws: WebhookError.self) { try fixtures.load("nope") }
        #expect(error?.message.contains("visit.submitted.json") == true)
    }

    @Test func storedFilesReadBackWhatTheStoreWrote() async throws {
        let dir = TemporaryDirectory()
        let receiver = try makeReceiver(store: try FileEventStore(directory: dir.path))
        receiver.onAny(name: "noop") { _ in }
        let fixture = try fixtures.load("cv.job.completed.custom")
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(fixture, signedWith: signer)
        }
        let files = StoredFiles(directory: dir.path)
        #expect(files.event(id: "evt_custom_0001") == fixture.body)
        #expect(try files.job(id: "job_custom_0001")?.status == .completed)
        #expect(try files.jobs().map(\.id) == ["job_custom_0001"])
        #expect(files.ledger(eventId: "evt_custom_0001")?.handlers["noop"]?.status == .succeeded)
        #expect(files.ledger(on: .done).count == 1)
        #expect(files.event(id: "evt_missing") == nil)
    }
}
