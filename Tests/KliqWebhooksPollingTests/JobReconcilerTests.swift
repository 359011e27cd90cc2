import Foundation
import KliqWebhooks
import KliqWebhooksHummingbirdTesting
import KliqWebhooksPolling
import KliqWebhooksTesting
import Logging
import Testing

@Suite("Polling fallback: the reconciler against the stub API")
struct JobReconcilerTests {
    /// A receiver on a memory store with one recording handler for every event.
    func receiver(_ store: any EventStore = InMemoryEventStore(), logger: Logger = Logger(label: "test")) throws -> (Receiver, RecordingHandler) {
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret("whsec_polling_tests")]), store: store, logger: logger)
        let recorder = RecordingHandler()
        receiver.onAny(name: "recorder", recorder.handler)
        return (receiver, recorder)
    }

    func reconciler(_ receiver: Receiver, _ api: StubKliqAPI, after: Duration = .milliseconds(200), max: Duration = .seconds(5),
                    rate: Int? = nil, logger: Logger = Logger(label: "test")) -> JobReconciler {
        JobReconciler(receiver: receiver, client: client(api, rate: rate, logger: logger),
                      configuration: .init(pollAfter: after, maxInterval: max, scanInterval: .milliseconds(100)), logger: logger)
    }

    @Test func aLostWebhookIsFoundByPollingStoredAndHandledOnce() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        let (receiver, recorder) = try self.receiver()
        api.setJob("job_lost", status: .processing)
        try await withRunningServices([receiver, self.reconciler(receiver, api)]) {
            // Awaited, so tracked: nothing arrives by webhook, and the poll finds it.
            async let waited = receiver.waitForCompletion(jobId: "job_lost", timeout: .seconds(20))
            try await eventually("a first poll") { api.reads(of: "job_lost") >= 1 }
            api.setJob("job_lost", status: .completed, detections: 2, completedAt: "2026-04-28T12:03:00Z")
            let job = try await waited
            #expect(job.status == .completed && job.result?.detections.count == 2)
            #expect(try await receiver.store.trackedJobs(after: nil, limit: 10).isEmpty, "a wait that ended leaves nothing tracked")
            #expect(job.raw["source"]?.stringValue == "poll" && job.eventId == "poll_job_lost_completed")
            try await eventually("the handler") { recorder.events.count == 1 }
            let event = recorder.events[0]
            #expect(event.id == "poll_job_lost_completed" && event.type == .cvJobCompleted && event.isPolled)
            #expect(event.timestamp == "2026-04-28T12:03:00Z", "the job's own completion time, not the poll's")
            // The webhook comes after all: stored and answered, handlers not run again.
            let late = try await receiver.deliver(webhook("evt_late", job: "job_lost", at: "2026-04-28T12:03:01Z"), signedWith: signer)
            #expect(late.outcome == .accepted)
            await receiver.waitUntilIdle()
            try await Task.sleep(for: .milliseconds(300))
            #expect(recorder.eventIds == ["poll_job_lost_completed"])
            #expect(try await receiver.store.trackedJobs(after: nil, limit: 10).isEmpty, "a finished job is no longer tracked")
        }
    }

    @Test func aJobTheWebhookFinishedIsNeverPolled() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        let (receiver, recorder) = try self.receiver()
        api.setJob("job_hooked", status: .completed)
        try await withRunningServices([receiver, self.reconciler(receiver, api, after: .milliseconds(500))]) {
            try await receiver.track(jobId: "job_hooked")
            _ = try await receiver.deliver(webhook("evt_1", job: "job_hooked"), signedWith: signer)
            // Once due, the job is found finished in the store and untracked, without a request.
            try await eventually("the job untracked") { try await receiver.store.trackedJobs(after: nil, limit: 10).isEmpty }
            try await eventually("the handler") { recorder.eventIds == ["evt_1"] }
            try await Task.sleep(for: .seconds(1))
            #expect(api.requests.isEmpty)
            #expect(recorder.eventIds == ["evt_1"])
        }
    }

    @Test func anUnfinishedJobIsReadAtDoublingIntervals() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        let (receiver, _) = try self.receiver()
        api.setJob("job_slow", status: .processing)
        try await withRunningServices([receiver, self.reconciler(receiver, api, after: .milliseconds(200), max: .milliseconds(800))]) {
            try await receiver.track(jobId: "job_slow")
            try await eventually("five reads", timeout: .seconds(30)) { api.reads(of: "job_slow") >= 5 }
        }
        let times = api.requests.map(\.at)
        let gaps = zip(times.dropFirst(), times).map { ($0 - $1) }
        // 0.2 s after tracking, then after 0.4, 0.8, 0.8, …: never sooner (a loaded machine may make
        // them later, never more than a scan or two).
        #expect(times.count >= 5, "\(times.count) reads: \(gaps)")
        #expect(gaps.first.map { $0 >= .milliseconds(390) } == true, "\(gaps)")
        #expect(gaps.dropFirst().allSatisfy { $0 >= .milliseconds(790) }, "\(gaps)")
        // Uncapped, the fourth gap would be 3.2 s.
        #expect(gaps.count >= 4 && gaps[3] < .milliseconds(2500), "the interval stops doubling at the maximum: \(gaps)")
    }

    @Test func aJobTheAPIDoesNotKnowIsLoggedOnceAndLeftAfterThreeMoreReads() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        let log = CapturedLog()
        let (receiver, _) = try self.receiver(logger: log.logger)
        try await withRunningServices([receiver, self.reconciler(receiver, api, after: .milliseconds(100), max: .milliseconds(200), logger: log.logger)]) {
            try await receiver.track(jobId: "job_ghost")
            try await eventually("four reads") { api.reads(of: "job_ghost") >= 4 }
            try await Task.sleep(for: .seconds(1.5))
        }
        #expect(api.reads(of: "job_ghost") == 4, "once, then at most 3 more")
        #expect(log.all.filter { $0.contains("does not know tracked job job_ghost") }.count == 1)
    }

    @Test func aRefusedKeyStopsPollingWithOneErrorLine() async throws {
        let api = try await StubKliqAPI.start(apiKey: "the_right_key")
        defer { api.stop() }
        let log = CapturedLog()
        let (receiver, _) = try self.receiver(logger: log.logger)
        let reconciler = self.reconciler(receiver, api, after: .milliseconds(100), logger: log.logger)
        try await withRunningServices([receiver, reconciler]) {
            for n in 1...3 { try await receiver.track(jobId: "job_\(n)") }
            try await eventually("polling to stop") { reconciler.isStopped }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(reconciler.isStopped)
        #expect(api.requests.count <= 4, "\(api.requests.count) requests: polling went on after a 401")
        let errors = log.all.filter { $0.hasPrefix("error") }
        #expect(errors.count == 1 && errors[0].contains("refused the API key"), "\(errors)")
        #expect(!log.all.contains { $0.contains(apiKey) })
    }

    @Test func aFailedJobIsHandledAsFailedWithItsError() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        let (receiver, recorder) = try self.receiver()
        api.setJob("job_bad", status: .failed, completedAt: "2026-04-28T12:09:00Z")
        try await withRunningServices([receiver, self.reconciler(receiver, api)]) {
            try await receiver.track(jobId: "job_bad")
            try await eventually("the handler") { recorder.events.count == 1 }
        }
        let event = recorder.events[0]
        #expect(event.id == "poll_job_bad_failed" && event.type == .cvJobFailed)
        #expect(try event.cvJob().error?.description.contains("image could not be read") == true)
    }
}
