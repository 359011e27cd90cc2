import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Synchronization
import Testing

struct ReceiverTests {
    let dir = TemporaryDirectory()

    @Test func eachHandlerRunsOncePerAcceptedEvent() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        let completed = RecordingHandler()
        let failed = RecordingHandler()
        let any = RecordingHandler()
        receiver.on(.cvJobCompleted, completed.handler)
        receiver.on(.cvJobFailed, failed.handler)
        receiver.onAny(any.handler)
        try await withRunningReceiver(receiver) {
            for fixture in try fixtures.all() {
                let delivery = try await receiver.deliver(fixture, signedWith: signer)
                #expect(delivery.outcome == .accepted)
            }
        }
        let all = try fixtures.all().map { try $0.event() }
        #expect(Set(completed.eventIds) == Set(all.filter { $0.type == .cvJobCompleted }.map(\.id)))
        #expect(completed.eventIds.count == all.filter { $0.type == .cvJobCompleted }.count)
        #expect(Set(failed.eventIds) == ["evt_failed_0001", "evt_failed_0002"])
        #expect(any.eventIds.count == all.count)
        #expect(any.eventIds.contains("evt_unknown_0001"))
    }

    @Test func duplicatesAreAcknowledgedButNotDispatched() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let recorder = RecordingHandler()
        receiver.onAny(recorder.handler)
        let fixture = try fixtures.load("cv.job.completed.custom")
        try await withRunningReceiver(receiver) {
            let first = try await receiver.deliver(fixture, signedWith: signer)
            let second = try await receiver.deliver(fixture, signedWith: signer)
            #expect(first.outcome == .accepted)
            #expect(second.outcome == .duplicate)
            let concurrent = await withTaskGroup(of: Outcome?.self) { group in
                for _ in 0..<20 { group.addTask { try? await receiver.deliver(fixture, signedWith: signer).outcome } }
                return await group.reduce(into: [Outcome?]()) { $0.append($1) }
            }
            #expect(concurrent.allSatisfy { $0 == .duplicate })
        }
        #expect(recorder.eventIds == ["evt_custom_0001"])
    }

    @Test func aFailingHandlerReachesOnErrorAndDoesNotStopTheOthers() async throws {
        struct Boom: Error {}
        let receiver = try makeReceiver(store: InMemoryEventStore(), retry: .init(maxAttempts: 2, initialDelay: .milliseconds(10), jitter: 0))
        let before = RecordingHandler()
        let after = RecordingHandler()
        let failures = Mutex<[HandlerFailure]>([])
        receiver.on(.cvJobFailed, before.handler)
        receiver.on(.cvJobFailed) { _ in throw Boom() }
        receiver.on(.cvJobFailed) { _ in try await Task.sleep(for: .milliseconds(20)) }
        receiver.onAny(after.handler)
        receiver.onError { failure in failures.withLock { $0.append(failure) } }
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(fixtures.load("cv.job.failed.error-object"), signedWith: signer)
            try await receiver.deliver(fixtures.load("cv.job.failed.error-string"), signedWith: signer)
        }
        #expect(Set(before.eventIds) == ["evt_failed_0001", "evt_failed_0002"])
        #expect(after.eventIds.count == 2)
        let seen = failures.withLock { $0 }
        #expect(seen.count == 4)   // two events, two attempts each
        #expect(seen.allSatisfy { $0.error is Boom && $0.handler == "on(cv.job.failed)#2" })
        #expect(Set(seen.map(\.event.id)) == ["evt_failed_0001", "evt_failed_0002"])
        #expect(seen.filter { $0.nextAttemptAt == nil }.map(\.attempt) == [2, 2])
        // The handlers that succeeded ran once per event, retries of the failing one notwithstanding.
        #expect(before.eventIds.count == 2)
    }

    @Test func handlersRunConcurrently() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let started = Mutex(0)
        // Two handlers that each wait for the other to have started: they deadlock unless run concurrently.
        for _ in 0..<2 {
            receiver.onAny { _ in
                started.withLock { $0 += 1 }
                let deadline = ContinuousClock.now + .seconds(5)
                while started.withLock({ $0 }) < 2 {
                    guard ContinuousClock.now < deadline else { throw CancellationError() }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
        }
        let failures = Mutex(0)
        receiver.onError { _ in failures.withLock { $0 += 1 } }
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(fixtures.load("visit.submitted"), signedWith: signer)
        }
        #expect(failures.withLock { $0 } == 0)
    }

    @Test func invalidSignaturesStoreNothing() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try makeReceiver(store: store)
        let body = try fixtures.load("cv.job.completed.shelf-detection-v2").body
        for signature in [nil, "", "nothex", Signer(secret: "whsec_other").signature(for: body)] {
            let error = await #expect(throws: WebhookError.self) { try await receiver.receive(body: body, signature: signature) }
            #expect(error?.code == .invalidSignature)
        }
        #expect(self.dir.names("events").isEmpty)
        #expect(self.dir.names("quarantine").isEmpty)
    }

    @Test func signedButMalformedBodiesAreQuarantined() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try makeReceiver(store: store)
        let body = Array(#"{"type":"cv.job.completed"}"#.utf8)
        let error = await #expect(throws: WebhookError.self) { try await receiver.deliver(body, signedWith: signer) }
        #expect(error?.code == .malformedPayload)
        #expect(error?.message.contains("\"id\"") == true)
        #expect(self.dir.names("events").isEmpty)
        #expect(self.dir.names("quarantine").count == 2)
    }

    @Test func oversizedBodiesAreRefused() async throws {
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: InMemoryEventStore(),
                                configuration: .init(maxBodyBytes: 100), logger: quietLogger)
        let body = try fixtures.load("cv.job.completed.shelf-detection-v2").body
        let error = await #expect(throws: WebhookError.self) { try await receiver.deliver(body, signedWith: signer) }
        #expect(error?.code == .payloadTooLarge)
    }

    @Test func waitForCompletionReturnsWhenTheJobArrives() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        try await withRunningReceiver(receiver) {
            async let job = receiver.waitForCompletion(jobId: "job_shelf_0001", timeout: .seconds(10))
            try await Task.sleep(for: .milliseconds(50))
            try await receiver.deliver(fixtures.load("observation.created"), signedWith: signer)
            try await receiver.deliver(fixtures.load("cv.job.completed.shelf-detection-v2"), signedWith: signer)
            let finished = try await job
            #expect(finished.status == .completed)
            #expect(finished.eventId == "evt_shelf_0001")
            #expect(finished.result?.detections.count == 4)
            // Tracked while awaited, untracked once it ended: nothing piles up in tracked/.
            #expect(try await receiver.store.trackedJobs(after: nil, limit: 10).isEmpty)
        }
    }

    @Test func aWaitTracksItsJobAndATimedOutOneStaysTracked() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        _ = try? await receiver.waitForCompletion(jobId: "job_late", timeout: .milliseconds(100))
        #expect(try await receiver.store.trackedJobs(after: nil, limit: 10).map(\.jobId) == ["job_late"])
        #expect(FileManager.default.fileExists(atPath: self.dir.path + "/tracked/job_late.json"))
    }

    @Test func waitForCompletionReturnsAtOnceWhenAlreadyFinished() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        try await receiver.deliver(fixtures.load("cv.job.failed.error-object"), signedWith: signer)
        let start = ContinuousClock.now
        let job = try await receiver.waitForCompletion(jobId: "job_failed_0001", timeout: .seconds(30))
        #expect(job.status == .failed)
        #expect(job.error?.code == "image_unreadable")
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test func waitForCompletionTimesOut() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let error = await #expect(throws: WebhookError.self) {
            try await receiver.waitForCompletion(jobId: "job_never", timeout: .milliseconds(100))
        }
        #expect(error?.code == .timeout)
    }

    @Test func waitForCompletionIgnoresUnfinishedStates() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let waited = Task { try await receiver.waitForCompletion(jobId: "job_p", timeout: .milliseconds(300)) }
        try await Task.sleep(for: .milliseconds(20))
        try await receiver.deliver(envelope(id: "evt_p", type: "cv.job.processing", jobId: "job_p", status: "processing"), signedWith: signer)
        let error = await #expect(throws: WebhookError.self) { try await waited.value }
        #expect(error?.code == .timeout)
    }

    @Test func manyWaitersForOneJobAllReturn() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        try await withThrowingTaskGroup(of: Job.self) { group in
            for _ in 0..<10 { group.addTask { try await receiver.waitForCompletion(jobId: "job_shelf_0001", timeout: .seconds(10)) } }
            try await Task.sleep(for: .milliseconds(50))
            try await receiver.deliver(fixtures.load("cv.job.completed.shelf-detection-v2"), signedWith: signer)
            var count = 0
            for try await job in group {
                #expect(job.id == "job_shelf_0001")
                count += 1
            }
            #expect(count == 10)
        }
    }
}
