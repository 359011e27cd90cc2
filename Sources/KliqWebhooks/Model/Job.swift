/// A job's latest known state, as stored in `jobs/<jobId>.json`: the shape of KLIQ's
/// `GET /cv/jobs/{id}` plus the event it came from.
public struct Job: Sendable {
    public var id: String
    public var status: JobStatus
    public var model: Model?
    public var observationId: String?
    public var tenantId: String?
    /// The result, when the job completed.
    public var result: JobResult?
    /// Why it failed, when it failed.
    public var error: JobError?
    /// The event that set this state.
    public var eventId: String
    /// That event's timestamp.
    public var updatedAt: String?
    /// The document as stored.
    public var raw: JSONValue

    /// Reads a stored job document.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/unexpectedShape`` when it is not one.
    public init(json: JSONValue) throws(WebhookError) {
        guard let id = json["id"]?.stringValue, let eventId = json["eventId"]?.stringValue else {
            throw WebhookError(.unexpectedShape, "a job document needs string \"id\" and \"eventId\"")
        }
        self.id = id
        self.status = JobStatus(json["status"]?.stringValue ?? "")
        self.model = json["model"]?.stringValue.map { Model($0) }
        self.observationId = json["observationId"]?.stringValue
        self.tenantId = json["tenantId"]?.stringValue
        if let result = json["result"], !result.isNull {
            self.result = try JobResult(json: result)
        } else {
            self.result = nil
        }
        self.error = json["error"].flatMap(JobError.init(json:))
        self.eventId = eventId
        self.updatedAt = json["updatedAt"]?.stringValue
        self.raw = json
    }

    /// Whether the job is finished (`completed` or `failed`).
    public var isFinished: Bool { self.status.isTerminal }
}
