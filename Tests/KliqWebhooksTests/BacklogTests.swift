import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Synchronization
import Testing

/// Bodies of events being dispatched are held in memory only up to `maxQueuedBytes`; the rest wait in
/// the store and are claimed as the handlers catch up — each run once, a job's in order.
struct BacklogTests {
    let dir = TemporaryDirectory()

    /// What a handler saw: the events in the order it ran them, and the most the dispatcher held meanwhile.
    final class Record: Sendable {
        let handled = Mutex<[(id: String, job: String, timestamp: String)]>([])
        let mostHeld = Mutex(0)
        let open = Mutex(false)

        func run(_ event: Event, _ receiver: Receiver) async throws {
            while !self.open.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            let held = receiver.dispatch.bytes
            self.mostHeld.withLock { $0 = max($0, held) }
            self.handled.withLock { $0.append((event.id, event.jobId ?? "", event.timestamp ?? "")) }
        }

        /// Every id exactly once, and each job's events in timestamp order.
        func check(expected: Set<String>) {
            let handled = self.handled.withLock { $0 }
            #expect(handled.count == expected.count)
            #expect(Set(handled.map(\.id)) == expected)
            for (job, events) in Dictionary(grouping: handled, by: \.job) {
                let stamps = events.map(\.timestamp)
                #expect(stamps == stamps.sorted(), "\(job) ran out of order: \(stamps)")
            }
        }
    }

    static func receiver(_ store: any EventStore, bound: Int) throws -> Receiver {
        Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: store,
                 configuration: .init(shutdownGracePeriod: .seconds(5), maxQueuedBytes: bound), logger: quietLogger)
    }

    /// Event `n` of job `j`: later `n`, later timestamp.
    static func event(_ j: Int, _ n: Int, prefix: String = "evt_b") -> [UInt8] {
        envelope(id: "\(prefix)\(j)_\(n)", jobId: "job_b\(j)", timestamp: String(format: "2026-04-28T12:%02d:%02dZ", n / 60, n % 60))
    }

    @Test func aHandlerOutageLeavesTheBacklogOnDiskAndEveryEventRunsOnceInOrder() async throws {
        let bound = 8 * 1024
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try Self.receiver(store, bound: bound)
        let record = Record()
        receiver.onAny(name: "h") { event in try await record.run(event, receiver) }
        var expected = Set<String>()
        try await withRunningReceiver(receiver) {
            // The handler is down: 12 jobs × 10 events arrive.
            for n in 0..<10 {
                for j in 0..<12 {
                    try await receiver.deliver(Self.event(j, n), signedWith: signer)
                    expected.insert("evt_b\(j)_\(n)")
                }
            }
            #expect(receiver.dispatch.bytes <= bound)
            #expect(receiver.dispatch.bytes > 0)
            #expect(self.dir.names("ledger/active").count == 120)
            // It recovers while more arrive, for the same jobs and new ones.
            record.open.withLock { $0 = true }
            for n in 10..<14 {
                for j in 6..<16 {
                    try await receiver.deliver(Self.event(j, n), signedWith: signer)
                    expected.insert("evt_b\(j)_\(n)")
                }
            }
        }
        record.check(expected: expected)
        #expect(record.mostHeld.withLock { $0 } <= bound)
        #expect(self.dir.names("ledger/active").isEmpty)
        #expect(self.dir.names("ledger/done").count == expected.count)
        #expect(receiver.dispatch.bytes == 0)
    }

    @Test func recoveryAtStartClaimsWithinTheBound() async throws {
        var expected = Set<String>()
        do {
            // Accepted with a handler registered, never run: all of it is left in the active ledger.
            let receiver = try Self.receiver(try FileEventStore(directory: self.dir.path), bound: 1 << 20)
            receiver.onAny(name: "h") { _ in }
            for n in 0..<6 {
                for j in 0..<10 {
                    try await receiver.deliver(Self.event(j, n, prefix: "evt_s"), signedWith: signer)
                    expected.insert("evt_s\(j)_\(n)")
                }
            }
        }
        #expect(self.dir.names("ledger/active").count == 60)
        let bound = 4 * 1024
        let receiver = try Self.receiver(try FileEventStore(directory: self.dir.path), bound: bound)
        let record = Record()
        record.open.withLock { $0 = true }
        receiver.onAny(name: "h") { event in try await record.run(event, receiver) }
        try await withRunningReceiver(receiver) {}
        record.check(expected: expected)
        #expect(record.mostHeld.withLock { $0 } <= bound)
        #expect(self.dir.names("ledger/active").isEmpty)
    }

    /// One event larger than the bound is still held (alone) and handled.
    @Test func anEventLargerThanTheBoundStillRuns() async throws {
        let receiver = try Self.receiver(InMemoryEventStore(), bound: 64)
        let ran = Mutex(0)
        receiver.onAny(name: "h") { _ in ran.withLock { $0 += 1 } }
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(envelope(id: "evt_big1", jobId: "job_x"), signedWith: signer)
            try await receiver.deliver(envelope(id: "evt_big2", jobId: "job_y"), signedWith: signer)
        }
        #expect(ran.withLock { $0 } == 2)
    }
}
