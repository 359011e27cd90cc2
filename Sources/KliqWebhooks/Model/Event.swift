/// One webhook event: the envelope KLIQ sends, decoded only after its signature was verified.
///
/// The body is kept byte for byte in ``rawBody``; the envelope fields are read from it without
/// re-encoding anything, and ``data`` is built on demand, so unknown fields at any level survive.
///
/// ```swift
/// receiver.on(.cvJobCompleted) { event in
///     let job = try event.cvJob()
///     print(event.id, job.jobId, job.result?.detections.count ?? 0)
/// }
/// ```
public struct Event: Sendable {
    /// The event id, e.g. `evt_abc123`: the deduplication key.
    public let id: String
    /// The event type, e.g. ``EventType/cvJobCompleted``.
    public let type: EventType
    /// The tenant, e.g. `t_xyz789`, when the envelope has one.
    public let tenantId: String?
    /// The envelope `timestamp` exactly as sent, e.g. `2026-04-28T12:00:00Z`.
    public let timestamp: String?
    /// The request body, byte for byte.
    public let rawBody: [UInt8]
    /// `data.jobId`, when it is a string (CV-job events). Read once, while decoding: it routes the event.
    public let jobId: String?
    /// The `X-Kliq-Signature` the event arrived with, when it arrived through ``Receiver/receive(body:signature:)``.
    /// Handlers get it also for events read back from the store (after a restart or a re-drive); an event
    /// stored by 0.5.1, which kept no signature, gets one under the first configured secret.
    public internal(set) var signature: String?

    /// Byte ranges of the envelope's members and, when `data` is an object, of `data`'s members:
    /// found once while decoding, so nothing on the hot path scans the body again.
    let envelope: [String: Range<Int>]
    let dataMembers: [String: Range<Int>]
    let instant: Timestamp?

    /// Decodes an envelope that arrived with `signature`: how a store gives back an event it kept.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/malformedPayload`` and the reason.
    public init(decoding body: [UInt8], signature: String?) throws(WebhookError) {
        try self.init(decoding: body)
        self.signature = signature
    }

    /// Decodes an envelope: a JSON object with a non-empty string `id` and `type`.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/malformedPayload`` and the reason.
    public init(decoding body: [UInt8]) throws(WebhookError) {
        let reader = JSONReader(body)
        let members: [JSONReader.Member]
        do {
            // Reading the members checks the whole text: every value is parsed while being skipped.
            members = try reader.members()
        } catch {
            throw WebhookError(.malformedPayload, "body is not a JSON object: \(error)")
        }
        var envelope: [String: Range<Int>] = [:]
        for member in members { envelope[member.key] = member.value }
        guard let idRange = envelope["id"], let id = reader.string(at: idRange), !id.isEmpty else {
            throw WebhookError(.malformedPayload, "the envelope has no non-empty string \"id\"")
        }
        guard let typeRange = envelope["type"], let type = reader.string(at: typeRange), !type.isEmpty else {
            throw WebhookError(.malformedPayload, "the envelope has no non-empty string \"type\"")
        }
        self.id = id
        self.type = EventType(type)
        self.tenantId = envelope["tenantId"].flatMap(reader.string(at:))
        self.timestamp = envelope["timestamp"].flatMap(reader.string(at:))
        self.instant = self.timestamp.flatMap(Timestamp.init(rfc3339:))
        self.rawBody = body
        self.envelope = envelope
        self.dataMembers = Self.members(of: envelope["data"], in: reader)
        self.jobId = self.dataMembers["jobId"].flatMap(reader.string(at:))
        self.signature = nil
    }

    /// The envelope's `data`, or `null` when absent.
    public var data: JSONValue {
        guard let range = self.envelope["data"] else { return .null }
        // The whole body was validated on decoding, so this cannot fail.
        return (try? JSONReader(self.rawBody).value(of: range)) ?? .null
    }


    /// Where the event came from: `nil` for a webhook as KLIQ sent it; `"poll"` for a job state the
    /// polling fallback read from KLIQ's API (an envelope the receiver built, with top-level
    /// `"source":"poll"`; see ``Receiver/track(jobId:)``).
    public var source: String? { self.envelope["source"].flatMap { JSONReader(self.rawBody).string(at: $0) } }

    /// Whether the polling fallback made this event (``source`` is `"poll"`).
    public var isPolled: Bool { self.source == Self.pollSource }

    /// The ``source`` of events the polling fallback makes.
    public static let pollSource = "poll"

    /// `data.observationId`, when it is a string.
    public var observationId: String? { self.dataMember("observationId").flatMap { JSONReader(self.rawBody).string(at: $0) } }

    /// `data.visitId`, when it is a string (e.g. `visit.submitted`).
    public var visitId: String? { self.dataMember("visitId").flatMap { JSONReader(self.rawBody).string(at: $0) } }

    private static func members(of range: Range<Int>?, in reader: JSONReader) -> [String: Range<Int>] {
        guard let range, let members = try? reader.members(of: range, checked: true) else { return [:] }
        var result: [String: Range<Int>] = [:]
        for member in members { result[member.key] = member.value }
        return result
    }

    private func dataMember(_ key: String) -> Range<Int>? { self.dataMembers[key] }
}
