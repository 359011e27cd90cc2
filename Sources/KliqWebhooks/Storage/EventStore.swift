import Foundation
/// What happened to a delivery that passed verification.
public enum Outcome: String, Sendable, Hashable {
    /// The event id was new; the event is now durably stored and will be dispatched.
    case accepted
    /// The event id was already stored; nothing was written and handlers do not run again.
    case duplicate
}

/// Where accepted events and job states are kept: the seam between the receiver and its storage.
///
/// The operations are about meaning, not paths, so a database can implement them. Rules every
/// conformer must keep:
/// - ``commit(_:)`` claims the event id and stores the event — and, for a `cv.job.*` event, the job's
///   state — as one step. It returns only once that is durable. Of any number of concurrent or
///   repeated commits of one id, in one process or across restarts, exactly one returns `.accepted`;
///   the others return `.duplicate`, and only once the accepted one is durable.
/// - A job state replaces the stored one only when it is later in job-state order (timestamp,
///   then lifecycle step, then event id); a late, earlier-dated event never overwrites a later state.
///   A duplicate commit re-applies its job state, which is harmless when already applied and repairs
///   a state lost to a crash between the two writes.
/// - When a commit fails it throws, and leaves nothing behind: a retry of the same delivery is a
///   fresh commit. Failures to write are ``WebhookError/Code/storageUnavailable``.
/// - Ids from the wire never become paths unvalidated (see ``StorageName``).
/// - The handler ledger: an accepted commit that carries a ``LedgerEntry`` stores it in the same step,
///   so an event is never stored without the record of who must still see it. ``updateLedger(_:)``
///   records each transition durably before returning; where two copies of an entry exist after a
///   crash, the higher ``LedgerEntry/revision`` is the truth.
public protocol EventStore: Sendable {
    /// Claims `event.id` and durably stores the event, the job's state (CV-job events) and, when
    /// accepted and given, the event's handler ledger entry.
    func commit(_ event: Event, ledger: LedgerEntry?) async throws -> Outcome
    /// Durably records a ledger transition (a handler succeeded, failed, died, or was re-driven).
    func updateLedger(_ entry: LedgerEntry) async throws
    /// The ledger entry of one event, if it has one.
    func ledgerEntry(eventId: String) async throws -> LedgerEntry?
    /// The entries on `shelf`: `active` (something pending or retrying), `dead`, or `done`.
    /// Reading `active` also discards entries whose event was never stored (a crash between the two
    /// writes of a commit that was therefore never acknowledged).
    func ledgerEntries(on shelf: LedgerEntry.Shelf) async throws -> [LedgerEntry]
    /// Durably keeps a signed body that could not be understood, with the reason.
    func quarantine(body: [UInt8], reason: String) async throws
    /// The stored event with this id, if any.
    func event(id: String) async throws -> Event?
    /// The stored state of this job, if any.
    func job(id: String) async throws -> Job?
    /// Throws when the store cannot currently write (used for readiness).
    func checkHealth() async throws
    /// Forgets events accepted before `cutoff` (and quarantined bodies kept since before it), except
    /// events whose handler deliveries are still active or dead; their ids can then be accepted again,
    /// so pair this with a replay window (see ``RetentionService``). Returns how many events it removed.
    func prune(acceptedBefore cutoff: Date) async throws -> Int
}

extension EventStore {
    /// Stores that cannot forget throw: retention needs a store that implements it.
    public func prune(acceptedBefore cutoff: Date) async throws -> Int {
        throw WebhookError(.invalidConfiguration, "\(Self.self) does not support retention (prune)")
    }

    /// Claims `event.id` and durably stores the event and its job state, without a ledger entry.
    public func commit(_ event: Event) async throws -> Outcome {
        try await self.commit(event, ledger: nil)
    }
}
