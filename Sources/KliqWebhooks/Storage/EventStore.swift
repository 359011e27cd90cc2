/// What happened to a delivery that passed verification.
public enum Outcome: String, Sendable, Hashable {
    /// The event id was new; the event is now durably stored and will be dispatched.
    case accepted
    /// The event id was already stored; nothing was written and handlers do not run again.
    case duplicate
}

/// What ``EventStore/accept(_:handlers:)`` decided.
public enum Acceptance: Sendable, Hashable {
    /// The id was new: the event is durably stored under this sequence number (see ``EventStore``).
    case accepted(sequence: UInt64)
    /// The id was stored before; nothing changed but a repair of the job state (see ``EventStore``).
    case duplicate

    /// `.accepted` or `.duplicate`.
    public var outcome: Outcome {
        if case .accepted = self { return .accepted }
        return .duplicate
    }
}

/// One event's handler deliveries, leased to one dispatcher for a while (see ``EventStore``).
public struct Claim: Sendable {
    /// The event, byte for byte, with the signature it arrived with (or, for an event stored by 0.5.1,
    /// none: the receiver signs it with its first secret).
    public var event: Event
    /// Where each handler's delivery stands, as claimed.
    public var deliveries: LedgerEntry
    /// Who holds the lease.
    public var owner: String
    /// This claim, among all claims of the event: a settle or renewal with an older token is refused.
    public var token: UInt64

    public init(event: Event, deliveries: LedgerEntry, owner: String, token: UInt64) {
        self.event = event
        self.deliveries = deliveries
        self.owner = owner
        self.token = token
    }
}

/// What one attempt of one handler came to, as recorded by ``EventStore/settle(_:outcomes:)``.
public enum DeliveryOutcome: Sendable, Hashable {
    /// The handler returned: never run again unless re-driven by name.
    case succeeded
    /// The handler threw: run again at `nextAttemptAt`, or dead when it is `nil`.
    case failed(error: String, nextAttemptAt: Date?)
}

/// One page of ``EventStore/jobs(after:limit:)``.
public struct JobPage: Sendable {
    /// The jobs of this page.
    public var jobs: [Job]
    /// The cursor of the next page; `nil` after the last one.
    public var next: String?

    public init(jobs: [Job], next: String?) {
        self.jobs = jobs
        self.next = next
    }
}

/// One accepted event as ``EventStore/events(after:matching:limit:)`` lists it.
public struct EventSummary: Sendable, Hashable {
    /// Its sequence number: the order it was accepted in.
    public var sequence: UInt64
    public var id: String
    public var type: EventType
    public var jobId: String?
    /// When the store accepted it.
    public var acceptedAt: Date

    public init(sequence: UInt64, id: String, type: EventType, jobId: String?, acceptedAt: Date) {
        self.sequence = sequence
        self.id = id
        self.type = type
        self.jobId = jobId
        self.acceptedAt = acceptedAt
    }
}

/// A job someone awaits, as ``EventStore/trackedJobs(after:limit:)`` lists it.
public struct TrackedJob: Sendable, Hashable {
    public var jobId: String
    /// When it was first tracked (tracking again does not move it): the polling fallback reads the job
    /// from KLIQ's API once it has been tracked this long without a final state.
    public var trackedAt: Date

    public init(jobId: String, trackedAt: Date) {
        self.jobId = jobId
        self.trackedAt = trackedAt
    }
}

/// Which events ``EventStore/events(after:matching:limit:)`` lists; every key set must match.
public struct EventFilter: Sendable, Hashable {
    /// Only events of this type.
    public var type: EventType?
    /// Only events of this job.
    public var jobId: String?
    /// Only events accepted at or after this time.
    public var since: Date?
    /// Only events accepted before this time.
    public var until: Date?

    /// Every event.
    public static let all = EventFilter()

    public init(type: EventType? = nil, jobId: String? = nil, since: Date? = nil, until: Date? = nil) {
        self.type = type
        self.jobId = jobId
        self.since = since
        self.until = until
    }

    /// Whether `summary` matches.
    public func matches(_ summary: EventSummary) -> Bool {
        (self.type.map { $0 == summary.type } ?? true) && (self.jobId.map { $0 == summary.jobId } ?? true)
            && (self.since.map { summary.acceptedAt >= $0 } ?? true) && (self.until.map { summary.acceptedAt < $0 } ?? true)
    }
}

/// One page of ``EventStore/events(after:matching:limit:)``.
public struct EventPage: Sendable {
    /// Matching events, in sequence order.
    public var events: [EventSummary]
    /// Where the next page starts (pass it as `after`); `nil` once every event has been looked at.
    public var next: UInt64?

