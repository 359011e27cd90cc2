import Foundation
import KliqWebhooks
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The accept, prepared once per connection (unqualified names: each connection's `search_path` is the
/// store's schema). One statement, so one transaction and one round trip: the event, the job state if
/// later, and the deliveries.
struct AcceptStatement: PostgresPreparedStatement {
    static let name = "kliq_accept_v2"
    /// `$15` is the source of a final state (`webhook`/`poll`), else NULL. For a final state the job row
    /// is always updated — its `final_from` keeps the first source — so the row lock, which a
    /// concurrent accept of the same job waits for, decides whether this one gets deliveries.
    static let sql = """
        WITH new_event AS (
          INSERT INTO events (id, type, job_id, body, signature) VALUES ($1, $2, $3, $4, $5)
          ON CONFLICT (id) DO NOTHING
          RETURNING sequence
        ), job AS (
          INSERT INTO jobs AS j (id, document, order_key, status, final_from)
          SELECT $6::text, $7::bytea, $8::bytea, $9::text, $15::text WHERE $6::text IS NOT NULL
          ON CONFLICT (id) DO UPDATE SET
            document = CASE WHEN j.order_key < EXCLUDED.order_key THEN EXCLUDED.document ELSE j.document END,
            status = CASE WHEN j.order_key < EXCLUDED.order_key THEN EXCLUDED.status ELSE j.status END,
            updated_at = CASE WHEN j.order_key < EXCLUDED.order_key THEN clock_timestamp() ELSE j.updated_at END,
            order_key = greatest(j.order_key, EXCLUDED.order_key),
            final_from = coalesce(j.final_from, EXCLUDED.final_from)
            WHERE j.order_key < EXCLUDED.order_key OR EXCLUDED.final_from IS NOT NULL
          RETURNING id, final_from, order_key = $8::bytea AS applied
        ), delivery AS (
          INSERT INTO deliveries (event_id, sequence, lane, order_key, shelf, entry, unsettled, due_at, bytes)
          SELECT $1, sequence, $10, $11, 'active', $12, $13::text[],
            array_fill('-infinity'::timestamptz, ARRAY[cardinality($13::text[])]), $14
          FROM new_event WHERE $12::bytea IS NOT NULL
            AND ($15::text IS NULL OR (SELECT final_from FROM job) IS NOT DISTINCT FROM $15::text)
        )
        SELECT (SELECT sequence FROM new_event), (SELECT count(*) FROM job WHERE applied)
        """
    typealias Row = (Int64?, Int64)

    var event: Event
    var job: JobRecord?
    var lane: String?
    var laneOrderKey: [UInt8]?
    var entry: [UInt8]?
    var handlers: [String]

    func makeBindings() throws -> PostgresBindings {
        var binds = PostgresBindings(capacity: 15)
        binds.append(self.event.id)
        binds.append(self.event.type.rawValue)
        binds.append(self.event.jobId)
        binds.append(ByteBuffer(bytes: self.event.rawBody))
        binds.append(self.event.signature)
        binds.append(self.job?.jobId)
        binds.append(self.job.map { ByteBuffer(bytes: $0.bytes) })
        binds.append(self.job.map { ByteBuffer(bytes: $0.orderKey) })
        binds.append(self.job?.status.rawValue)
        binds.append(self.lane)
        binds.append(self.laneOrderKey.map { ByteBuffer(bytes: $0) })
        binds.append(self.entry.map { ByteBuffer(bytes: $0) })
        binds.append(self.handlers)
        binds.append(Int64(self.event.rawBody.count))
        binds.append(self.job.flatMap { $0.status.isTerminal ? ($0.fromPoll ? "poll" : "webhook") : nil })
        return binds
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

// MARK: - Plumbing

extension PostgresEventStore {
    typealias Bind = (any PostgresThrowingDynamicTypeEncodable)?

    /// A statement with positional binds (`$1`…); the schema is spliced in by the caller.
    func query(_ sql: String, _ binds: [Bind]) throws -> PostgresQuery {
        var query = PostgresQuery(unsafeSQL: sql)
        for bind in binds {
            if let bind { try query.binds.append(bind) } else { query.binds.appendNull() }
        }
        return query
    }

    func all(_ sql: String, _ binds: [Bind], _ what: String) async throws -> [PostgresRow] {
        try await self.all(try self.query(sql, binds), what)
    }

    func all(_ query: PostgresQuery, _ what: String) async throws -> [PostgresRow] {
        do {
            return try await self.withDeadline(what) { try await self.client.query(query, logger: self.logger).collect() }
        } catch {
            throw self.storageError(error, what)
        }
    }

    /// Runs `work`, or fails with `storage_unavailable` once ``operationTimeout`` has passed. The work
    /// is then cancelled, but not waited for: a query stuck on a connection the server dropped (seen
    /// when PostgreSQL restarts under load) may not end at once, and the caller must not wait with it.
    func withDeadline<T: Sendable>(_ what: String, timeout: Duration? = nil, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = timeout ?? self.operationTimeout
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.start(continuation)
                let worker = Task {
                    do { race.finish(.success(try await work())) } catch { race.finish(.failure(error)) }
                }
                let timer = Task {
                    try? await Task.sleep(for: timeout)
                    race.finish(.failure(WebhookError(.storageUnavailable, "PostgreSQL: cannot \(what): no answer within \(timeout) (is the database reachable?)")))
                }
                // Whichever way it ends, the other side stops (cancelling a finished task does nothing).
                race.onEnd { worker.cancel(); timer.cancel() }
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    func one(_ sql: String, _ binds: [Bind], _ what: String) async throws -> PostgresRow? {
        try await self.all(sql, binds, what).first
    }

    func one(_ query: PostgresQuery, _ what: String) async throws -> PostgresRow? {
        try await self.all(query, what).first
    }

    func run(_ sql: String, _ binds: [Bind], _ what: String) async throws {
        _ = try await self.all(sql, binds, what)
    }

    func transaction<T: Sendable>(_ what: String, _ work: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await self.withDeadline(what) { try await self.client.withTransaction(logger: self.logger) { try await work($0) } }
        } catch let error as WebhookError {
            throw error
        } catch let error as PostgresTransactionError {
            throw self.storageError(error.closureError ?? error.beginError ?? error.commitError ?? error, what)
        } catch {
            throw self.storageError(error, what)
        }
    }

    /// A database failure as `storage_unavailable`, with the server's message but never the query's
    /// binds (which hold bodies) nor the connection's password.
    func storageError(_ error: any Error, _ what: String) -> WebhookError {
        if let error = error as? WebhookError { return error }
        let detail: String
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                detail = "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
            } else {
                detail = "\(error.code)"
            }
        } else {
            detail = String(describing: type(of: error))
        }
        return WebhookError(.storageUnavailable, "PostgreSQL: cannot \(what): \(detail)")
    }

    static func encode(_ entry: LedgerEntry) throws -> [UInt8] { try entry.encodedJSON() }

    static func decode(_ bytes: ByteBuffer) throws -> LedgerEntry {
        try JSONDecoder().decode(LedgerEntry.self, from: Data(bytes.readableBytesView))
    }

    /// A row's `entry, sequence` as the entry (the table's sequence number is the true one).
    static func entry(_ row: PostgresRow) throws -> LedgerEntry {
        let (bytes, sequence) = try row.decode((ByteBuffer, Int64).self)
        var entry = try Self.decode(bytes)
        entry.sequence = UInt64(sequence)
        return entry
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// The first of a piece of work and its deadline to finish resumes the caller; the other is ignored.
final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var finished = false
        var onEnd: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = self.state.withLock { state -> Result<T, any Error>? in
            if state.early == nil { state.continuation = continuation }
            return state.early
        }
        if let early { continuation.resume(with: early) }
    }

    /// Runs `action` when the race is decided (at once if it is).
    func onEnd(_ action: @escaping @Sendable () -> Void) {
        let now = self.state.withLock { state -> Bool in
            if !state.finished { state.onEnd.append(action) }
            return state.finished
        }
        if now { action() }
    }

    /// Resumes the caller with `result` unless something already did. - Returns: whether this did.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let decided = self.state.withLock { state -> (CheckedContinuation<T, any Error>?, [@Sendable () -> Void])? in
            guard !state.finished else { return nil }
            state.finished = true
            if state.continuation == nil { state.early = result }
            defer { state.continuation = nil; state.onEnd = [] }
            return (state.continuation, state.onEnd)
        }
        guard let (continuation, actions) = decided else { return false }
        continuation?.resume(with: result)
        for action in actions { action() }
        return true
    }
}
