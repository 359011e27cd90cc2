import Foundation
/// A store that keeps everything in memory, for tests and for embedders that persist elsewhere.
/// It follows every rule of ``EventStore`` except surviving the process.
public actor InMemoryEventStore: EventStore {
    /// A body kept because it could not be understood.
    public struct Quarantined: Sendable {
        public var body: [UInt8]
        public var reason: String
    }

    private var events: [String: Event] = [:]
    private var acceptedAt: [String: Date] = [:]
    private var jobs: [String: JobRecord] = [:]
    private var ledger: [String: LedgerEntry] = [:]
    /// Bodies quarantined so far, oldest first.
    public private(set) var quarantined: [Quarantined] = []

    public init() {}

    public func prune(acceptedBefore cutoff: Date) -> Int {
        let old = self.acceptedAt.filter { $0.value < cutoff }.map(\.key).filter { id in
            self.ledger[id].map { $0.shelf == .done } ?? true
        }
        for id in old {
            self.events[id] = nil
            self.acceptedAt[id] = nil
            self.ledger[id] = nil
        }
        return old.count
    }

    public func commit(_ event: Event, ledger: LedgerEntry?) -> Outcome {
        let outcome: Outcome = self.events[event.id] == nil ? .accepted : .duplicate
        if outcome == .accepted {
            self.events[event.id] = event
            self.acceptedAt[event.id] = Date()
            if let ledger { self.ledger[event.id] = ledger }
        }
        if let record = JobRecord(event: event), self.jobs[record.jobId].map({ $0.order < record.order }) ?? true {
            self.jobs[record.jobId] = record
        }
        return outcome
    }

    public func quarantine(body: [UInt8], reason: String) {
        self.quarantined.append(Quarantined(body: body, reason: reason))
    }

    public func event(id: String) -> Event? { self.events[id] }

    public func job(id: String) throws -> Job? {
        guard let record = self.jobs[id] else { return nil }
        return try Job(json: JSONValue(parsing: record.bytes))
    }

    public func checkHealth() {}

    public func updateLedger(_ entry: LedgerEntry) {
        if (self.ledger[entry.eventId]?.revision ?? 0) <= entry.revision { self.ledger[entry.eventId] = entry }
    }

    public func ledgerEntry(eventId: String) -> LedgerEntry? { self.ledger[eventId] }

    public func ledgerEntries(on shelf: LedgerEntry.Shelf) -> [LedgerEntry] {
        self.ledger.values.filter { $0.shelf == shelf }.sorted(by: LedgerEntry.acceptedBefore)
    }

    /// Ids of every stored event.
    public var eventIds: [String] { Array(self.events.keys) }
}
