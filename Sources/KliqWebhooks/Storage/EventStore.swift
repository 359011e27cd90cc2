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
/// - A job state replaces the stored one only when it is later in ``JobRecord`` order (timestamp,
///   then lifecycle step, then event id); a late, earlier-dated event never overwrites a later state.
///   A duplicate commit re-applies its job state, which is harmless when already applied and repairs
///   a state lost to a crash between the two writes.
/// - When a commit fails it throws, and leaves nothing behind: a retry of the same delivery is a
///   fresh commit. Failures to write are ``WebhookError/Code/storageUnavailable``.
/// - Ids from the wire never become paths unvalidated (see ``StorageName``).
public protocol EventStore: Sendable {
    /// Claims `event.id` and durably stores the event and, for CV-job events, the job's state.
    func commit(_ event: Event) async throws -> Outcome
    /// Durably keeps a signed body that could not be understood, with the reason.
    func quarantine(body: [UInt8], reason: String) async throws
    /// The stored event with this id, if any.
    func event(id: String) async throws -> Event?
    /// The stored state of this job, if any.
    func job(id: String) async throws -> Job?
    /// Throws when the store cannot currently write (used for readiness).
    func checkHealth() async throws
}
