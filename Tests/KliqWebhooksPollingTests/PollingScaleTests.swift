import Foundation
import KliqWebhooks
import KliqWebhooksHummingbirdTesting
import KliqWebhooksPolling
import KliqWebhooksTesting
import Logging
import Testing

/// The number in issue #15: with 10,000 tracked jobs and webhooks for 99% of them, polling stays within
/// its rate and reaches only the 1% that no webhook finished. Run with KLIQ_POLLING_SCALE_REPORT=1 to
/// print the figures BENCHMARKS.md quotes.
@Suite("Polling at scale")
struct PollingScaleTests {
    @Test func tenThousandTrackedJobsPollOnlyTheOnePercentWithoutWebhooks() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        api.setLatency(.milliseconds(20))
        // The memory store: the claim is about what polling reads, and 10,000 fsync'd tracks would load
        // the disk every other test shares.
        let store = InMemoryEventStore()
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret("whsec_polling_tests")]), store: store, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let recorder = RecordingHandler()
        receiver.on(.cvJobCompleted, name: "recorder", recorder.handler)
        let total = 10_000, lost = 100, rate = 20
        let ids = (0..<total).map { String(format: "job_%05d", $0) }
        let lostIds = Set(ids.enumerated().filter { $0.offset % (total / lost) == 0 }.map(\.element))
        for id in ids {
            try await store.track(jobId: id)
            api.setJob(id, status: .completed, completedAt: "2026-04-28T12:00:00Z")
        }
        // Webhooks for 99%, 16 at a time; then the reconciler starts and finds all 10,000 tracked, 9,900
        // finished, 100 overdue.
        let started = ContinuousClock.now
        var delivered = Duration.zero
        let reconciler = JobReconciler(
            receiver: receiver, client: client(api, rate: rate),
            configuration: .init(pollAfter: .seconds(1), maxInterval: .seconds(60), scanInterval: .milliseconds(500), concurrency: 8),
            logger: Logger(label: "test"))
        try await withRunningServices([receiver]) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, id) in ids.enumerated() where !lostIds.contains(id) {
                    if index >= 16 { try await group.next() }
                    group.addTask { _ = try await receiver.deliver(webhook("evt_\(index)", job: id), signedWith: signer) }
                }
                try await group.waitForAll()
            }
            delivered = ContinuousClock.now - started
            let polling = Task { try await reconciler.run() }
            defer { polling.cancel() }
            try await eventually("every job handled", timeout: .seconds(120)) { recorder.events.count == total }
            try await Task.sleep(for: .seconds(1))
        }
        let elapsed = ContinuousClock.now - started
        let reads = api.requests.filter { $0.method == "GET" }
        let polledIds = Set(reads.map { String($0.path.split(separator: "/").last!) })
        let most = maxInAnySecond(reads.map(\.at))
        #expect(polledIds == lostIds, "polled \(polledIds.count) jobs; \(polledIds.subtracting(lostIds).count) had a webhook")
        #expect(reads.count == lost, "\(reads.count) reads for \(lost) jobs")
        #expect(most <= rate, "\(most) requests in one second, above --poll-rate \(rate)")
        #expect(Set(recorder.eventIds.filter { $0.hasPrefix("poll_") }).count == lost)
        #expect(recorder.events.count == total, "each job's final state handled once")
        if ProcessInfo.processInfo.environment["KLIQ_POLLING_SCALE_REPORT"] == "1" {
            print("polling scale: tracked \(total), webhooks \(total - lost), API reads \(reads.count) (of \(polledIds.count) jobs), most in one second \(most) (rate \(rate)), handled \(recorder.events.count), webhooks delivered in \(delivered), all handled after \(elapsed)")
        }
    }
}
