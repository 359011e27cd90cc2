import CoreMetrics
import Foundation
import KliqWebhooks
import Logging
import Synchronization

/// What one read of a job from the API came to.
public enum PollResult: Sendable {
    /// The job is final: the event the polling fallback stores and dispatches (see ``PolledJob``).
    case finished(Event, JobStatus)
    /// The job is not final yet.
    case running(JobStatus)
    /// The API does not know the job (`404`).
    case notFound
    /// The API refused the key (`401`/`403`).
    case unauthorized(KliqAPIError)
    /// Anything else (after the client's retries).
    case failed(String)

    var label: String {
        switch self {
        case .finished: "finished"
        case .running: "running"
        case .notFound: "not_found"
        case .unauthorized: "unauthorized"
        case .failed: "error"
        }
    }
}

extension KliqAPIClient {
    /// Reads job `jobId` and, when it is final, builds the event the polling fallback stores.
    public func poll(jobId: String) async -> PollResult {
        do {
            let job = try await self.job(id: jobId)
            guard job.id == jobId else { return .failed("the API answered job \(job.id) for job \(jobId)") }
            if let event = try PolledJob.event(fromAPIJob: job.raw, tenantId: self.configuration.tenantId) { return .finished(event, job.status) }
            return .running(job.status)
        } catch let error as KliqAPIError {
            if error.code == .notFound { return .notFound }
            if error.isAuthorizationFailure { return .unauthorized(error) }
            return .failed(error.description)
        } catch {
            return .failed("\(error)")
        }
    }
}

/// The polling fallback's metrics (through swift-metrics, like ``Receiver``'s):
///
/// | name | kind | labels |
/// |---|---|---|
/// | `kliq_webhooks_polls_total` | counter | `outcome` (`finished`, `running`, `not_found`, `unauthorized`, `error`) |
/// | `kliq_webhooks_jobs_reconciled_total` | counter | — (final states found by polling and stored: counted by ``Receiver/receive(polled:)``) |
/// | `kliq_webhooks_poll_lag_seconds` | histogram | — (how late a read started after it was due) |
/// | `kliq_webhooks_polling_stopped` | gauge | — (1 once a `401`/`403` stopped polling) |
enum PollingMetrics {
    static func poll(_ result: PollResult) {
        Counter(label: "kliq_webhooks_polls_total", dimensions: [("outcome", result.label)]).increment()
    }
    static func lag(_ seconds: Double) { Timer(label: "kliq_webhooks_poll_lag_seconds").recordNanoseconds(Int64(max(0, seconds) * 1e9)) }
    static func stopped() { Gauge(label: "kliq_webhooks_polling_stopped").record(1) }
}

extension JobReconciler {
    /// Reads the store's tracked jobs: new ones join the schedule, untracked ones leave it.
    func scan() async throws {
        var seen: [TrackedJob] = []
        var cursor: String?
        repeat {
            let page = try await self.receiver.store.trackedJobs(after: cursor, limit: 1000)
            seen += page
            cursor = page.count == 1000 ? page.last?.jobId : nil
        } while cursor != nil
        self.state.withLock { state in
            var schedules: [String: Schedule] = [:]
            for tracked in seen {
                schedules[tracked.jobId] = state.schedules[tracked.jobId]
                    ?? Schedule(due: tracked.trackedAt.addingTimeInterval(self.configuration.pollAfter.seconds), interval: self.configuration.pollAfter)
            }
            state.schedules = schedules
        }
    }

    /// Reads the due jobs, a few at a time: first from the store (a webhook may have finished one), then
    /// from the API.
    func poll(_ due: [(String, Date)]) async throws {
        var pending = due[...]
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while let (jobId, dueAt) = pending.popFirst() {
                if running == self.configuration.concurrency {
                    await group.next()
                    running -= 1
                }
                guard !self.isStopped, !Task.isCancelled else { break }
                group.addTask { await self.read(jobId, due: dueAt) }
                running += 1
            }
        }
    }

    /// One due job: untracked when its stored state is final, else read from the API and rescheduled.
    func read(_ jobId: String, due: Date) async {
        do {
            if let job = try await self.receiver.store.job(id: jobId), job.isFinished {
                try await self.receiver.store.untrack(jobId: jobId)
                self.state.withLock { _ = $0.schedules.removeValue(forKey: jobId) }
                return
            }
        } catch {
            self.logger.warning("could not read a tracked job from the store", metadata: ["kliq.job_id": .string(jobId), "kliq.error": "\(error)"])
            return
        }
        PollingMetrics.lag(-due.timeIntervalSinceNow)
        let result = await self.client.poll(jobId: jobId)
        PollingMetrics.poll(result)
        if case .finished(let event, let status) = result {
            do {
                _ = try await self.receiver.receive(polled: event)
                self.logger.notice("polling found job finished", metadata: ["kliq.job_id": .string(jobId), "kliq.status": .string(status.rawValue)])
                try await self.receiver.store.untrack(jobId: jobId)
                self.state.withLock { _ = $0.schedules.removeValue(forKey: jobId) }
            } catch {
                self.logger.warning("could not store a polled job state", metadata: ["kliq.job_id": .string(jobId), "kliq.error": "\(error)"])
                self.reschedule(jobId)
            }
            return
        }
        self.settle(jobId, result)
    }

    /// Reschedules `jobId` after a read that did not find it final.
    func settle(_ jobId: String, _ result: PollResult) {
        switch result {
        case .unauthorized(let error):
            let first = self.state.withLock { state in
                defer { state.stopped = true }
                return !state.stopped
            }
            if first {
                PollingMetrics.stopped()
                self.logger.error("polling stopped: KLIQ's API refused the API key (\(error.message)); fix the key or its tenant access, then restart")
            }
        case .notFound:
            let reads = self.state.withLock { state -> Int in
                guard var schedule = state.schedules[jobId] else { return 0 }
                schedule.notFound += 1
                schedule.done = schedule.notFound > self.configuration.notFoundReads
                schedule.due = Date().addingTimeInterval(self.configuration.maxInterval.seconds)
                state.schedules[jobId] = schedule
                return schedule.notFound
            }
            if reads == 1 {
                self.logger.warning("KLIQ's API does not know tracked job \(jobId) (404); reading it at most \(self.configuration.notFoundReads) more times",
                                    metadata: ["kliq.job_id": .string(jobId)])
            }
        case .failed(let message):
            self.logger.warning("could not poll a tracked job", metadata: ["kliq.job_id": .string(jobId), "kliq.error": .string(message)])
            self.reschedule(jobId)
        case .running, .finished:
            self.reschedule(jobId)
        }
    }

    /// The next read of `jobId`: twice the last interval, at most the configured maximum.
    func reschedule(_ jobId: String) {
        self.state.withLock { state in
            guard var schedule = state.schedules[jobId] else { return }
            schedule.interval = min(schedule.interval * 2, self.configuration.maxInterval)
            schedule.due = Date().addingTimeInterval(schedule.interval.seconds)
            state.schedules[jobId] = schedule
        }
    }
}