    public init(events: [EventSummary], next: UInt64?) {
        self.events = events
        self.next = next
    }
}

/// Which deliveries ``EventStore/redrive(_:)`` makes pending again.
public struct RedriveFilter: Sendable, Hashable {
    /// Only this event (else every event with a dead delivery).
    public var eventId: String?
    /// Only this handler; naming one re-runs it even after it succeeded (else only dead deliveries).
    public var handler: String?

    /// Every dead delivery of every event.
    public static let allDead = RedriveFilter()
    /// The dead deliveries of one event, or with `handler`, that handler's delivery whatever its state.
    public static func event(_ id: String, handler: String? = nil) -> RedriveFilter { .init(eventId: id, handler: handler) }

    public init(eventId: String? = nil, handler: String? = nil) {
        self.eventId = eventId
        self.handler = handler
    }
}

/// Where accepted events, job states and handler deliveries are kept: the receiver's one seam to its
/// storage. Its operations are about meaning, not files, so a database implements them as well as a
/// directory does; ``InMemoryEventStore`` and ``FileEventStore`` are two, and `KliqWebhooksTesting`'s
/// `EventStoreConformance` is the suite every store must pass.
///
/// Rules every conformer keeps:
///
/// **Accepting.**
/// - ``accept(_:handlers:)`` claims the event id and stores, as one durable step, the body byte for byte
///   with its signature, the job's state (for a `cv.job.*` event) and one pending delivery per named
///   handler. It returns only once all of that is durable.
/// - Of any number of accepts of one id — concurrent, repeated, across restarts and across processes
///   sharing the store — exactly one returns `.accepted`; every other returns `.duplicate`, and only
///   once the accepted one is durable. A duplicate never adds deliveries.
/// - Accepted events get strictly increasing sequence numbers (across restarts): the order they were
///   accepted in.
/// - A job state replaces the stored one only when it is later in job-state order (timestamp, then
///   lifecycle step, then event id): a late, earlier-dated event never overwrites a later state. A
///   duplicate re-applies its job state, which is harmless when already applied and repairs one lost.
/// - A job's final state reaches handlers once, whether a webhook or the polling fallback brings it
///   first: an event that makes a job `completed` or `failed` gets no deliveries (it is still stored,
///   and answered `.accepted`) when the job already has a final state and exactly one of the two came
///   from polling (``Event/isPolled``). This is decided with the accept, atomically, as the
///   duplicate check is.
/// - A failed accept throws ``WebhookError/Code/storageUnavailable`` and leaves nothing behind: a retry
///   of the same delivery is a fresh accept.
///
/// **Dispatching.**
/// - ``claim(handlers:owner:limit:maxBytes:lease:)`` leases up to `limit` events with a *due* delivery
///   for one of `handlers` — pending, or failed with its next attempt now or past — to `owner` for
///   `lease`, oldest first. Deliveries for other handlers are not claimed and hold nothing back.
/// - Per-job order: an event is claimable only when no earlier event of its job (by event timestamp,
///   undated last, then sequence) still has an unsettled delivery for one of `handlers`. So a job's
///   events reach each handler one at a time, in order, and a retrying event holds the later ones back.
///   Events without a job id are independent.
/// - A claimed event is not claimed again while its lease runs; once it has run out (the holder died),
///   the next claim takes it over with a new token. ``renew(_:lease:)`` extends a lease still held.
/// - ``settle(_:outcomes:)`` records each handler's outcome and ends the lease, but only for the
///   current holder (same owner and token): a settle from a claim that was taken over returns `false`
///   and changes nothing. ``release(_:)`` ends a lease without recording anything (shutdown).
/// - Claimed bodies add up to at most `maxBytes`, except that one event is always claimable.
/// - ``redrive(_:)`` makes matching deliveries pending with a fresh retry budget and returns how many
///   events it changed; the next claim picks them up.
///
/// - The signature an event arrived with is kept with its deliveries: every ``Claim`` carries it, also
///   after a restart.
///
/// **Reading and upkeep.** Reads see every accepted event once its accept returned.
/// ``events(after:matching:limit:)`` lists stored events by sequence number, after a cursor: following
/// ``EventPage/next`` until it is `nil` yields every matching event once, in sequence order. A page may
/// hold fewer than `limit` events (even none) while `next` is not `nil`: a store may bound how many
/// events one page looks at. An accept still running when a page is read may land behind its cursor
/// (sequence numbers are handed out before the accept is durable), as with a database sequence. ``prune(acceptedBefore:)``
/// forgets old events whose deliveries are all settled and not dead; their ids can be accepted again.
/// Ids from the wire never become paths unvalidated (see ``StorageName``).
public protocol EventStore: Sendable {
    /// Claims `event.id` and durably stores the event, its job state, and a pending delivery for each
    /// of `handlers`.
    func accept(_ event: Event, handlers: [String]) async throws -> Acceptance
    /// Leases up to `limit` events with due deliveries for `handlers` to `owner` for `lease`.
    func claim(handlers: Set<String>, owner: String, limit: Int, maxBytes: Int, lease: Duration) async throws -> [Claim]
    /// Extends a lease still held by `claim`. - Returns: `false` when the lease was lost.
    func renew(_ claim: Claim, lease: Duration) async throws -> Bool
    /// Records the outcome of each handler that ran and ends the lease. - Returns: `false`, recording
    /// nothing, when `claim` no longer holds the lease.
    func settle(_ claim: Claim, outcomes: [String: DeliveryOutcome]) async throws -> Bool
    /// Ends a lease without recording anything: the deliveries are due again at once.
    func release(_ claim: Claim) async
    /// How many events have an unsettled delivery (pending, retrying, or claimed) for one of `handlers`.
    func pending(handlers: Set<String>) async throws -> Int
    /// Makes matching deliveries pending again. - Returns: how many events changed.
    func redrive(_ filter: RedriveFilter) async throws -> Int
    /// Where each handler's delivery of one event stands, if it has any.
    func deliveries(eventId: String) async throws -> LedgerEntry?
    /// Events whose deliveries are on `shelf` (`active`, `dead`, `done`), by event id, after `cursor`.
    func deliveries(on shelf: LedgerEntry.Shelf, after cursor: String?, limit: Int) async throws -> [LedgerEntry]
    /// Durably keeps a signed body that could not be understood, with the reason.
    func quarantine(body: [UInt8], reason: String) async throws
    /// The stored event with this id, if any. (Its signature is kept with its deliveries: a ``Claim``
    /// carries it; here it may be absent.)
    func event(id: String) async throws -> Event?
    /// Stored events matching `filter`, by sequence number, after sequence `after` (0: from the first).
    func events(after: UInt64, matching filter: EventFilter, limit: Int) async throws -> EventPage
    /// The stored state of this job, if any.
    func job(id: String) async throws -> Job?
    /// Stored job states in the store's order, after `cursor` (a ``JobPage/next`` from an earlier page).
    func jobs(after cursor: String?, limit: Int) async throws -> JobPage
    /// Durably remembers that job `jobId` is awaited (for the polling fallback), and since when; tracking
    /// twice is once, and keeps the first time.
    func track(jobId: String) async throws
    /// Forgets that job `jobId` is awaited.
    func untrack(jobId: String) async throws
    /// Tracked jobs, in id order, after the job id `cursor`.
    func trackedJobs(after cursor: String?, limit: Int) async throws -> [TrackedJob]
    /// Throws when the store cannot currently write (used for readiness).
    func checkHealth() async throws
    /// Forgets events accepted before `cutoff` (and quarantined bodies kept since before it), except
    /// events whose deliveries are active or dead; their ids can then be accepted again, so pair this
    /// with a replay window (see ``RetentionService``). Returns how many events it removed.
    func prune(acceptedBefore cutoff: Date) async throws -> Int
}

