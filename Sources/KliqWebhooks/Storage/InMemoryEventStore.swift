import Foundation

/// A store that keeps everything in memory, for tests and for embedders that persist elsewhere.
/// It follows every rule of ``EventStore`` except surviving the process.
public actor InMemoryEventStore: EventStore {
    /// A body kept because it could not be understood.
    public struct Quarantined: Sendable {
        public var body: [UInt8]
        public var reason: String
    }

    private struct Stored {
        var event: Event
        var sequence: UInt64
        var acceptedAt: Date
    }

    private var events: [String: Stored] = [:]
    /// Every accepted event's id by sequence number, in order (pruned ones too: listing skips them).
    private var accepted: [(sequence: UInt64, id: String)] = []
    private var jobs: [String: JobRecord] = [:]
    private var ledger: [String: LedgerEntry] = [:]
    private var index = DeliveryIndex()
    private var tracked: [String: Date] = [:]
    private var sequence: UInt64 = 0
    /// Bodies quarantined so far, oldest first.
    public private(set) var quarantined: [Quarantined] = []

    public init() {}

    public func accept(_ event: Event, handlers: [String]) -> Acceptance {
        var handlers = handlers
        if let record = JobRecord(event: event) {
            if self.events[event.id] == nil, let stored = self.jobs[record.jobId],
                record.repeatsFinalState(stored: stored.status, storedFromPoll: stored.fromPoll)
            {
                handlers = []
            }
            if self.jobs[record.jobId].map({ $0.order < record.order }) ?? true { self.jobs[record.jobId] = record }
        }
        guard self.events[event.id] == nil else { return .duplicate }
        self.sequence += 1
        self.events[event.id] = Stored(event: event, sequence: self.sequence, acceptedAt: Date())
        self.accepted.append((self.sequence, event.id))
        if !handlers.isEmpty {
            let entry = LedgerEntry(event: event, handlers: handlers, acceptedAt: Timestamp.now().rfc3339, sequence: self.sequence)
            self.ledger[event.id] = entry
            self.index.put(entry, sequence: self.sequence, bytes: event.rawBody.count)
        }
        return .accepted(sequence: self.sequence)
    }

    public func claim(handlers: Set<String>, owner: String, limit: Int, maxBytes: Int, lease: Duration) -> [Claim] {
        let now = Timestamp.now()
        return self.index.claim(handlers: handlers, owner: owner, limit: limit, maxBytes: maxBytes, now: now, until: now.adding(lease))
            .compactMap { item in
                guard let stored = self.events[item.entry.eventId], let lease = item.lease else { return nil }
                return Claim(event: stored.event, deliveries: item.entry, owner: lease.owner, token: lease.token)
            }
    }

    public func renew(_ claim: Claim, lease: Duration) -> Bool {
        self.index.renew(claim.event.id, owner: claim.owner, token: claim.token, until: Timestamp.now().adding(lease))
    }

    public func settle(_ claim: Claim, outcomes: [String: DeliveryOutcome]) -> Bool {
        guard self.index.holds(claim.event.id, owner: claim.owner, token: claim.token), var entry = self.ledger[claim.event.id] else {
            return false
        }
        entry.record(outcomes, at: Timestamp.now())
        self.ledger[entry.eventId] = entry
        self.index.put(entry, sequence: entry.sequence ?? 0, bytes: claim.event.rawBody.count)
        return true
    }

    public func release(_ claim: Claim) {
        self.index.release(claim.event.id, owner: claim.owner, token: claim.token)
    }

    public func pending(handlers: Set<String>) -> Int { self.index.pending(handlers: handlers) }

    public func redrive(_ filter: RedriveFilter) -> Int {
        var count = 0
        for var entry in self.ledger.values where filter.eventId.map({ $0 == entry.eventId }) ?? entry.isDead {
            guard entry.redrive(handler: filter.handler) else { continue }
            entry.revision += 1
            self.ledger[entry.eventId] = entry
            self.index.put(entry, sequence: entry.sequence ?? 0, bytes: self.events[entry.eventId]?.event.rawBody.count ?? 0)
            count += 1
        }
        return count
    }

    public func deliveries(eventId: String) -> LedgerEntry? { self.ledger[eventId] }

    public func deliveries(on shelf: LedgerEntry.Shelf, after cursor: String?, limit: Int) -> [LedgerEntry] {
        Array(self.ledger.values.filter { entry in entry.shelf == shelf && cursor.map { entry.eventId > $0 } ?? true }
            .sorted { $0.eventId < $1.eventId }.prefix(limit))
    }

    public func prune(acceptedBefore cutoff: Date) -> Int {
        let old = self.events.filter { $0.value.acceptedAt < cutoff }.map(\.key).filter { id in
            self.ledger[id].map { $0.shelf == .done } ?? true
        }
        for id in old {
            self.events[id] = nil
            self.ledger[id] = nil
        }
        return old.count
    }

    public func quarantine(body: [UInt8], reason: String) {
        self.quarantined.append(Quarantined(body: body, reason: reason))
    }

    public func event(id: String) -> Event? { self.events[id]?.event }

    public func events(after: UInt64, matching filter: EventFilter, limit: Int) -> EventPage {
        let limit = max(limit, 1)
        var low = 0
        var high = self.accepted.count
        while low < high {
            let middle = (low + high) / 2
            if self.accepted[middle].sequence <= after { low = middle + 1 } else { high = middle }
        }
        var page: [EventSummary] = []
        for position in low..<self.accepted.count {
            let (sequence, id) = self.accepted[position]
            guard let stored = self.events[id], stored.sequence == sequence else { continue }
            let summary = EventSummary(sequence: sequence, id: id, type: stored.event.type, jobId: stored.event.jobId, acceptedAt: stored.acceptedAt)
            guard filter.matches(summary) else { continue }
            if page.count == limit { return EventPage(events: page, next: page.last?.sequence) }
            page.append(summary)
        }
        return EventPage(events: page, next: nil)
    }

    public func job(id: String) throws -> Job? {
        guard let record = self.jobs[id] else { return nil }
        return try Job(json: JSONValue(parsing: record.bytes))
    }

    public func checkHealth() {}

    public func jobs(after cursor: String?, limit: Int) throws -> JobPage {
        let ids = self.jobs.keys.filter { id in cursor.map { id > $0 } ?? true }.sorted()
        let page = ids.prefix(limit)
        return JobPage(jobs: try page.compactMap { try self.job(id: $0) }, next: ids.count > limit ? page.last : nil)
    }

    public func track(jobId: String) { if self.tracked[jobId] == nil { self.tracked[jobId] = Date() } }

    public func untrack(jobId: String) { self.tracked[jobId] = nil }

    public func trackedJobs(after cursor: String?, limit: Int) -> [TrackedJob] {
        self.tracked.filter { id, _ in cursor.map { id > $0 } ?? true }.sorted { $0.key < $1.key }.prefix(limit)
            .map { TrackedJob(jobId: $0.key, trackedAt: $0.value) }
    }

    /// Ids of every stored event.
    public var eventIds: [String] { Array(self.events.keys) }
}
