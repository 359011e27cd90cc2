#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KliqWebhooks

/// The rules of `EventStore` as checks any store must pass: the in-memory and file stores pass them in
/// this package's tests, and a store of your own (or a database-backed one) should too.
///
/// Each ``Check`` runs against a fresh store from `makeStore`. Give `reopen` for a durable store: it
/// releases the store it is handed and opens the same one again, as a restart would (the ``Check/restart``
/// check is skipped without it). A failed check throws ``Failure`` saying what it saw.
///
/// ```swift
/// @Test(arguments: EventStoreConformance.Check.allCases)
/// func conforms(_ check: EventStoreConformance.Check) async throws {
///     try await EventStoreConformance(makeStore: { InMemoryEventStore() }).run(check)
/// }
/// ```
public struct EventStoreConformance: Sendable {
    /// One rule of `EventStore`.
    public enum Check: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Of many concurrent accepts of one id exactly one is `accepted`; the event is kept byte for
        /// byte with its signature; a duplicate adds no deliveries.
        case concurrentAcceptsOfOneId
        /// Sequence numbers strictly increase; duplicates get none.
        case sequenceNumbers
        /// A late, earlier-dated event never overwrites a later job state.
        case lateEventGuard
        /// A due delivery is claimed once, not again while leased, and not after it is settled.
        case claimOnce
        /// A job's events are claimed one at a time, in timestamp order; other jobs are independent.
        case perJobOrder
        /// A failed delivery waits for its next attempt and holds back later events of its job.
        case retryHoldsBackItsJob
        /// A lease that runs out is taken over with a new token; the old holder's settle is refused.
        case leaseExpiryAndTakeOver
        /// A renewed lease is kept; a renewal by a claim that lost it is refused.
        case leaseRenewal
        /// Deliveries for handlers not asked for are not claimed and hold nothing back.
        case otherHandlers
        /// Failing without a next attempt makes a delivery dead; re-driving counts events and makes them due.
        case deadAndRedrive
        /// Released claims are due again at once; claims respect `limit` and `maxBytes` (one always fits).
        case releaseAndLimits
        /// After a restart: ids are still duplicates, bodies byte for byte, unsettled deliveries due again
        /// (at once, or once the dead holder's lease ran out), sequence numbers keep increasing.
        case restart
        /// Pruning never forgets an event whose deliveries are active or dead.
        case prune
        /// Tracked jobs are listed once each, in order, page by page, with the time first tracked, until
        /// untracked (and survive a restart, for durable stores).
        case tracking
        /// Job states are listed page by page, each once.
        case jobListing
        /// Stored events are listed by sequence number after a cursor, page by page, each once, by type,
        /// job and time of acceptance.
        case eventListing
        /// A job's final state reaches handlers once when both a webhook and the polling fallback bring
        /// it, in either order and concurrently.
        case finalStateOnce

