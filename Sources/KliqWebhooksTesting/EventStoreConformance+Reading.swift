#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KliqWebhooks

/// The checks of what a store lists and forgets: tracked jobs, job states, events by sequence number, pruning.
extension EventStoreConformance {
    static func tracking(_ c: inout Context, _ reopen: (@Sendable (any EventStore) async throws -> any EventStore)?) async throws {
        let before = Date().addingTimeInterval(-1)
        for id in ["job_t3", "job_t1", "job t/2"] { try await c.store.track(jobId: id) }
        let first = try await c.store.trackedJobs(after: nil, limit: 10)
        try await Task.sleep(for: .milliseconds(1100))
        try await c.store.track(jobId: "job_t1")
        let tracked = try await c.store.trackedJobs(after: nil, limit: 10)
        try c.expect(tracked.map(\.jobId) == ["job t/2", "job_t1", "job_t3"], "tracked: \(tracked)")
        try c.expect(tracked == first, "tracking again moved the time: \(first) then \(tracked)")
        try c.expect(tracked.allSatisfy { $0.trackedAt >= before && $0.trackedAt <= Date() }, "tracked times: \(tracked)")
        try c.expect(try await c.store.trackedJobs(after: "job_t1", limit: 10).map(\.jobId) == ["job_t3"], "after a cursor")
        try await c.store.untrack(jobId: "job_t1")
        if let reopen { c.store = try await reopen(c.store) }
        try c.expect(try await c.store.trackedJobs(after: nil, limit: 1).map(\.jobId) == ["job t/2"], "limit, untrack or restart")
        let rest = try await c.store.trackedJobs(after: "job t/2", limit: 10)
        try c.expect(rest.map(\.jobId) == ["job_t3"], "untracked one still listed")
        try c.expect(rest.first.map { abs($0.trackedAt.timeIntervalSince(first[2].trackedAt)) < 1 } ?? false, "time after restart: \(rest)")
    }

    /// A final state arriving from the webhook and from polling reaches handlers once, in both orders;
    /// two webhooks' final states (different ids) both do.
    static func finalStateOnce(_ c: inout Context) async throws {
        func polled(_ job: String, status: String = "completed") throws -> Event {
            let body = #"{"id":"poll_\#(job)_\#(status)","type":"cv.job.\#(status)","source":"poll","tenantId":"t_1","timestamp":"2026-04-28T12:05:00Z","data":{"jobId":"\#(job)","status":"\#(status)","model":"shelf-detection-v2"}}"#
            return try Event(decoding: Array(body.utf8))
        }
        // Webhook first, then the poll.
        _ = try await c.store.accept(try Self.event("evt_f1", job: "job_f1", minute: 5), handlers: ["h"])
        try c.expect(try await c.store.deliveries(eventId: "evt_f1") != nil, "the webhook's final state got no delivery")
        let late = try await c.store.accept(try polled("job_f1"), handlers: ["h"])
        try c.expect(late.outcome == .accepted, "the poll after the webhook: \(late)")
        try c.expect(try await c.store.deliveries(eventId: "poll_job_f1_completed") == nil, "the poll's repeat of the final state got deliveries")
        try c.expect(try await c.store.event(id: "poll_job_f1_completed") != nil, "the poll's event is not stored")
        // The poll first, then the webhook.
        _ = try await c.store.accept(try polled("job_f2"), handlers: ["h"])
        try c.expect(try await c.store.deliveries(eventId: "poll_job_f2_completed") != nil, "the poll's final state got no delivery")
        let job = try await c.store.job(id: "job_f2")
        try c.expect(job?.raw["source"]?.stringValue == "poll" && job?.status == .completed, "polled job state: \(String(describing: job?.raw))")
        _ = try await c.store.accept(try Self.event("evt_f2", job: "job_f2", minute: 6), handlers: ["h"])
        try c.expect(try await c.store.deliveries(eventId: "evt_f2") == nil, "the webhook's repeat of a polled final state got deliveries")
        let replaced = try await c.store.job(id: "job_f2")
        try c.expect(replaced?.eventId == "evt_f2" && replaced?.raw["source"] == nil, "a later webhook state did not replace the poll's: \(String(describing: replaced?.raw))")
        // Two webhooks: no change from before.
        _ = try await c.store.accept(try Self.event("evt_f3a", job: "job_f3", minute: 1), handlers: ["h"])
        _ = try await c.store.accept(try Self.event("evt_f3b", job: "job_f3", minute: 2), handlers: ["h"])
        try c.expect(try await c.store.deliveries(eventId: "evt_f3b") != nil, "a second webhook's final state lost its delivery")
        // Concurrently, many times: exactly one of the two gets deliveries.
        for n in 0..<8 {
            let store = c.store
            let webhook = try Self.event("evt_fc\(n)", job: "job_fc\(n)", minute: 5)
            let poll = try polled("job_fc\(n)")
            async let a = store.accept(webhook, handlers: ["h"])
            async let b = store.accept(poll, handlers: ["h"])
            _ = try await (a, b)
            let withDeliveries = [try await store.deliveries(eventId: webhook.id), try await store.deliveries(eventId: poll.id)].compactMap { $0 }
            try c.expect(withDeliveries.count == 1, "job_fc\(n): \(withDeliveries.count) of webhook and poll got deliveries")
        }
    }

