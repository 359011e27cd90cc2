import Foundation
import KliqWebhooks
import KliqWebhooksTesting
import Testing

/// Both stores against the public conformance suite (`EventStoreConformance`), each rule a test case.
struct ConformanceTests {
    @Test(arguments: EventStoreConformance.Check.allCases)
    func inMemoryStore(_ check: EventStoreConformance.Check) async throws {
        try await EventStoreConformance(makeStore: { InMemoryEventStore() }).run(check)
    }

    @Test(arguments: EventStoreConformance.Check.allCases)
    func fileStore(_ check: EventStoreConformance.Check) async throws {
        let dir = TemporaryDirectory()
        try await EventStoreConformance(
            makeStore: { try FileEventStore(directory: dir.path) },
            reopen: { store in
                await (store as? FileEventStore)?.close()
                return try FileEventStore(directory: dir.path)
            }
        ).run(check)
    }

    /// The suite itself can fail: a store that answers every accept `accepted` is caught.
    @Test func aStoreThatBreaksTheRulesFails() async throws {
        actor Careless: EventStore {
            let inner = InMemoryEventStore()
            func accept(_ event: Event, handlers: [String]) async throws -> Acceptance {
                _ = await self.inner.accept(event, handlers: handlers)
                return .accepted(sequence: 1)
            }
            func claim(handlers: Set<String>, owner: String, limit: Int, maxBytes: Int, lease: Duration) async throws -> [Claim] {
                await self.inner.claim(handlers: handlers, owner: owner, limit: limit, maxBytes: maxBytes, lease: lease)
            }
            func renew(_ claim: Claim, lease: Duration) async throws -> Bool { await self.inner.renew(claim, lease: lease) }
            func settle(_ claim: Claim, outcomes: [String: DeliveryOutcome]) async throws -> Bool { await self.inner.settle(claim, outcomes: outcomes) }
            func release(_ claim: Claim) async { await self.inner.release(claim) }
            func pending(handlers: Set<String>) async throws -> Int { await self.inner.pending(handlers: handlers) }
            func redrive(_ filter: RedriveFilter) async throws -> Int { await self.inner.redrive(filter) }
            func deliveries(eventId: String) async throws -> LedgerEntry? { await self.inner.deliveries(eventId: eventId) }
            func deliveries(on shelf: LedgerEntry.Shelf, after cursor: String?, limit: Int) async throws -> [LedgerEntry] {
                await self.inner.deliveries(on: shelf, after: cursor, limit: limit)
            }
            func quarantine(body: [UInt8], reason: String) async throws {}
            func event(id: String) async throws -> Event? { await self.inner.event(id: id) }
            func events(after: UInt64, matching filter: EventFilter, limit: Int) async throws -> EventPage {
                await self.inner.events(after: after, matching: filter, limit: limit)
            }
            func job(id: String) async throws -> Job? { try await self.inner.job(id: id) }
            func jobs(after cursor: String?, limit: Int) async throws -> JobPage { try await self.inner.jobs(after: cursor, limit: limit) }
            func track(jobId: String) async throws { await self.inner.track(jobId: jobId) }
            func untrack(jobId: String) async throws { await self.inner.untrack(jobId: jobId) }
            func trackedJobs(after cursor: String?, limit: Int) async throws -> [TrackedJob] { await self.inner.trackedJobs(after: cursor, limit: limit) }
            func checkHealth() async throws {}
        }
        for check in [EventStoreConformance.Check.concurrentAcceptsOfOneId, .sequenceNumbers] {
            await #expect(throws: EventStoreConformance.Failure.self, "\(check)") {
                try await EventStoreConformance(makeStore: { Careless() }).run(check)
            }
        }
    }
}