        public var description: String { self.rawValue }
    }

    /// What a check saw that breaks the rules.
    public struct Failure: Error, CustomStringConvertible {
        public var check: Check
        public var description: String
    }

    let makeStore: @Sendable () async throws -> any EventStore
    let reopen: (@Sendable (any EventStore) async throws -> any EventStore)?

    /// - Parameters:
    ///   - makeStore: a fresh, empty store for each check.
    ///   - reopen: releases the given store and opens the same one again (for durable stores).
    public init(makeStore: @escaping @Sendable () async throws -> any EventStore,
                reopen: (@Sendable (any EventStore) async throws -> any EventStore)? = nil) {
        self.makeStore = makeStore
        self.reopen = reopen
    }

    /// Runs one check against a fresh store. - Throws: ``Failure``, or what the store threw.
    public func run(_ check: Check) async throws {
        let store = try await self.makeStore()
        var context = Context(check: check, store: store)
        switch check {
        case .concurrentAcceptsOfOneId: try await Self.concurrentAccepts(&context)
        case .sequenceNumbers: try await Self.sequenceNumbers(&context)
        case .lateEventGuard: try await Self.lateEventGuard(&context)
        case .claimOnce: try await Self.claimOnce(&context)
        case .perJobOrder: try await Self.perJobOrder(&context)
        case .retryHoldsBackItsJob: try await Self.retryHoldsBack(&context)
        case .leaseExpiryAndTakeOver: try await Self.leaseExpiry(&context)
        case .leaseRenewal: try await Self.leaseRenewal(&context)
        case .otherHandlers: try await Self.otherHandlers(&context)
        case .deadAndRedrive: try await Self.deadAndRedrive(&context)
        case .releaseAndLimits: try await Self.releaseAndLimits(&context)
        case .restart:
            guard let reopen = self.reopen else { return }
            try await Self.restart(&context, reopen)
        case .prune: try await Self.prune(&context)
        case .tracking: try await Self.tracking(&context, self.reopen)
        case .jobListing: try await Self.jobListing(&context)
        case .eventListing: try await Self.eventListing(&context)
        case .finalStateOnce: try await Self.finalStateOnce(&context)
        }
    }

    /// Runs every check. - Throws: the first ``Failure``.
    public func runAll() async throws {
        for check in Check.allCases { try await self.run(check) }
    }

    struct Context {
        let check: Check
        var store: any EventStore

        func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
            if !condition { throw Failure(check: self.check, description: "\(self.check): \(message())") }
        }
    }

    static let signer = Signer(secret: "whsec_conformance")
    static let long: Duration = .seconds(30)

    /// A signed event: `id` of `job` at minute `minute` (`nil`: no job id).
    static func event(_ id: String, job: String? = "job_c", minute: Int = 0, status: String = "completed", bytes: Int = 0) throws -> Event {
        let data = job.map { #"{"jobId":"\#($0)","status":"\#(status)","model":"shelf-detection-v2","observationId":"obs_1","padding":"\#(String(repeating: "x", count: bytes))"}"# }
            ?? #"{"visitId":"v_1"}"#
        let type = job == nil ? "visit.submitted" : "cv.job.\(status)"
        let body = Array(#"{"id":"\#(id)","type":"\#(type)","tenantId":"t_1","timestamp":"2026-04-28T12:\#(minute < 10 ? "0" : "")\#(minute):00Z","data":\#(data)}"#.utf8)
        return try Self.signer.event(body)
    }

    static func ids(_ claims: [Claim]) -> [String] { claims.map(\.event.id) }

    // MARK: Checks

    static func concurrentAccepts(_ c: inout Context) async throws {
        let store = c.store
        let event = try Self.event("evt_same")
        let outcomes = try await withThrowingTaskGroup(of: Acceptance.self) { group in
            for _ in 0..<24 { group.addTask { try await store.accept(event, handlers: ["h"]) } }
            return try await group.reduce(into: [Acceptance]()) { $0.append($1) }
        }
        try c.expect(outcomes.filter { $0.outcome == .accepted }.count == 1, "\(outcomes.filter { $0.outcome == .accepted }.count) of 24 concurrent accepts of one id were accepted")
        let stored = try await store.event(id: "evt_same")
        try c.expect(stored?.rawBody == event.rawBody, "the stored body differs from the accepted one")
        let claims = try await store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Self.ids(claims) == ["evt_same"], "duplicates added deliveries: claimed \(Self.ids(claims))")
        try c.expect(claims.first?.event.signature == event.signature, "a claimed event lacks its signature")
    }

    static func sequenceNumbers(_ c: inout Context) async throws {
        var last: UInt64 = 0
        for n in 0..<5 {
            let acceptance = try await c.store.accept(try Self.event("evt_seq\(n)", job: "job_\(n)"), handlers: [])
            guard case .accepted(let sequence) = acceptance else { return try c.expect(false, "evt_seq\(n) was not accepted") }
            try c.expect(sequence > last, "sequence \(sequence) after \(last)")
            last = sequence
            try c.expect(try await c.store.accept(try Self.event("evt_seq\(n)", job: "job_\(n)"), handlers: []) == .duplicate, "a repeat was not a duplicate")
        }
    }

    static func lateEventGuard(_ c: inout Context) async throws {
        _ = try await c.store.accept(try Self.event("evt_late_2", job: "job_l", minute: 5, status: "completed"), handlers: [])
        _ = try await c.store.accept(try Self.event("evt_late_1", job: "job_l", minute: 1, status: "processing"), handlers: [])
        let job = try await c.store.job(id: "job_l")
        try c.expect(job?.status == .completed && job?.eventId == "evt_late_2", "a late, earlier event overwrote the job: \(String(describing: job?.status))")
    }

    static func claimOnce(_ c: inout Context) async throws {
        _ = try await c.store.accept(try Self.event("evt_once"), handlers: ["h"])
        let first = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Self.ids(first) == ["evt_once"], "claimed \(Self.ids(first))")
        try c.expect(try await c.store.claim(handlers: ["h"], owner: "b", limit: 10, maxBytes: 1 << 20, lease: Self.long).isEmpty, "claimed again while leased")
        try c.expect(try await c.store.pending(handlers: ["h"]) == 1, "a claimed delivery is not counted as pending")
        try c.expect(try await c.store.settle(first[0], outcomes: ["h": .succeeded]), "the holder's settle was refused")
        try c.expect(try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long).isEmpty, "claimed after it succeeded")
        try c.expect(try await c.store.deliveries(eventId: "evt_once")?.handlers["h"]?.status == .succeeded, "the success was not recorded")
        try c.expect(try await c.store.pending(handlers: ["h"]) == 0, "still pending after it succeeded")
        try c.expect(try await c.store.deliveries(on: .done, after: nil, limit: 10).map(\.eventId) == ["evt_once"], "not listed as done")
    }

    static func perJobOrder(_ c: inout Context) async throws {
        // Accepted in scrambled order; timestamps decide.
        _ = try await c.store.accept(try Self.event("evt_o3", job: "job_o", minute: 3), handlers: ["h"])
        _ = try await c.store.accept(try Self.event("evt_o1", job: "job_o", minute: 1), handlers: ["h"])
        _ = try await c.store.accept(try Self.event("evt_p1", job: "job_p", minute: 9), handlers: ["h"])
        _ = try await c.store.accept(try Self.event("evt_o2", job: "job_o", minute: 2), handlers: ["h"])
        var seen: [String] = []
        for _ in 0..<4 {
            let claims = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long)
            let jobO = claims.filter { $0.event.jobId == "job_o" }
            try c.expect(jobO.count <= 1, "two events of one job claimed at once: \(Self.ids(jobO))")
            for claim in claims {
                seen.append(claim.event.id)
                _ = try await c.store.settle(claim, outcomes: ["h": .succeeded])
            }
        }
        try c.expect(seen.filter { $0.hasPrefix("evt_o") } == ["evt_o1", "evt_o2", "evt_o3"], "job order: \(seen)")
        try c.expect(seen.first.map { ["evt_o1", "evt_p1"].contains($0) } == true && seen.contains("evt_p1"), "other jobs: \(seen)")
        try c.expect(seen.firstIndex(of: "evt_p1")! <= 1, "another job waited behind job_o: \(seen)")
    }

    static func retryHoldsBack(_ c: inout Context) async throws {
        _ = try await c.store.accept(try Self.event("evt_r1", job: "job_r", minute: 1), handlers: ["h"])
        _ = try await c.store.accept(try Self.event("evt_r2", job: "job_r", minute: 2), handlers: ["h"])
        _ = try await c.store.accept(try Self.event("evt_s1", job: "job_s", minute: 1), handlers: ["h"])
        var claims = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Set(Self.ids(claims)) == ["evt_r1", "evt_s1"], "claimed \(Self.ids(claims))")
        let r1 = claims.first { $0.event.id == "evt_r1" }!
        // Timings are generous: a loaded machine may take a while between two calls.
        let next = Date().addingTimeInterval(1.5)
        try c.expect(try await c.store.settle(r1, outcomes: ["h": .failed(error: "boom", nextAttemptAt: next)]), "settle refused")
        claims = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(claims.isEmpty, "claimed \(Self.ids(claims)) while evt_r1 waits for its retry")
        let state = try await c.store.deliveries(eventId: "evt_r1")?.handlers["h"]
        try c.expect(state?.status == .retrying && state?.attempts == 1 && state?.failures.last?.error == "boom", "the failure was not recorded: \(String(describing: state))")
        try await Task.sleep(for: .milliseconds(1800))
        claims = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Self.ids(claims) == ["evt_r1"], "after its retry time, claimed \(Self.ids(claims))")
    }

    static func leaseExpiry(_ c: inout Context) async throws {
        _ = try await c.store.accept(try Self.event("evt_lease"), handlers: ["h"])
        let a = try await c.store.claim(handlers: ["h"], owner: "a", limit: 1, maxBytes: 1 << 20, lease: .seconds(2))
        try c.expect(a.count == 1, "not claimed")
        try c.expect(try await c.store.claim(handlers: ["h"], owner: "b", limit: 1, maxBytes: 1 << 20, lease: Self.long).isEmpty, "taken over before the lease ran out")
        try await Task.sleep(for: .milliseconds(2300))
        let b = try await c.store.claim(handlers: ["h"], owner: "b", limit: 1, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Self.ids(b) == ["evt_lease"], "not taken over after the lease ran out")
        try c.expect(b.first?.token != a[0].token, "the take-over kept the old token")
        try c.expect(try await !c.store.settle(a[0], outcomes: ["h": .succeeded]), "the old holder's settle was accepted")
        try c.expect(try await c.store.deliveries(eventId: "evt_lease")?.handlers["h"]?.status == .pending, "the old holder's outcome was recorded")
        try c.expect(try await c.store.settle(b[0], outcomes: ["h": .succeeded]), "the new holder's settle was refused")
    }

    static func leaseRenewal(_ c: inout Context) async throws {
        _ = try await c.store.accept(try Self.event("evt_renew"), handlers: ["h"])
        let a = try await c.store.claim(handlers: ["h"], owner: "a", limit: 1, maxBytes: 1 << 20, lease: .seconds(1))
        try c.expect(try await c.store.renew(a[0], lease: .seconds(30)), "the holder's renewal was refused")
        try await Task.sleep(for: .milliseconds(1300))
        try c.expect(try await c.store.claim(handlers: ["h"], owner: "b", limit: 1, maxBytes: 1 << 20, lease: Self.long).isEmpty, "a renewed lease was taken over")
        var stale = a[0]
        stale.token &+= 1000
        try c.expect(try await !c.store.renew(stale, lease: .seconds(5)), "a renewal with another token was accepted")
    }

    static func otherHandlers(_ c: inout Context) async throws {
        _ = try await c.store.accept(try Self.event("evt_ab1", job: "job_ab", minute: 1), handlers: ["a", "b"])
        _ = try await c.store.accept(try Self.event("evt_ab2", job: "job_ab", minute: 2), handlers: ["a"])
        let first = try await c.store.claim(handlers: ["a"], owner: "x", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Self.ids(first) == ["evt_ab1"], "claimed \(Self.ids(first))")
        _ = try await c.store.settle(first[0], outcomes: ["a": .succeeded])
        // b's delivery of evt_ab1 is unsettled, but it is not a's: evt_ab2 is a's next.
        let second = try await c.store.claim(handlers: ["a"], owner: "x", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Self.ids(second) == ["evt_ab2"], "a's next: \(Self.ids(second))")
        let forB = try await c.store.claim(handlers: ["b"], owner: "y", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(Self.ids(forB) == ["evt_ab1"], "b's: \(Self.ids(forB))")
    }

    static func deadAndRedrive(_ c: inout Context) async throws {
        for n in 1...3 { _ = try await c.store.accept(try Self.event("evt_dead\(n)", job: "job_d\(n)"), handlers: ["h"]) }
        for claim in try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long) {
            _ = try await c.store.settle(claim, outcomes: ["h": .failed(error: "down", nextAttemptAt: nil)])
        }
        let dead = try await c.store.deliveries(on: .dead, after: nil, limit: 10).map(\.eventId)
        try c.expect(dead == ["evt_dead1", "evt_dead2", "evt_dead3"], "dead: \(dead)")
        try c.expect(try await c.store.deliveries(on: .dead, after: "evt_dead1", limit: 1).map(\.eventId) == ["evt_dead2"], "paging after a cursor")
        try c.expect(try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long).isEmpty, "a dead delivery was claimed")
        try c.expect(try await c.store.redrive(.event("evt_dead1")) == 1, "re-driving one event")
        try c.expect(try await c.store.redrive(.allDead) == 2, "re-driving the rest")
        try c.expect(try await c.store.redrive(.allDead) == 0, "re-driving again counted something")
        let claims = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(claims.count == 3, "re-driven deliveries claimed: \(Self.ids(claims))")
        let state = claims.first?.deliveries.handlers["h"]
        try c.expect(state?.status == .pending && state?.attempts == 1 && state?.budgetStart == 1, "a re-driven delivery: \(String(describing: state))")
        for claim in claims { _ = try await c.store.settle(claim, outcomes: ["h": .succeeded]) }
        try c.expect(try await c.store.redrive(.event("evt_dead1", handler: "h")) == 1, "re-driving a succeeded delivery by name")
        try c.expect(try await c.store.redrive(.event("evt_nope")) == 0, "re-driving an unknown event counted it")
    }

    static func releaseAndLimits(_ c: inout Context) async throws {
        for n in 1...3 { _ = try await c.store.accept(try Self.event("evt_lim\(n)", job: "job_lim\(n)", bytes: 1000), handlers: ["h"]) }
        let one = try await c.store.claim(handlers: ["h"], owner: "a", limit: 1, maxBytes: 1 << 20, lease: Self.long)
        try c.expect(one.count == 1, "limit 1 claimed \(one.count)")
        await c.store.release(one[0])
        let small = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 10, lease: Self.long)
        try c.expect(small.count == 1, "a byte budget smaller than any body claimed \(small.count) (one always fits)")
        let rest = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 2 * (one[0].event.rawBody.count) + 10, lease: Self.long)
        try c.expect(rest.count == 2, "a budget of two bodies claimed \(rest.count)")
        try c.expect(Set(Self.ids(small + rest)) == ["evt_lim1", "evt_lim2", "evt_lim3"], "released one was not claimed again")
    }

    static func restart(_ c: inout Context, _ reopen: @Sendable (any EventStore) async throws -> any EventStore) async throws {
        let event = try Self.event("evt_restart")
        guard case .accepted(let before) = try await c.store.accept(event, handlers: ["h"]) else { return try c.expect(false, "not accepted") }
        _ = try await c.store.accept(try Self.event("evt_done", job: "job_done"), handlers: ["h"])
        let claims = try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: .seconds(2))
        for claim in claims where claim.event.id == "evt_done" { _ = try await c.store.settle(claim, outcomes: ["h": .succeeded]) }
        c.store = try await reopen(c.store)
        try c.expect(try await c.store.accept(event, handlers: ["h"]) == .duplicate, "not a duplicate after a restart")
        let stored = try await c.store.event(id: "evt_restart")
        try c.expect(stored?.rawBody == event.rawBody, "body changed across a restart")
        // The process that held the claim is gone: its delivery is due again at once (a store only one
        // process uses forgets leases), or once the lease runs out (a shared store keeps them).
        var again = try await c.store.claim(handlers: ["h"], owner: "b", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        if again.isEmpty {
            try await Task.sleep(for: .milliseconds(2300))
            again = try await c.store.claim(handlers: ["h"], owner: "b", limit: 10, maxBytes: 1 << 20, lease: Self.long)
        }
        try c.expect(Self.ids(again) == ["evt_restart"], "after a restart claimed \(Self.ids(again))")
        try c.expect(again.first?.event.signature == event.signature, "the signature was lost across a restart")
        guard case .accepted(let after) = try await c.store.accept(try Self.event("evt_after", job: "job_after"), handlers: []) else {
            return try c.expect(false, "not accepted after a restart")
        }
        try c.expect(after > before, "sequence \(after) after a restart is not above \(before)")
        let listed = try await Self.listAll(c.store).map(\.id)
        try c.expect(listed == ["evt_restart", "evt_done", "evt_after"], "listed after a restart: \(listed)")
    }
}

extension Signer {
    /// `body` decoded as an event that arrived signed by this signer.
    func event(_ body: [UInt8]) throws -> Event {
        try Event(decoding: body, signature: self.signature(for: body))
    }
}
