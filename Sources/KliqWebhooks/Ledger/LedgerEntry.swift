#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The handler ledger's record of one accepted event: for each handler that must see it, where that
/// delivery stands. Kept apart from "received" (`events/`), so a handler that fails, or a process that
/// dies between storing and dispatching, loses nothing.
public struct LedgerEntry: Sendable, Hashable, Codable {
    /// Where one handler's delivery of the event stands.
    public struct HandlerState: Sendable, Hashable, Codable {
        public enum Status: String, Sendable, Hashable, Codable {
            /// Not yet run (or interrupted before its outcome was recorded).
            case pending
            /// Ran and returned; never run again unless re-driven by hand.
            case succeeded
            /// Failed; will run again at `nextAttemptAt`.
            case retrying
            /// Failed on every allowed attempt; kept with its errors until re-driven.
            case dead
        }

        /// One failed attempt.
        public struct Failure: Sendable, Hashable, Codable {
            public var attempt: Int
            public var at: String
            public var error: String
        }

        public var status: Status
        /// Attempts recorded so far, across re-drives (an attempt cut short by a crash is not recorded).
        public var attempts: Int
        /// `attempts` when the current retry budget began (0, or the count at the last re-drive).
        public var budgetStart: Int
        /// When the next attempt is due (`retrying`), RFC 3339.
        public var nextAttemptAt: String?
        /// The most recent failures, oldest first (at most 10).
        public var failures: [Failure]

        public init(status: Status = .pending, attempts: Int = 0, budgetStart: Int = 0, nextAttemptAt: String? = nil, failures: [Failure] = []) {
            self.status = status
            self.attempts = attempts
            self.budgetStart = budgetStart
            self.nextAttemptAt = nextAttemptAt
            self.failures = failures
        }

        /// Whether nothing more will happen without an operator: succeeded or dead.
        public var isSettled: Bool { self.status == .succeeded || self.status == .dead }
    }

    static let keptFailures = 10

    public var eventId: String
    /// Incremented by every recorded change; where a crash left two copies, the higher one is true.
    public var revision: Int
    public var eventType: String
    public var jobId: String?
    /// The event's own timestamp: the order in which events of one job reach a handler.
    public var timestamp: String?
    /// When the event was accepted, RFC 3339.
    public var acceptedAt: String
    /// The event's sequence number: the order events were accepted in. `nil` in entries written by 0.5.1.
    public var sequence: UInt64?
    /// The `X-Kliq-Signature` the event arrived with, kept so a delivery read back from the store (after
    /// a restart, a crash or a re-drive) is forwarded with it. `nil` in entries written by 0.5.1, which
    /// kept none: such events are signed again with the first configured secret when dispatched.
    public var signature: String?

    /// The entry as stored: JSON with sorted keys (the files store adds a newline).
    package func encodedJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// A byte string that sorts as this event's place in its job's order (its timestamp, undated after
    /// dated; ties broken by the sequence number, kept apart): for a database's `ORDER BY`.
    package var laneOrderKey: [UInt8] {
        guard let instant = self.timestamp.flatMap(Timestamp.init(rfc3339:)) else { return [1] }
        return [0] + instant.sortKey
    }

    /// Each handler with an unsettled delivery, and when it is due (pending: now, or as soon as possible).
    package var dueDeliveries: [(handler: String, at: Date)] {
        self.handlers.filter { !$0.value.isSettled }.sorted { $0.key < $1.key }.map { name, state in
            (name, state.status == .retrying ? (state.nextAttemptAt.flatMap(Timestamp.init(rfc3339:))?.date ?? Date(timeIntervalSince1970: 0)) : Date(timeIntervalSince1970: 0))
        }
    }

    /// Acceptance order: by sequence number, then (entries of 0.5.1, without one) when accepted and by id.
    static func acceptedBefore(_ a: LedgerEntry, _ b: LedgerEntry) -> Bool {
        (a.sequence ?? 0, a.acceptedAt, a.eventId) < (b.sequence ?? 0, b.acceptedAt, b.eventId)
    }
    /// By handler name.
    public var handlers: [String: HandlerState]

    public init(event: Event, handlers: [String], acceptedAt: String, sequence: UInt64? = nil) {
        self.eventId = event.id
        self.sequence = sequence
        self.revision = 1
        self.eventType = event.type.rawValue
        self.jobId = event.jobId
        self.timestamp = event.timestamp
        self.acceptedAt = acceptedAt
        self.signature = event.signature
        self.handlers = Dictionary(uniqueKeysWithValues: handlers.map { ($0, HandlerState()) })
    }

    /// Whether every handler has succeeded or is dead.
    public var isSettled: Bool { self.handlers.values.allSatisfy(\.isSettled) }
    /// Whether some handler is dead (the entry needs an operator).
    public var isDead: Bool { self.handlers.values.contains { $0.status == .dead } }

    /// Where the entry belongs: `active` while anything is pending or retrying, then `dead` if any
    /// handler is dead, else `done`.
    public var shelf: Shelf {
        if !self.isSettled { return .active }
        return self.isDead ? .dead : .done
    }

    /// The three places an entry can be.
    public enum Shelf: String, Sendable, CaseIterable, Codable {
        case active, done, dead
    }
}

extension LedgerEntry {
    /// Records what each handler's attempt came to (a store's ``EventStore/settle(_:outcomes:)``).
    package mutating func record(_ outcomes: [String: DeliveryOutcome], at now: Timestamp) {
        for (name, outcome) in outcomes {
            switch outcome {
            case .succeeded: self.recordSuccess(of: name)
            case .failed(let error, let next): self.recordFailure(of: name, error: error, at: now, next: next.map(Timestamp.init(date:)))
            }
        }
        self.revision += 1
    }

    /// Records a failed attempt: retrying at `next`, or dead when `next` is `nil`.
    mutating func recordFailure(of handler: String, error: String, at now: Timestamp, next: Timestamp?) {
        var state = self.handlers[handler] ?? HandlerState()
        state.attempts += 1
        state.failures.append(.init(attempt: state.attempts, at: now.rfc3339, error: String(error.prefix(2000))))
        if state.failures.count > Self.keptFailures { state.failures.removeFirst(state.failures.count - Self.keptFailures) }
        state.status = next == nil ? .dead : .retrying
        state.nextAttemptAt = next?.rfc3339
        self.handlers[handler] = state
    }

    mutating func recordSuccess(of handler: String) {
        var state = self.handlers[handler] ?? HandlerState()
        state.attempts += 1
        state.status = .succeeded
        state.nextAttemptAt = nil
        self.handlers[handler] = state
    }

    /// Makes dead (or, with `all`, every unsucceeded) deliveries pending again, with a fresh attempt budget.
    /// - Parameter handler: only this handler, when given.
    /// - Returns: whether anything changed.
    @discardableResult
    public mutating func redrive(handler: String? = nil) -> Bool {
        var changed = false
        for (name, state) in self.handlers where handler == nil || handler == name {
            guard state.status == .dead || (handler != nil && state.status != .pending) else { continue }
            self.handlers[name] = HandlerState(status: .pending, attempts: state.attempts, budgetStart: state.attempts, nextAttemptAt: nil,
                                               failures: state.failures)
            changed = true
        }
        return changed
    }
}
