import Foundation
import KliqWebhooks
import Logging
import NIOCore
import PostgresNIO
import Synchronization

// MARK: - Moving data in and out

extension PostgresEventStore {
    /// Stored events by sequence number after `after`, with their bodies byte for byte (for `export`).
    public func eventBodies(after: UInt64, limit: Int) async throws -> [(sequence: UInt64, id: String, body: [UInt8])] {
        try await self.all(
            "SELECT sequence, id, body FROM \(s)events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            [Int64(clamping: after), Int64(limit)], "export events"
        ).map { row in
            let (sequence, id, body) = try row.decode((Int64, String, ByteBuffer).self)
            return (UInt64(sequence), id, Array(buffer: body))
        }
    }

    /// Stores an event moved from another store, with its deliveries as they stood there and when it
    /// was accepted; an id already stored is left as it is. - Returns: whether it was new.
    public func importEvent(_ event: Event, deliveries: LedgerEntry?, acceptedAt: Date) async throws -> Bool {
        let entryBytes = try deliveries.map(Self.encode)
        let due = deliveries?.dueDeliveries ?? []
        let row = try await self.one(
            """
            WITH new_event AS (
              INSERT INTO \(s)events (id, type, job_id, body, signature, accepted_at) VALUES ($1, $2, $3, $4, $5, $6)
              ON CONFLICT (id) DO NOTHING
              RETURNING sequence
            ), delivery AS (
              INSERT INTO \(s)deliveries (event_id, sequence, lane, order_key, shelf, entry, unsettled, due_at, bytes)
              SELECT $1, sequence, $7, $8, $9, $10, $11::text[], $12::timestamptz[], $13 FROM new_event WHERE $10::bytea IS NOT NULL
            )
            SELECT count(*) FROM new_event
            """,
            [event.id, event.type.rawValue, event.jobId, ByteBuffer(bytes: event.rawBody), deliveries?.signature ?? event.signature, acceptedAt,
             event.jobId.map { "job:" + $0 } ?? "event:" + event.id, ByteBuffer(bytes: deliveries?.laneOrderKey ?? [1]), deliveries?.shelf.rawValue ?? "done",
             entryBytes.map { ByteBuffer(bytes: $0) }, due.map(\.handler), due.map(\.at), Int64(event.rawBody.count)],
            "import an event")
        return try row?.decode(Int64.self) == 1
    }

    /// Stores a job document moved from another store (a `jobs/<id>.json` file), unless a later state
    /// of that job is stored. - Returns: whether it was stored.
    public func importJob(document: [UInt8]) async throws -> Bool {
        let json = try JSONValue(parsing: document)
        let job = try Job(json: json)
        guard let order = JobRecord.order(ofStored: document) else {
            throw WebhookError(.malformedPayload, "job document \(job.id) has no eventId")
        }
        let row = try await self.one(
            """
            INSERT INTO \(s)jobs AS j (id, document, order_key, status, final_from) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, order_key = EXCLUDED.order_key, status = EXCLUDED.status,
                final_from = coalesce(j.final_from, EXCLUDED.final_from)
              WHERE j.order_key < EXCLUDED.order_key
            RETURNING 1
            """,
            [job.id, ByteBuffer(bytes: document), ByteBuffer(bytes: order.key), job.status.rawValue,
             job.isFinished ? (json["source"]?.stringValue == Event.pollSource ? "poll" : "webhook") : nil], "import a job")
        return row != nil
    }
}
