import Logging

extension Receiver {
    /// Waits until job `jobId` is finished and returns its stored state: the drop-in for KLIQ's polling
    /// `waitForCompletion(jobId, {timeoutMs})`.
    ///
    /// Returns at once when a `completed`/`failed` state is already stored, otherwise tracks the job (see
    /// ``track(jobId:)``: the polling fallback, where it runs, reads it when no webhook comes) and returns
    /// as soon as a
    /// `cv.job.completed` or `cv.job.failed` event for the job is stored by this receiver — or, on a
    /// ``SharedEventStore`` (PostgreSQL), by any receiver sharing it: its announcements wake the waiter
    /// while ``run()`` runs, and the store is read again every ``SharedEventStore/jobPollInterval``.
    ///
    /// ```swift
    /// let started = try await kliq.cv.start(observationId: "obs_abc123", model: .shelfDetectionV2)
    /// let job = try await receiver.waitForCompletion(jobId: started.id, timeout: .seconds(60))
    /// print(job.status, job.result?.detections.count ?? 0)
    /// ```
    /// - Parameters:
    ///   - jobId: the job to wait for.
    ///   - timeout: how long to wait.
    ///   - clock: the clock that measures `timeout`.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/timeout`` when the job has not finished in
    ///   time, `storage_unavailable` when the store cannot be read; `CancellationError` when cancelled.
    public func waitForCompletion<C: Clock>(
        jobId: String,
        timeout: C.Duration,
        clock: C = ContinuousClock()
    ) async throws -> Job where C.Duration == Duration {
        let token = self.waiters.makeToken()
        defer { self.waiters.discard(token) }
        let job = try await withThrowingTaskGroup(of: Job.self) { group in
            group.addTask {
                try await self.waiters.wait(for: jobId, token: token)
            }
            group.addTask {
                // Registered first, read second: a state stored in between still wakes the waiter.
                if let job = try await self.storedJob(jobId), job.isFinished { return job }
                // Awaited, so tracked: the polling fallback, where it runs, reads it if no webhook comes.
                try await self.track(jobId: jobId)
                // A store other processes share: read again now and then, in case a hint was lost.
                if let shared = self.store as? any SharedEventStore {
                    let deadline = clock.now.advanced(by: timeout)
                    while clock.now < deadline {
                        try await clock.sleep(for: min(shared.jobPollInterval, clock.now.duration(to: deadline)))
                        if let job = try await self.storedJob(jobId), job.isFinished { return job }
                    }
                } else {
                    try await clock.sleep(for: timeout)
                }
                throw WebhookError(.timeout, "job \(jobId) did not finish within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
        // Finished: nothing is awaited any more (a wait that timed out leaves the job tracked, for the
        // polling fallback). Best effort: the job is stored either way.
        try? await self.store.untrack(jobId: jobId)
        return job
    }

    private func storedJob(_ jobId: String) async throws -> Job? {
        do {
            return try await self.store.job(id: jobId)
        } catch {
            throw Self.storageError(error, doing: "read job \(jobId)")
        }
    }

    /// After a CV-job event was stored (or recognised), wakes those waiting for its job if it is finished.
    func notifyWaiters(after event: Event) async {
        guard event.type.isCVJob, let jobId = event.jobId, self.waiters.isWaiting(for: jobId) else { return }
        await self.wakeWaiters(jobId: jobId)
    }

    /// Wakes those waiting for `jobId` if its stored state is finished.
    func wakeWaiters(jobId: String) async {
        do {
            if let job = try await self.store.job(id: jobId), job.isFinished { self.waiters.resume(job) }
        } catch {
            self.logger.warning("could not read job state for waiters", metadata: ["kliq.job_id": .string(jobId), "kliq.error": "\(error)"])
        }
    }
}
