import Logging

extension Receiver {
    /// Records in the store that job `jobId` is awaited. Where the polling fallback runs (`serve` with an
    /// API key, or `KliqWebhooksPolling`'s `JobReconciler` in your app) a tracked job that has no final
    /// state some time after this is read from KLIQ's API, so a lost webhook does not leave it waiting
    /// forever. ``waitForCompletion(jobId:timeout:clock:)`` tracks the job it waits for.
    /// - Throws: ``WebhookError`` with code `storage_unavailable` when the store cannot be written.
    public func track(jobId: String) async throws(WebhookError) {
        do {
            try await self.store.track(jobId: jobId)
        } catch {
            throw Self.storageError(error, doing: "track job \(jobId)")
        }
    }

    /// Stores a job state the polling fallback found (an event made by ``PolledJob``), and dispatches it
    /// like a webhook: the same job file (marked `"source":"poll"`), the same waiters woken, the same
    /// handlers — except that a final state a webhook already brought does not reach them again.
    /// - Returns: `.duplicate` when this poll's event was stored before.
    /// - Throws: ``WebhookError``: `invalid_configuration` for an event not made by polling,
    ///   `storage_unavailable` when the store cannot be written.
    public func receive(polled event: Event) async throws(WebhookError) -> Outcome {
        guard event.isPolled else { throw WebhookError(.invalidConfiguration, "event \(event.id) was not made by polling (no \"source\":\"poll\")") }
        let names = self.handlers.names(for: event.type)
        let outcome: Outcome
        do {
            outcome = try await self.store.accept(event, handlers: names).outcome
        } catch {
            throw Self.storageError(error, doing: "store the polled state of job \(event.jobId ?? "?")")
        }
        ReceiverMetrics.event(event.type, outcome: outcome)
        if outcome == .accepted { ReceiverMetrics.reconciled() }
        self.logger.info("polled state \(outcome.rawValue)", metadata: [
            "kliq.event_id": .string(event.id), "kliq.event_type": .string(event.type.rawValue),
            "kliq.job_id": .string(event.jobId ?? ""), "kliq.outcome": .string(outcome.rawValue),
        ])
        if outcome == .accepted, !names.isEmpty { self.dispatch.wake() }
        if let jobId = event.jobId { await self.wakeWaiters(jobId: jobId) }
        return outcome
    }
}
