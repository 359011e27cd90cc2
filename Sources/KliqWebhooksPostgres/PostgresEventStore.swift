import Foundation
import KliqWebhooks
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A store in PostgreSQL: several receivers (replicas behind one load balancer, or services that embed
/// the receiver) on one database behave as one.
///
/// It keeps every rule of ``EventStore`` with the database doing the deciding:
/// - **Accept** is one statement, so one transaction and one round trip: the event body (`bytea`, byte
///   for byte) is inserted with `ON CONFLICT (id) DO NOTHING` — exactly one `accepted` per id across all
///   replicas, a concurrent second insert waits for the first to commit and then answers `duplicate` —
///   with the job state (replaced only when later in job-state order, compared in SQL) and a delivery row
///   for the handlers. The sequence number is the table's identity column.
/// - **Claims** take the head of each job's lane with `FOR UPDATE SKIP LOCKED` and set a lease
///   (`claimed_by`, `lease_until`, a new `token`): replicas never wait on each other's claims, an expired
///   lease is taken over by the next claim, and a settle counts only from the holder of the current token.
/// - A `cv.job.*` accept that stores a finished job state (completed, failed) is followed, within 50 ms, by
///   a `NOTIFY` on ``notificationChannel`` with the job id as payload (never the body): a wake-up hint for
///   waiters on other replicas, who then read the store. It is batched outside the accept's transaction,
///   because `NOTIFY` takes a database-wide lock at commit.
///
/// The schema (default `kliq`) holds every object; ``migrate()`` creates or upgrades it under an advisory
/// lock, so replicas starting together are safe.
///
/// Run it as a ServiceLifecycle service (it runs its `PostgresClient`), and migrate before the first
/// accept:
///
/// ```swift
/// let store = try PostgresEventStore(url: "postgres://kliq:secret@db:5432/kliq", logger: logger)
/// let group = ServiceGroup(services: [store, server], logger: logger)
/// async let running: Void = group.run()
/// try await store.migrate()
/// ```
public final class PostgresEventStore: SharedEventStore, Service {
    /// The connection pool (a ServiceLifecycle service run by ``run()``).
    public let client: PostgresClient
    /// The schema holding every table.
    public let schema: String
    let logger: Logger
    /// `"schema".` — validated, so it can be spliced into statements.
    let s: String

    /// How long one database operation may take — waiting for a connection included — before it fails
    /// with `storage_unavailable` (so an unreachable database answers `503`, never hangs a request).
    public let operationTimeout: Duration
    /// How often a waiter reads a job again in case an announcement was lost.
    public let jobPollInterval: Duration

    /// Finished job states waiting to be announced.
    let announcements = Announcements()

    /// The channel job-state changes are announced on (`kliq_jobs` for the default schema).
    public var notificationChannel: String { Self.channel(for: self.schema) }

    static func channel(for schema: String) -> String { schema == "kliq" ? "kliq_jobs" : "kliq_jobs_\(schema)" }

    /// - Parameters:
    ///   - configuration: how to reach the database (see ``PostgresURL`` to read one from a URL).
    ///   - schema: the schema for every object: letters, digits and `_`, starting with a letter or `_`.
    /// - Throws: ``WebhookError`` (`invalid_configuration`) for a schema name that is not such an identifier.
    ///   - operationTimeout: see ``operationTimeout``.
    ///   - jobPollInterval: see ``jobPollInterval``.
    public init(configuration: PostgresClient.Configuration, schema: String = "kliq", operationTimeout: Duration = .seconds(10),
                jobPollInterval: Duration = .seconds(5), logger: Logger) throws(WebhookError) {
        guard Self.isIdentifier(schema) else {
            throw WebhookError(.invalidConfiguration, "the database schema must be letters, digits and _ (at most 63), not '\(schema)'")
        }
        self.schema = schema
        self.s = "\"\(schema)\"."
        self.operationTimeout = operationTimeout
        self.jobPollInterval = jobPollInterval
        self.logger = logger
        var configuration = configuration
        configuration.options.connectTimeout = .seconds(10)
        // Unqualified names resolve to the schema, so the hot statements can be prepared once per connection.
        configuration.options.additionalStartupParameters.append(("search_path", schema))
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    /// A store on the database at `url` (see ``PostgresURL``).
    public convenience init(url: String, schema: String = "kliq", operationTimeout: Duration = .seconds(10), logger: Logger) throws(WebhookError) {
        try self.init(configuration: try PostgresURL(url).configuration, schema: schema, operationTimeout: operationTimeout, logger: logger)
    }

    /// Whether `name` can be a schema: letters, digits and `_`, at most 63, not starting with a digit.
    public static func isValidSchema(_ name: String) -> Bool { Self.isIdentifier(name) }

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63 else { return false }
        let letters = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
        return letters.contains(first) && name.unicodeScalars.allSatisfy { letters.contains($0) || ("0"..."9").contains($0) }
    }

    /// Runs the connection pool until the task is cancelled or the service group shuts down.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.client.run() }
                group.addTask { await self.announceJobs() }
                await group.next()
                group.cancelAll()
            }
        }
    }

    // MARK: Accepting

    public func accept(_ event: Event, handlers: [String]) async throws -> Acceptance {
        let job = JobRecord(event: event)
        let entry = handlers.isEmpty ? nil : LedgerEntry(event: event, handlers: handlers, acceptedAt: Timestamp.now().rfc3339)
        let entryBytes = try entry.map(Self.encode)
        let lane = entry.map { $0.jobId.map { "job:" + $0 } ?? "event:" + $0.eventId }
        let statement = AcceptStatement(
            event: event, job: job, lane: lane, laneOrderKey: entry.map { $0.laneOrderKey }, entry: entryBytes, handlers: handlers.sorted())
        let (sequence, jobChanged): (Int64?, Int64)
        do {
            (sequence, jobChanged) = try await self.withDeadline("accept") {
                var result: (Int64?, Int64) = (nil, 0)
                for try await row in try await self.client.execute(statement, logger: self.logger) { result = row }
                return result
            }
        } catch {
            throw self.storageError(error, "accept")
        }
        // A finished job state is announced after the commit, batched (see `Announcements`).
        if jobChanged > 0, let job, job.status == .completed || job.status == .failed { self.announcements.add(job.jobId) }
        guard let sequence else { return .duplicate }
        return .accepted(sequence: UInt64(sequence))
    }

    public func quarantine(body: [UInt8], reason: String) async throws {
        let digest = Hex.encode(Crypto.sha256(body))
        try await self.run(
            "INSERT INTO \(s)quarantine (sha256, body, reason) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
            [digest, ByteBuffer(bytes: body), reason], "quarantine")
    }

    // MARK: Dispatching

    public func claim(handlers: Set<String>, owner: String, limit: Int, maxBytes: Int, lease: Duration) async throws -> [Claim] {
        guard !handlers.isEmpty, limit > 0 else { return [] }
        let rows = try await self.all(
            """
            WITH heads AS (
              SELECT DISTINCT ON (lane) event_id, sequence, lease_until, unsettled, due_at, bytes
              FROM \(s)deliveries
              WHERE shelf = 'active' AND unsettled && $1::text[]
              ORDER BY lane, order_key, sequence
            ), due AS (
              SELECT event_id, sequence, bytes FROM heads
              WHERE (lease_until IS NULL OR lease_until <= clock_timestamp())
                AND EXISTS (SELECT 1 FROM unnest(unsettled, due_at) AS d(handler, at)
                            WHERE d.handler = ANY($1::text[]) AND d.at <= clock_timestamp())
              ORDER BY sequence LIMIT $2
            ), budget AS (
              SELECT event_id FROM (
                SELECT event_id, row_number() OVER w AS n, sum(bytes) OVER w AS running FROM due WINDOW w AS (ORDER BY sequence)
              ) b WHERE n = 1 OR running <= $3
            ), locked AS (
              SELECT d.event_id FROM \(s)deliveries d JOIN budget USING (event_id)
              WHERE d.shelf = 'active' AND (d.lease_until IS NULL OR d.lease_until <= clock_timestamp())
              FOR UPDATE OF d SKIP LOCKED
            )
            UPDATE \(s)deliveries d
            SET claimed_by = $4, lease_until = clock_timestamp() + $5 * interval '1 millisecond', token = nextval('\(s)lease_tokens')
            FROM locked, \(s)events e
            WHERE d.event_id = locked.event_id AND e.id = d.event_id
            RETURNING d.sequence, d.entry, d.token, e.body, e.signature
            """,
            [handlers.sorted(), Int64(limit), Int64(maxBytes), owner, lease.milliseconds], "claim")
        var claims: [(UInt64, Claim)] = []
        for row in rows {
            let (sequence, entryBytes, token, body, signature) = try row.decode((Int64, ByteBuffer, Int64, ByteBuffer, String?).self)
            var entry = try Self.decode(entryBytes)
            entry.sequence = UInt64(sequence)
            let event = try Event(decoding: Array(buffer: body), signature: signature)
            claims.append((UInt64(sequence), Claim(event: event, deliveries: entry, owner: owner, token: UInt64(token))))
        }
        return claims.sorted { $0.0 < $1.0 }.map(\.1)
    }

    public func renew(_ claim: Claim, lease: Duration) async throws -> Bool {
        try await self.one(
            """
            UPDATE \(s)deliveries SET lease_until = clock_timestamp() + $4 * interval '1 millisecond'
            WHERE event_id = $1 AND claimed_by = $2 AND token = $3 RETURNING 1
            """,
            [claim.event.id, claim.owner, Int64(claim.token), lease.milliseconds], "renew") != nil
    }

    public func settle(_ claim: Claim, outcomes: [String: DeliveryOutcome]) async throws -> Bool {
        try await self.transaction("settle") { connection in
            let rows = try await connection.query(
                try self.query(
                    "SELECT entry, sequence FROM \(self.s)deliveries WHERE event_id = $1 AND claimed_by = $2 AND token = $3 FOR UPDATE",
                    [claim.event.id, claim.owner, Int64(claim.token)]),
                logger: self.logger
            ).collect()
            guard let row = rows.first else { return false }
            var entry = try Self.entry(row)
            entry.record(outcomes, at: Timestamp.now())
            try await self.write(entry, releasing: true, on: connection)
            return true
        }
    }

    public func release(_ claim: Claim) async {
        _ = try? await self.run(
            "UPDATE \(s)deliveries SET claimed_by = NULL, lease_until = NULL WHERE event_id = $1 AND claimed_by = $2 AND token = $3",
            [claim.event.id, claim.owner, Int64(claim.token)], "release")
    }

    public func pending(handlers: Set<String>) async throws -> Int {
        let row = try await self.one(
            "SELECT count(*) FROM \(s)deliveries WHERE shelf = 'active' AND unsettled && $1::text[]", [handlers.sorted()], "pending")
        return Int(try row?.decode(Int64.self) ?? 0)
    }

    public func redrive(_ filter: RedriveFilter) async throws -> Int {
        var changed = 0
        var cursor = ""
        // In batches, each its own transaction: a re-drive of every dead delivery never holds a long lock.
        while true {
            let after = cursor
            let (count, last, more) = try await self.transaction("redrive") { connection -> (Int, String, Bool) in
                let query = try filter.eventId.map {
                    try self.query("SELECT entry, sequence FROM \(self.s)deliveries WHERE event_id = $1 FOR UPDATE", [$0])
                } ?? self.query(
                    "SELECT entry, sequence FROM \(self.s)deliveries WHERE shelf = 'dead' AND event_id > $1 ORDER BY event_id LIMIT 500 FOR UPDATE",
                    [after])
                let rows = try await connection.query(query, logger: self.logger).collect()
                var count = 0
                var last = after
                for row in rows {
                    var entry = try Self.entry(row)
                    last = entry.eventId
                    guard entry.redrive(handler: filter.handler) else { continue }
                    entry.revision += 1
                    try await self.write(entry, releasing: true, on: connection)
                    count += 1
                }
                return (count, last, filter.eventId == nil && rows.count == 500)
            }
            changed += count
            cursor = last
            if !more { return changed }
        }
    }

    /// Writes `entry` back to its row: its shelf, the handlers still owed and when each is due; with
    /// `releasing`, the lease ends.
    private func write(_ entry: LedgerEntry, releasing: Bool, on connection: PostgresConnection) async throws {
        let due = entry.dueDeliveries
        try await connection.query(
            try self.query(
                """
                UPDATE \(self.s)deliveries SET entry = $2, shelf = $3, unsettled = $4::text[], due_at = $5::timestamptz[]
                \(releasing ? ", claimed_by = NULL, lease_until = NULL" : "") WHERE event_id = $1
                """,
                [entry.eventId, ByteBuffer(bytes: try Self.encode(entry)), entry.shelf.rawValue, due.map(\.handler), due.map(\.at)]),
            logger: self.logger)
    }

    // MARK: Reading

    public func deliveries(eventId: String) async throws -> LedgerEntry? {
        try await self.one("SELECT entry, sequence FROM \(s)deliveries WHERE event_id = $1", [eventId], "read deliveries").map(Self.entry)
    }

    public func deliveries(on shelf: LedgerEntry.Shelf, after cursor: String?, limit: Int) async throws -> [LedgerEntry] {
        try await self.all(
            "SELECT entry, sequence FROM \(s)deliveries WHERE shelf = $1 AND event_id > $2 ORDER BY event_id LIMIT $3",
            [shelf.rawValue, cursor ?? "", Int64(limit)], "list deliveries"
        ).map(Self.entry)
    }

    public func event(id: String) async throws -> Event? {
        guard let row = try await self.one("SELECT body, signature FROM \(s)events WHERE id = $1", [id], "read event") else { return nil }
        let (body, signature) = try row.decode((ByteBuffer, String?).self)
        return try Event(decoding: Array(buffer: body), signature: signature)
    }

    public func events(after: UInt64, matching filter: EventFilter, limit: Int) async throws -> EventPage {
        let limit = max(limit, 1)
        let rows = try await self.all(
            """
            SELECT sequence, id, type, job_id, accepted_at FROM \(s)events
            WHERE sequence > $1 AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR job_id = $3)
              AND ($4::timestamptz IS NULL OR accepted_at >= $4) AND ($5::timestamptz IS NULL OR accepted_at < $5)
            ORDER BY sequence LIMIT $6
            """,
            [Int64(clamping: after), filter.type?.rawValue, filter.jobId, filter.since, filter.until, Int64(limit + 1)], "list events")
        var events: [EventSummary] = []
        for row in rows {
            let (sequence, id, type, jobId, acceptedAt) = try row.decode((Int64, String, String, String?, Date).self)
            events.append(EventSummary(sequence: UInt64(sequence), id: id, type: EventType(type), jobId: jobId, acceptedAt: acceptedAt))
        }
        guard events.count > limit else { return EventPage(events: events, next: nil) }
        events.removeLast()
        return EventPage(events: events, next: events.last?.sequence)
    }

    public func job(id: String) async throws -> Job? {
        guard let row = try await self.one("SELECT document FROM \(s)jobs WHERE id = $1", [id], "read job") else { return nil }
        return try Job(json: JSONValue(parsing: Array(buffer: try row.decode(ByteBuffer.self))))
    }

    /// The stored job document (`jobs/<id>.json` of the files store), byte for byte.
    public func jobDocument(id: String) async throws -> [UInt8]? {
        try await self.one("SELECT document FROM \(s)jobs WHERE id = $1", [id], "read job").map { Array(buffer: try $0.decode(ByteBuffer.self)) }
    }

    /// Stored job documents by id, after `cursor`.
    public func jobDocuments(after cursor: String?, limit: Int) async throws -> [(id: String, document: [UInt8])] {
        try await self.all("SELECT id, document FROM \(s)jobs WHERE id > $1 ORDER BY id LIMIT $2", [cursor ?? "", Int64(limit)], "list jobs").map { row in
            let (id, document) = try row.decode((String, ByteBuffer).self)
            return (id, Array(buffer: document))
        }
    }

    public func jobs(after cursor: String?, limit: Int) async throws -> JobPage {
        let rows = try await self.all(
            "SELECT id, document FROM \(s)jobs WHERE id > $1 ORDER BY id LIMIT $2", [cursor ?? "", Int64(limit + 1)], "list jobs")
        var jobs: [Job] = []
        for row in rows.prefix(limit) {
            let (_, document) = try row.decode((String, ByteBuffer).self)
            jobs.append(try Job(json: JSONValue(parsing: Array(buffer: document))))
        }
        return JobPage(jobs: jobs, next: rows.count > limit ? jobs.last?.id : nil)
    }

    public func track(jobId: String) async throws {
        try await self.run("INSERT INTO \(s)tracked_jobs (job_id) VALUES ($1) ON CONFLICT DO NOTHING", [jobId], "track")
    }

    public func untrack(jobId: String) async throws {
        try await self.run("DELETE FROM \(s)tracked_jobs WHERE job_id = $1", [jobId], "untrack")
    }

    public func trackedJobs(after cursor: String?, limit: Int) async throws -> [TrackedJob] {
        try await self.all(
            "SELECT job_id, tracked_at FROM \(s)tracked_jobs WHERE job_id > $1 ORDER BY job_id LIMIT $2", [cursor ?? "", Int64(limit)],
            "list tracked jobs"
        ).map { row in
            let (id, at) = try row.decode((String, Date).self)
            return TrackedJob(jobId: id, trackedAt: at)
        }
    }

    public func checkHealth() async throws {
        // Shorter than other operations: readiness probes wait a few seconds at most.
        do {
            _ = try await self.withDeadline("reach the database", timeout: min(self.operationTimeout, .seconds(3))) {
                try await self.client.query("SELECT 1", logger: self.logger).collect()
            }
        } catch {
            throw self.storageError(error, "reach the database")
        }
    }

    public func prune(acceptedBefore cutoff: Date) async throws -> Int {
        var removed = 0
        // In batches of 1,000, each its own short transaction.
        while true {
            let row = try await self.one(
                """
                WITH gone AS (
                  DELETE FROM \(s)events WHERE sequence IN (
                    SELECT e.sequence FROM \(s)events e
                    WHERE e.accepted_at < $1
                      AND NOT EXISTS (SELECT 1 FROM \(s)deliveries d WHERE d.event_id = e.id AND d.shelf <> 'done')
                    ORDER BY e.sequence LIMIT 1000)
                  RETURNING 1
                ) SELECT count(*) FROM gone
                """,
                [cutoff], "prune")
            let count = Int(try row?.decode(Int64.self) ?? 0)
            removed += count
            if count < 1000 { break }
        }
        try await self.run("DELETE FROM \(s)quarantine WHERE received_at < $1", [cutoff], "prune quarantine")
        return removed
    }
}
