import KliqWebhooks
import NIOCore
import PostgresNIO

extension PostgresEventStore {
    /// Leaves a job state `kliq-webhooks jobs reconcile` polled (the event's body) for a running
    /// receiver to store and dispatch (see ``takePolled(limit:)``). - Returns: its id.
    public func submitPolled(_ body: [UInt8]) async throws -> Int64 {
        let row = try await self.one("INSERT INTO \(s)polled_inbox (body) VALUES ($1) RETURNING id", [ByteBuffer(bytes: body)], "submit a polled state")
        return try row?.decode(Int64.self) ?? 0
    }

    /// Whether the polled state `id` still waits for a receiver.
    public func isPolledWaiting(_ id: Int64) async throws -> Bool {
        try await self.one("SELECT 1 FROM \(s)polled_inbox WHERE id = $1", [id], "read the polled inbox") != nil
    }

    /// Hands up to `limit` waiting polled states to `body`, oldest first, and removes those it returned
    /// from without throwing — in one transaction, so replicas never take the same one
    /// (`FOR UPDATE SKIP LOCKED`), and one that could not be stored stays.
    public func takePolled(limit: Int, _ body: @escaping @Sendable ([UInt8]) async throws -> Void) async throws -> Int {
        try await self.transaction("take polled states") { connection in
            var select = PostgresQuery(unsafeSQL: "SELECT id, body FROM \(self.s)polled_inbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED")
            select.binds.append(Int64(limit))
            var taken: [Int64] = []
            var rows: [(Int64, ByteBuffer)] = []
            for try await row in try await connection.query(select, logger: self.logger).decode((Int64, ByteBuffer).self) { rows.append(row) }
            for (id, bytes) in rows {
                do {
                    try await body(Array(buffer: bytes))
                    taken.append(id)
                } catch {
                    self.logger.warning("could not store a polled state", metadata: ["kliq.error": "\(error)"])
                }
            }
            var delete = PostgresQuery(unsafeSQL: "DELETE FROM \(self.s)polled_inbox WHERE id = ANY($1)")
            delete.binds.append(taken)
            _ = try await connection.query(delete, logger: self.logger).collect()
            return taken.count
        }
    }
}
