import KliqWebhooks

extension Fixture {
    /// A copy with some envelope or job fields changed, so one fixture makes many cases. Only the named
    /// values' bytes change (the rest stays exactly as in the file), and a field that is absent is added.
    ///
    /// ```swift
    /// let late = try fixtures.load("cv.job.completed.shelf-detection-v2")
    ///     .with(eventId: "evt_2", jobId: "job_42", timestamp: "2026-04-28T13:00:00Z")
    /// ```
    /// - Throws: `WebhookError` when the fixture is not an envelope (or has no `data` for job fields).
    public func with(
        eventId: String? = nil,
        type: EventType? = nil,
        timestamp: String? = nil,
        jobId: String? = nil,
        status: JobStatus? = nil,
        model: Model? = nil
    ) throws -> Fixture {
        var envelope: [String: String] = [:]
        var data: [String: String] = [:]
        envelope["id"] = eventId
        envelope["type"] = type?.rawValue
        envelope["timestamp"] = timestamp
        data["jobId"] = jobId
        data["status"] = status?.rawValue
        data["model"] = model?.rawValue
        return Fixture(name: self.name, body: try PayloadRewriter.rewrite(self.body, envelope: envelope, data: data))
    }
}
