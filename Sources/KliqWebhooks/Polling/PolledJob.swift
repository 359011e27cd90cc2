/// A job's final state as KLIQ's API reports it (`GET /tenants/{t}/cv/jobs/{id}`), turned into the
/// webhook envelope the polling fallback stores and dispatches: type `cv.job.completed` or
/// `cv.job.failed`, id `poll_<jobId>_<status>`, top-level `"source":"poll"`, `timestamp` the job's own
/// completion (or update) time from the API, and `data` built from the job — `jobId`, `observationId`,
/// `model`, `status`, and `result` or `error` — with their values spliced byte for byte.
///
/// ```swift
/// if let event = try PolledJob.event(fromAPIJob: body, tenantId: "t_xyz789") {
///     _ = try await receiver.receive(polled: event)
/// }
/// ```
public enum PolledJob {
    /// The API's time fields, in the order the event's `timestamp` is taken from.
    static let timeFields = ["completedAt", "finishedAt", "failedAt", "updatedAt", "createdAt"]

    /// The event for an API job document, or `nil` when the job is not finished.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/unexpectedShape`` when `body` is not a job
    ///   object with string `id` and `status`.
    public static func event(fromAPIJob body: [UInt8], tenantId: String) throws(WebhookError) -> Event? {
        let reader = JSONReader(body)
        var fields: [String: Range<Int>] = [:]
        do {
            for member in try reader.members() { fields[member.key] = member.value }
        } catch {
            throw WebhookError(.unexpectedShape, "the API's job is not a JSON object: \(error)")
        }
        guard let idRange = fields["id"], let jobId = reader.string(at: idRange), !jobId.isEmpty,
            let statusRange = fields["status"], let status = reader.string(at: statusRange)
        else {
            throw WebhookError(.unexpectedShape, "the API's job has no string \"id\" and \"status\"")
        }
        guard JobStatus(status).isTerminal else { return nil }
        func raw(_ key: String) -> [UInt8]? { fields[key].map { Array(body[$0]) } }

        var data: [(String, [UInt8])] = [("jobId", raw("id")!)]
        for key in ["observationId", "model"] { if let value = raw(key) { data.append((key, value)) } }
        data.append(("status", raw("status")!))
        if status == JobStatus.completed.rawValue, let result = raw("result") { data.append(("result", result)) }
        if status == JobStatus.failed.rawValue, let error = raw("error") { data.append(("error", error)) }

        var envelope: [(String, [UInt8])] = [
            ("id", JSONWriter.string("poll_\(jobId)_\(status)")),
            ("type", JSONWriter.string("cv.job.\(status)")),
            ("source", JSONWriter.string(Event.pollSource)),
            ("tenantId", JSONWriter.string(tenantId)),
        ]
        if let time = Self.timeFields.lazy.compactMap({ fields[$0].flatMap(reader.string(at:)) }).first {
            envelope.append(("timestamp", JSONWriter.string(time)))
        }
        envelope.append(("data", Array(JSONWriter.object(data).dropLast())))
        return try Event(decoding: JSONWriter.object(envelope))
    }
}

extension PolledJob {
    /// The job documents of one page of KLIQ's job list, each byte for byte, and the next page's
    /// cursor: `{"data"|"items"|"jobs": […], "next"|"nextCursor": …}`, or a bare array; `nil` when the
    /// body is neither.
    package static func listPage(_ body: [UInt8]) -> (jobs: [[UInt8]], next: String?)? {
        let reader = JSONReader(body)
        if let elements = try? reader.elements() { return (elements.map { Array(body[$0]) }, nil) }
        guard let members = try? reader.members() else { return nil }
        var fields: [String: Range<Int>] = [:]
        for member in members { fields[member.key] = member.value }
        guard let list = ["data", "items", "jobs"].lazy.compactMap({ fields[$0] }).first, let elements = try? reader.elements(of: list) else { return nil }
        let next = ["next", "nextCursor"].lazy.compactMap { fields[$0].flatMap(reader.string(at:)) }.first
        return (elements.map { Array(body[$0]) }, next)
    }
}