extension EventStore {
    /// Stores that cannot forget throw: retention needs a store that implements it.
    public func prune(acceptedBefore cutoff: Date) async throws -> Int {
        throw WebhookError(.invalidConfiguration, "\(Self.self) does not support retention (prune)")
    }

    /// Accepts `event` without handler deliveries: `.accepted` or `.duplicate`.
    @discardableResult
    public func commit(_ event: Event) async throws -> Outcome {
        try await self.accept(event, handlers: []).outcome
    }

    /// Every entry on `shelf`, page by page.
    public func allDeliveries(on shelf: LedgerEntry.Shelf) async throws -> [LedgerEntry] {
        var all: [LedgerEntry] = []
        while true {
            let page = try await self.deliveries(on: shelf, after: all.last?.eventId, limit: 1000)
            all += page
            if page.count < 1000 { return all }
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A store several processes share (replicas on one database): a job state one of them stores must
/// wake ``Receiver/waitForCompletion(jobId:timeout:clock:)`` in the others.
///
/// ``jobChanges()`` is a wake-up hint only — a change may be announced twice, or lost (a dropped
/// connection) — so a receiver waiting on such a store also reads the job again every
/// ``jobPollInterval``: a lost hint costs latency, never a missed completion.
public protocol SharedEventStore: EventStore {
    /// Ids of jobs whose stored state changed, in any process, as they are announced, until the task
    /// iterating it is cancelled. The payload is the job id only.
    func jobChanges() -> AsyncStream<String>
    /// How often a waiter reads the job again in case a hint was lost.
    var jobPollInterval: Duration { get }
}