    static func jobListing(_ c: inout Context) async throws {
        for n in 1...5 { _ = try await c.store.accept(try Self.event("evt_jl\(n)", job: "job_jl\(n)"), handlers: []) }
        var seen: [String] = []
        var cursor: String?
        for _ in 0..<10 {
            let page = try await c.store.jobs(after: cursor, limit: 2)
            try c.expect(page.jobs.count <= 2, "a page of \(page.jobs.count) for a limit of 2")
            seen += page.jobs.map(\.id)
            guard let next = page.next else { break }
            cursor = next
        }
        try c.expect(seen.sorted() == (1...5).map { "job_jl\($0)" } && Set(seen).count == seen.count, "listed \(seen)")
    }

    /// Every page of `filter` after `after`, with pages of `limit`.
    static func listAll(_ store: any EventStore, after: UInt64 = 0, _ filter: EventFilter = .all, limit: Int = 2) async throws -> [EventSummary] {
        var all: [EventSummary] = []
        var cursor = after
        for _ in 0..<1000 {
            let page = try await store.events(after: cursor, matching: filter, limit: limit)
            all += page.events
            guard let next = page.next else { return all }
            cursor = next
        }
        return all
    }

    static func eventListing(_ c: inout Context) async throws {
        let start = Date().addingTimeInterval(-1)
        var sequences: [String: UInt64] = [:]
        let plan: [(String, String?, String)] = [
            ("evt_el1", "job_a", "processing"), ("evt_el2", nil, ""), ("evt_el3", "job_b", "completed"),
            ("evt_el4", "job_a", "completed"), ("evt_el5", nil, ""), ("evt_el6", "job_b", "failed"), ("evt el/7", "job_a", "failed"),
        ]
        for (n, (id, job, status)) in plan.enumerated() {
            guard case .accepted(let sequence) = try await c.store.accept(try Self.event(id, job: job, minute: n, status: status.isEmpty ? "completed" : status), handlers: n % 2 == 0 ? ["h"] : []) else {
                return try c.expect(false, "\(id) was not accepted")
            }
            sequences[id] = sequence
        }
        _ = try await c.store.accept(try Self.event("evt_el3", job: "job_b"), handlers: [])
        let all = try await Self.listAll(c.store)
        try c.expect(all.map(\.id) == plan.map(\.0), "listed \(all.map(\.id)), expected acceptance order \(plan.map(\.0))")
        try c.expect(all.allSatisfy { sequences[$0.id] == $0.sequence }, "listed sequence numbers differ from those accept returned")
        try c.expect(all.allSatisfy { $0.acceptedAt >= start && $0.acceptedAt <= Date().addingTimeInterval(1) }, "acceptedAt is not the time of acceptance")
        try c.expect(all.first { $0.id == "evt_el6" }.map { $0.type == "cv.job.failed" && $0.jobId == "job_b" } == true, "type or job id wrong")
        let third = sequences["evt_el3"]!
        let afterThird = try await Self.listAll(c.store, after: third, limit: 10)
        try c.expect(afterThird.map(\.id) == Array(plan.map(\.0).dropFirst(3)), "after evt_el3's sequence: \(afterThird.map(\.id))")
        let jobA = try await Self.listAll(c.store, EventFilter(jobId: "job_a"), limit: 1)
        try c.expect(jobA.map(\.id) == ["evt_el1", "evt_el4", "evt el/7"], "job_a: \(jobA.map(\.id))")
        let visits = try await Self.listAll(c.store, EventFilter(type: "visit.submitted"))
        try c.expect(visits.map(\.id) == ["evt_el2", "evt_el5"], "visit.submitted: \(visits.map(\.id))")
        let none = try await Self.listAll(c.store, EventFilter(since: Date().addingTimeInterval(3600)))
        try c.expect(none.isEmpty, "accepted since an hour from now: \(none.map(\.id))")
        let before = try await Self.listAll(c.store, EventFilter(until: start))
        try c.expect(before.isEmpty, "accepted before the check began: \(before.map(\.id))")
        let last = try await c.store.events(after: all.last!.sequence, matching: .all, limit: 10)
        try c.expect(last.events.isEmpty && last.next == nil, "after the last event: \(last.events.map(\.id)), next \(String(describing: last.next))")
    }

    static func prune(_ c: inout Context) async throws {
        _ = try await c.store.accept(try Self.event("evt_pr_plain", job: "job_pr1"), handlers: [])
        _ = try await c.store.accept(try Self.event("evt_pr_active", job: "job_pr2"), handlers: ["h"])
        _ = try await c.store.accept(try Self.event("evt_pr_dead", job: "job_pr3"), handlers: ["h"])
        for claim in try await c.store.claim(handlers: ["h"], owner: "a", limit: 10, maxBytes: 1 << 20, lease: Self.long) where claim.event.id == "evt_pr_dead" {
            _ = try await c.store.settle(claim, outcomes: ["h": .failed(error: "x", nextAttemptAt: nil)])
        }
        let removed: Int
        do {
            removed = try await c.store.prune(acceptedBefore: Date().addingTimeInterval(3600))
        } catch let error as WebhookError where error.code == .invalidConfiguration {
            return  // this store does not prune
        }
        try c.expect(removed == 1, "pruned \(removed), expected only evt_pr_plain")
        let active = try await c.store.event(id: "evt_pr_active")
        let dead = try await c.store.event(id: "evt_pr_dead")
        try c.expect(active != nil && dead != nil, "pruned an event still owed to a handler")
        try c.expect(try await c.store.event(id: "evt_pr_plain") == nil, "kept a pruned event")
        let listed = try await Self.listAll(c.store).map(\.id)
        try c.expect(listed == ["evt_pr_active", "evt_pr_dead"], "listed after pruning: \(listed)")
    }
}
