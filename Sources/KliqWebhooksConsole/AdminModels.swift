import Foundation
import KliqWebhooks

/// `GET /api/stats`.
struct StatsResponse: Codable, Sendable {
    var accepted: Int
    var duplicates: Int
    var refused: [String: Int]
    /// Handler deliveries waiting for their first run.
    var pending: Int
    /// Handler deliveries that failed and wait for a retry.
    var retrying: Int
    /// Handler deliveries that used every attempt.
    var dead: Int
}

/// One line of `GET /api/events`.
struct EventItem: Codable, Sendable {
    var id: String
    var sequence: UInt64?
    var type: String
    var jobId: String?
    var acceptedAt: String
    /// Handler name → `pending`, `retrying`, `succeeded` or `dead`.
    var handlers: [String: String]
}

/// `{"items": […], "next": CURSOR|null}`: every list of the admin API.
struct Page<Item: Codable & Sendable>: Codable, Sendable {
    var items: [Item]
    var next: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.items, forKey: .items)
        try container.encode(self.next, forKey: .next)  // null, not absent, on the last page
    }
}

/// `GET /api/events/{id}`.
struct EventDetail: Codable, Sendable {
    var id: String
    var sequence: UInt64?
    var type: String
    var jobId: String?
    var acceptedAt: String?
    /// The body as received, as text (it is JSON; the bytes are the stored ones).
    var body: String
    var bytes: Int
    /// Lowercase hex SHA-256 of the body.
    var sha256: String
    var handlers: [String: HandlerDetail]
}

struct HandlerDetail: Codable, Sendable {
    var state: String
    var attempts: [Attempt]
}

/// One handler attempt. A success's time is not recorded by the stores: `at` is `null` for it.
struct Attempt: Codable, Sendable {
    var at: String?
    var outcome: String
    var error: String?
    var nextAttemptAt: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.at, forKey: .at)
        try container.encode(self.outcome, forKey: .outcome)
        try container.encode(self.error, forKey: .error)
        try container.encode(self.nextAttemptAt, forKey: .nextAttemptAt)
    }
}

/// One line of `GET /api/jobs`.
struct JobItem: Codable, Sendable {
    var id: String
    var status: String
    var model: String?
    var updatedAt: String?
    var eventId: String
}

/// `{"error": CODE, "message": TEXT}`, as the webhook endpoint answers.
struct ErrorBody: Codable, Sendable {
    var error: String
    var message: String
}

/// A ``JSONValue`` written back out (a job's stored document).
struct AnyJSON: Encodable, Sendable {
    var value: JSONValue

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self.value {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values.map(AnyJSON.init))
        case .object(let members): try container.encode(members.mapValues(AnyJSON.init))
        }
    }
}

extension LedgerEntry.HandlerState {
    /// The attempts as the admin API shows them: each failure, then the success if there was one.
    var timeline: [Attempt] {
        var attempts = self.failures.map { Attempt(at: $0.at, outcome: "failure", error: $0.error, nextAttemptAt: nil) }
        if self.status == .retrying, !attempts.isEmpty { attempts[attempts.count - 1].nextAttemptAt = self.nextAttemptAt }
        if self.status == .dead, !attempts.isEmpty { attempts[attempts.count - 1].outcome = "dead" }
        if self.status == .succeeded { attempts.append(Attempt(at: nil, outcome: "success", error: nil, nextAttemptAt: nil)) }
        return attempts
    }
}
