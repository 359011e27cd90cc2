import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The handler ledger: retries, dead letters, re-driving, recovery after restart, ordering, shutdown.
struct DeliveryGuaranteeTests {
    let dir = TemporaryDirectory()
    let fast = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(40), maxDelay: .seconds(1), multiplier: 2, jitter: 0)

    @Test func aHandlerThatFailsTwiceIsRetriedWithGrowingDelaysAndEndsSucceeded() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try makeReceiver(store: store, retry: .init(maxAttempts: 5, initialDelay: .milliseconds(100), multiplier: 5, jitter: 0))
        let attempts = Mutex<[(Int, ContinuousClock.Instant)]>([])
        receiver.on(.cvJobCompleted, name: "flaky") { _, context in
            attempts.withLock { $0.append((context.attempt, .now)) }
            if context.attempt < 3 { throw CancellationError() }
        }
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(fixtures.load("cv.job.completed.custom"), signedWith: signer)
        }
        let seen = attempts.withLock { $0 }
        #expect(seen.map(\.0) == [1, 2, 3])
        let first = seen[1].1 - seen[0].1
        let second = seen[2].1 - seen[1].1
        // A busy machine can only make a gap longer, so lower bounds are what prove the backoff: the
        // second wait is at least 500 ms, five times the first's 100 ms.
        #expect(first >= .milliseconds(95))
        #expect(second >= .milliseconds(495))
        let entry = try #require(try await store.deliveries(eventId: "evt_custom_0001"))
        #expect(entry.handlers["flaky"]?.status == .succeeded)
        #expect(entry.handlers["flaky"]?.attempts == 3)
        #expect(entry.handlers["flaky"]?.failures.count == 2)
        #expect(entry.shelf == .done)
        #expect(self.dir.names("ledger/done") == ["evt_custom_0001.json"])
        #expect(self.dir.names("ledger/active").isEmpty)
    }

    @Test func aHandlerThatAlwaysFailsEndsDeadAndCanBeRedriven() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try makeReceiver(store: store, retry: self.fast)
        let healthy = Mutex(false)
        let runs = Mutex<[Int]>([])
        receiver.on(.cvJobFailed, name: "crm") { _, context in
            runs.withLock { $0.append(context.attempt) }
            if !healthy.withLock({ $0 }) { throw WebhookError(.storageUnavailable, "CRM is down") }
        }
        receiver.onAny(name: "audit") { _ in }
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(fixtures.load("cv.job.failed.error-object"), signedWith: signer)
        }
        #expect(runs.withLock { $0 } == [1, 2, 3])
        let dead = try await store.allDeliveries(on: .dead)
        #expect(dead.map(\.eventId) == ["evt_failed_0001"])
        let state = try #require(dead.first?.handlers["crm"])
        #expect(state.status == .dead)
        #expect(state.failures.map(\.attempt) == [1, 2, 3])
        #expect(state.failures.allSatisfy { $0.error.contains("CRM is down") })
        #expect(dead.first?.handlers["audit"]?.status == .succeeded)

        // Later, the CRM is back and an operator re-drives the dead delivery (in a new process).
        healthy.withLock { $0 = true }
        let later = try makeReceiver(store: store, retry: self.fast)
        later.on(.cvJobFailed, name: "crm") { _, context in runs.withLock { $0.append(context.attempt) } }
        later.onAny(name: "audit") { _ in }
        let redriven = try await withRunningReceiver(later) {
            try await later.redeliver(eventId: "evt_failed_0001")
        }
        #expect(redriven)
        // Attempt numbers keep counting across a re-drive, so a handler can tell it has seen the event.
        #expect(runs.withLock { $0 } == [1, 2, 3, 4])
        let entry = try #require(try await store.deliveries(eventId: "evt_failed_0001"))
        #expect(entry.shelf == .done)
        #expect(entry.handlers["crm"]?.status == .succeeded)
        #expect(entry.handlers["audit"]?.attempts == 1)   // the succeeded one was not run again
        #expect(try await store.allDeliveries(on: .dead).isEmpty)
    }

    @Test func unfinishedDeliveriesRunAfterARestartAndSucceededOnesDoNot() async throws {
        let body = try fixtures.load("cv.job.completed.shelf-detection-v2")
        do {
            // A process that stores the event but dies before its handlers run (run() never starts).
            let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
            receiver.on(.cvJobCompleted, name: "alerts") { _ in }
            receiver.onAny(name: "archive") { _ in }
            #expect(try await receiver.deliver(body, signedWith: signer).outcome == .accepted)
        }
        #expect(self.dir.names("ledger/active") == ["evt_shelf_0001.json"])

        let store = try FileEventStore(directory: self.dir.path)
        let restarted = try makeReceiver(store: store)
        let seen = Mutex<[String]>([])
        restarted.on(.cvJobCompleted, name: "alerts") { event, context in seen.withLock { $0.append("alerts \(event.id) #\(context.attempt)") } }
        restarted.onAny(name: "archive") { event, context in seen.withLock { $0.append("archive \(event.id) #\(context.attempt)") } }
        let again = try await withRunningReceiver(restarted) {
            try await restarted.deliver(body, signedWith: signer).outcome
        }
        #expect(again == .duplicate)
        #expect(Set(seen.withLock { $0 }) == ["alerts evt_shelf_0001 #1", "archive evt_shelf_0001 #1"])

        // A third start has nothing left to do.
        let third = try makeReceiver(store: store)
        let more = RecordingHandler()
        third.onAny(name: "archive", more.handler)
        third.on(.cvJobCompleted, name: "alerts", more.handler)
        try await withRunningReceiver(third) {}
        #expect(more.events.isEmpty)
    }

    @Test func eventsOfOneJobPendingTogetherReachAHandlerInTimestampOrder() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try makeReceiver(store: store)
        let order = Mutex<[String]>([])
        receiver.onAny(name: "track") { event in
            try await Task.sleep(for: .milliseconds(5))
            order.withLock { $0.append(event.id) }
        }
        // Stored before the receiver runs, so they are pending together, in scrambled arrival order.
        for (id, job, time) in [("e3", "job_a", "12:03"), ("e1", "job_a", "12:01"), ("x1", "job_b", "12:00"), ("e2", "job_a", "12:02")] {
            try await receiver.deliver(envelope(id: id, type: "cv.job.processing", jobId: job, status: "processing",
                                                timestamp: "2026-04-28T\(time):00Z"), signedWith: signer)
        }
        try await withRunningReceiver(receiver) {}
        let seen = order.withLock { $0 }
        #expect(seen.filter { $0.hasPrefix("e") } == ["e1", "e2", "e3"])
        #expect(seen.contains("x1"))
    }

    /// Where a crash left two copies of an entry (done/ written, active/ not yet removed), or an entry
    /// whose event was never stored (died between the two writes of an accept), start-up keeps the
    /// higher revision and drops what was never acknowledged.
    @Test func aCrashBetweenLedgerWritesIsResolvedByRevision() async throws {
        do {
            let store = try FileEventStore(directory: self.dir.path)
            let event = try Event(decoding: envelope(id: "evt_rev"))
            #expect(try await store.accept(event, handlers: ["h"]).outcome == .accepted)
            let stale = try #require(self.dir.contents("ledger/active/evt_rev.json"))
            var entry = try #require(try await store.deliveries(eventId: "evt_rev"))
            entry.recordSuccess(of: "h")
            entry.revision += 1
            try await store.updateLedger(entry)
            #expect(self.dir.names("ledger/active").isEmpty)
            // As if the process died after writing done/ but before removing active/.
            #expect(FileManager.default.createFile(atPath: self.dir.file("ledger/active/evt_rev.json"), contents: Data(stale)))
            #expect(FileManager.default.createFile(atPath: self.dir.file("ledger/active/evt_orphan.json"), contents: Data(stale)))
        }
        let store = try FileEventStore(directory: self.dir.path)
        #expect(try await store.allDeliveries(on: .active).isEmpty)
        #expect(self.dir.names("ledger/active").isEmpty)
        #expect(try await store.deliveries(eventId: "evt_rev")?.handlers["h"]?.status == .succeeded)
        #expect(try await store.pending(handlers: ["h"]) == 0)
    }

    @Test func eventsWithoutHandlersWriteNoLedger() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        try await receiver.deliver(fixtures.load("visit.submitted"), signedWith: signer)
        #expect(self.dir.names("ledger/active").isEmpty && self.dir.names("ledger/done").isEmpty)
    }

    @Test func shutdownWaitsForRunningHandlersOnlyForTheGracePeriodAndKeepsThemPending() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try makeReceiver(store: store, grace: .milliseconds(200))
        let started = Mutex(false)
        receiver.onAny(name: "slow") { _ in
            started.withLock { $0 = true }
            try await Task.sleep(for: .seconds(30))
        }
        let group = ServiceGroup(configuration: .init(services: [receiver], logger: quietLogger))
        // Timed from the shutdown on: start-up and delivery share two cores with the other suites.
        var triggered = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await receiver.deliver(fixtures.load("observation.created"), signedWith: signer)
            #expect(try await eventually { started.withLock { $0 } })
            triggered = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(ContinuousClock.now - triggered < .seconds(5))
        let entry = try #require(try await store.deliveries(eventId: "evt_obs_created_0001"))
        #expect(entry.shelf == .active)
        #expect(entry.handlers["slow"]?.status == .pending)
        #expect(entry.handlers["slow"]?.attempts == 0)
    }

    @Test func retryDelaysGrowExponentiallyWithBoundedJitterAndStopAtTheLimit() {
        let policy = RetryPolicy(maxAttempts: 5, initialDelay: .seconds(1), maxDelay: .seconds(5), multiplier: 2, jitter: 0.5)
        for _ in 0..<100 {
            let d1 = policy.delay(afterAttempt: 1)!.seconds
            let d3 = policy.delay(afterAttempt: 3)!.seconds
            let d4 = policy.delay(afterAttempt: 4)!.seconds
            #expect((0.5...1.0).contains(d1))
            #expect((2.0...4.0).contains(d3))
            #expect((2.5...5.0).contains(d4))
        }
        #expect(policy.delay(afterAttempt: 5) == nil)
    }

    @Test func aRetryingEventHoldsBackLaterEventsOfItsJobButNotOtherJobs() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore(),
                                        retry: .init(maxAttempts: 3, initialDelay: .milliseconds(300), jitter: 0))
        let seen = Mutex<[String]>([])
        receiver.onAny(name: "ordered") { event, context in
            seen.withLock { $0.append("\(event.id)#\(context.attempt)") }
            if event.id == "e1", context.attempt == 1 { throw CancellationError() }
        }
        for (id, job, time) in [("e2", "job_a", "12:02"), ("e1", "job_a", "12:01"), ("x1", "job_b", "12:05")] {
            try await receiver.deliver(envelope(id: id, type: "cv.job.processing", jobId: job, status: "processing",
                                                timestamp: "2026-04-28T\(time):00Z"), signedWith: signer)
        }
        try await withRunningReceiver(receiver) {}
        let order = seen.withLock { $0 }
        #expect(order.filter { !$0.hasPrefix("x") } == ["e1#1", "e1#2", "e2#1"])
        #expect(order.firstIndex(of: "x1#1")! < order.firstIndex(of: "e1#2")!)
    }

    /// A handler that runs longer than the lease keeps it: the receiver renews running leases, so another
    /// dispatcher sharing the store takes nothing over, and the handler runs once.
    @Test func aHandlerRunningPastTheLeaseKeepsItByRenewal() async throws {
        let store = InMemoryEventStore()
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: store,
                                configuration: .init(lease: .seconds(3)), logger: quietLogger)
        let runs = Mutex(0)
        receiver.onAny(name: "slow") { _ in
            runs.withLock { $0 += 1 }
            try await Task.sleep(for: .seconds(7.5))
        }
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(envelope(id: "evt_slow"), signedWith: signer)
            #expect(try await eventually { runs.withLock { $0 } == 1 })
            // Renewals come every second, so a busy machine may delay one by up to two before the lease
            // runs out.
            for _ in 0..<23 {  // 6.9 s: more than two leases
                let taken = await store.claim(handlers: ["slow"], owner: "another", limit: 10, maxBytes: 1 << 20, lease: .seconds(30))
                #expect(taken.isEmpty, "another dispatcher took over a lease that was being renewed")
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        #expect(runs.withLock { $0 } == 1)
        #expect(await store.deliveries(eventId: "evt_slow")?.handlers["slow"]?.status == .succeeded)
    }

    @Test func atMostTheConfiguredNumberOfJobsAreDispatchedAtOnce() async throws {
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: InMemoryEventStore(),
                                configuration: .init(maxConcurrentDispatches: 2), logger: quietLogger)
        let gauge = Mutex((now: 0, max: 0))
        receiver.onAny(name: "slow") { _ in
            gauge.withLock { $0.now += 1; $0.max = max($0.max, $0.now) }
            try await Task.sleep(for: .milliseconds(40))
            gauge.withLock { $0.now -= 1 }
        }
        for index in 0..<6 {
            try await receiver.deliver(envelope(id: "evt_\(index)", jobId: "job_\(index)"), signedWith: signer)
        }
        try await withRunningReceiver(receiver) {}
        #expect(gauge.withLock { $0.max } == 2)
    }
}

func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}