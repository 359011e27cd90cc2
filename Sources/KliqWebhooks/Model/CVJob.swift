/// The typed payload of a `cv.job.*` event (`data`): a job as KLIQ reports it.
///
/// Only `jobId` is required; everything else is optional so new or partial payloads still decode.
/// ``raw`` holds `data` whole, with any fields this type does not name.
public struct CVJob: Sendable {
    public var jobId: String
    public var observationId: String?
    public var model: Model?
    public var status: JobStatus?
    /// The result of a completed job.
    public var result: JobResult?
    /// Why a failed job failed.
    public var error: JobError?
    /// `data` as sent.
    public var raw: JSONValue

    /// Reads a job from a `cv.job.*` event's `data` (or from a `jobs/` file, whose `id` names the job).
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/unexpectedShape`` when there is no job id.
    public init(json: JSONValue) throws(WebhookError) {
        guard let jobId = json["jobId"]?.stringValue ?? json["id"]?.stringValue else {
            throw WebhookError(.unexpectedShape, "the job has no string \"jobId\"")
        }
        self.jobId = jobId
        self.observationId = json["observationId"]?.stringValue
        self.model = json["model"]?.stringValue.map { Model($0) }
        self.status = json["status"]?.stringValue.map { JobStatus($0) }
        if let result = json["result"], !result.isNull {
            self.result = try JobResult(json: result)
        } else {
            self.result = nil
        }
        self.error = json["error"].flatMap(JobError.init(json:))
        self.raw = json
    }
}

extension Event {
    /// The typed CV-job payload of this event.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/unexpectedShape`` when `data` is not a job.
    public func cvJob() throws(WebhookError) -> CVJob {
        try CVJob(json: self.data)
    }
}

/// A completed job's `result`: detections and a summary.
public struct JobResult: Sendable {
    public var detections: [Detection]
    public var summary: Summary?
    /// `result` as sent.
    public var raw: JSONValue

    public init(json: JSONValue) throws(WebhookError) {
        guard json.objectValue != nil else { throw WebhookError(.unexpectedShape, "\"result\" is not an object") }
        var detections: [Detection] = []
        for element in json["detections"]?.arrayValue ?? [] {
            detections.append(try Detection(json: element))
        }
        self.detections = detections
        self.summary = json["summary"].flatMap { $0.objectValue == nil ? nil : Summary(json: $0) }
        self.raw = json
    }
}

/// A completed job's `result.summary`.
public struct Summary: Sendable {
    public var totalProducts: Int?
    public var uniqueSKUs: Int?
    public var outOfStock: [String]
    /// 0…1.
    public var complianceScore: Double?
    /// `summary` as sent, with any model-specific fields.
    public var raw: JSONValue

    public init(json: JSONValue) {
        self.totalProducts = json["totalProducts"]?.intValue
        self.uniqueSKUs = json["uniqueSKUs"]?.intValue
        self.outOfStock = json["outOfStock"]?.arrayValue?.compactMap(\.stringValue) ?? []
        self.complianceScore = json["complianceScore"]?.doubleValue
        self.raw = json
    }
}

/// Why a job failed. KLIQ does not publish the shape: an object with `code`/`message`, or a string.
public struct JobError: Sendable, CustomStringConvertible {
    /// The machine-readable code, when the error is an object that has one.
    public var code: String?
    /// The message: the object's `message`, or the string itself.
    public var message: String?
    /// `error` as sent.
    public var raw: JSONValue

    public init?(json: JSONValue) {
        switch json {
        case .null:
            return nil
        case .string(let message):
            self.code = nil
            self.message = message
        default:
            self.code = json["code"]?.stringValue
            self.message = json["message"]?.stringValue
        }
        self.raw = json
    }

    public var description: String {
        [self.code, self.message].compactMap { $0 }.joined(separator: ": ")
    }
}
