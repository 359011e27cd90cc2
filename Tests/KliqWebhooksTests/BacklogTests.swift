import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Synchronization
import Testing

/// Events waiting for their handlers are held in memory only up to `maxQueuedBytes`; the rest wait in
/// the active ledger and are read back as the handlers catch up — each run once, a job's in order.
struct BacklogTests {
    let dir = TemporaryDirectory()

    /// What a handler saw: the events in the order it ran them, and the most the scheduler held meanwhile.
    final class Record: Sendable {
        let handled = Mutex<[(id: String, job: String, timestamp: String)]>([])
        let mostHeld = Mutex(0)
        let open = Mutex(false)

        func run(_ event: Event, _ receiver: Receiver) async throws {
            while !self.open.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            let held = receiver.scheduler.heldBytes
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
            #expect(receiver.scheduler.heldBytes <= bound)
            #expect(receiver.scheduler.heldBytes > 0)
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
        #expect(receiver.scheduler.heldBytes == 0)
    }

    @Test func recoveryAtStartReadsTheLedgerBackWithinTheBound() async throws {
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

    /// The scheduler alone: the bound, the sticky spill that keeps a job's events in order, a refill
    /// that skips what finished while it read, and one that must pick up events spilled meanwhile.
    @Test func spillAndRefillBookkeeping() throws {
        func item(_ id: String, job: String = "job_k", at second: Int = 0) throws -> Scheduler.Item {
            let event = try Event(decoding: envelope(id: id, jobId: job, timestamp: String(format: "2026-04-28T12:00:%02dZ", second)))
            return .init(event: event, entry: LedgerEntry(event: event, handlers: ["h"], acceptedAt: Timestamp.now().rfc3339))
        }
        let a = try item("evt_a", at: 1)
        let scheduler = Scheduler(limit: 4, capacity: 3 * a.cost + 10)
        // Before the first refill (the receiver's recovery) has read the ledger, events wait there.
        #expect(scheduler.submit(a) == .spilled)
        scheduler.beginRecovery()  // what it reads includes evt_a, on disk before it began
        #expect(scheduler.submit(a, refilling: true) == .held)
        #expect(scheduler.finishRefill(seen: ["evt_a"], complete: true).isEmpty)
        #expect(scheduler.submit(try item("evt_b", job: "job_l", at: 2)) == .held)
        #expect(scheduler.submit(try item("evt_m", job: "job_m", at: 2)) == .held)
        #expect(scheduler.submit(try item("evt_c", at: 3)) == .spilled)
        #expect(scheduler.heldBytes == 3 * a.cost)
        #expect(scheduler.pendingGauge == 4)  // three held, one waiting on disk
        // Room again, but an earlier event of job_k is on disk: later ones must wait behind it.
        scheduler.update(a, done: true)
        #expect(scheduler.submit(try item("evt_d", at: 4)) == .spilled)
        #expect(!scheduler.beginRefillIfDue())  // still over half
        scheduler.update(try item("evt_b", job: "job_l", at: 2), done: true)
        #expect(scheduler.beginRefillIfDue())
        #expect(!scheduler.beginRefillIfDue())  // one at a time
        // While the refill reads, evt_e is spilled (the read may miss it); evt_c, once read back and
        // finished, may still show as active in what the read returns, and is skipped.
        #expect(scheduler.submit(try item("evt_e", at: 5)) == .spilled)
        #expect(scheduler.submit(try item("evt_c", at: 3), refilling: true) == .held)
        #expect(scheduler.submit(try item("evt_c", at: 3), refilling: true) == .skipped)
        scheduler.update(try item("evt_c", at: 3), done: true)
        #expect(scheduler.submit(try item("evt_c", at: 3), refilling: true) == .skipped)
        #expect(scheduler.submit(try item("evt_d", at: 4), refilling: true) == .held)
        #expect(scheduler.finishRefill(seen: ["evt_c", "evt_d"], complete: true) == ["evt_e"])
        #expect(scheduler.submit(try item("evt_e", at: 5), refilling: true) == .held)
        #expect(scheduler.finishRefill(seen: ["evt_c", "evt_d", "evt_e"], complete: true).isEmpty)
        #expect(scheduler.pendingGauge == 3)  // evt_m, evt_d, evt_e held; nothing on disk
        // Nothing waits on disk any more: new events are held again.
        scheduler.update(try item("evt_d", at: 4), done: true)
        #expect(scheduler.submit(try item("evt_f", at: 6)) == .held)
    }
}
