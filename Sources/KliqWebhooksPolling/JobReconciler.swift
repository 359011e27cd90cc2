import CoreMetrics
import Foundation
import KliqWebhooks
import Logging
import ServiceLifecycle
import Synchronization

/// The polling fallback: reads tracked jobs that have no final state from KLIQ's API, so a lost or late
/// webhook never leaves a job unfinished. Run it next to the ``Receiver`` in your `ServiceGroup`;
/// `kliq-webhooks serve` runs one when it has an API key and a tenant.
///
/// Every ``Configuration/scanInterval`` it reads the store's tracked jobs (``EventStore/trackedJobs(after:limit:)``):
/// a job whose stored state is final is untracked; one tracked longer than ``Configuration/pollAfter``
/// is read from the API, then again after twice the previous interval, at most
/// ``Configuration/maxInterval``, until final. What it finds final goes through
/// ``Receiver/receive(polled:)``: stored like a webhook, waiters woken, handlers run — once per job
/// and handler, whichever of webhook and poll comes first. A `404` is logged once and read at most
/// ``Configuration/notFoundReads`` more times; a `401`/`403` stops all polling with one error line. The
/// request rate is the client's (``KliqAPIClient/Configuration/requestsPerSecond``).
///
/// ```swift
/// let kliq = KliqAPIClient(configuration: .init(apiKey: APIKey(key), tenantId: "t_xyz789", requestsPerSecond: 5), logger: logger)
/// let reconciler = JobReconciler(receiver: receiver, client: kliq, logger: logger)
/// let group = ServiceGroup(services: [receiver, reconciler, app], logger: logger)
/// ```
public final class JobReconciler: Service, Sendable {
    /// When and how much to poll.
    public struct Configuration: Sendable {
        /// How long a tracked job may go without a final state before it is read (`--poll-after`).
        public var pollAfter: Duration
        /// The longest wait between two reads of one job (`--poll-max-interval`).
        public var maxInterval: Duration
        /// How often the store's tracked jobs are read again (new ones, and ones a webhook finished).
        public var scanInterval: Duration
        /// Requests in flight at once (the client's rate still applies).
        public var concurrency: Int
        /// How many more times a job the API does not know is read before it is left alone.
        public var notFoundReads: Int

        public init(pollAfter: Duration = .seconds(120), maxInterval: Duration = .seconds(300), scanInterval: Duration = .seconds(5),
                    concurrency: Int = 4, notFoundReads: Int = 3) {
            self.pollAfter = pollAfter
            self.maxInterval = maxInterval
            self.scanInterval = scanInterval
            self.concurrency = max(1, concurrency)
            self.notFoundReads = notFoundReads
        }
    }

    /// One job's place in the schedule.
    struct Schedule {
        var due: Date
        var interval: Duration
        var notFound = 0
        var done = false
    }

    struct State {
        var schedules: [String: Schedule] = [:]
        var stopped = false
        var lastScan: ContinuousClock.Instant?
    }

    public let configuration: Configuration
    let client: KliqAPIClient
    let receiver: Receiver
    let logger: Logger
    let state = Mutex(State())

    public init(receiver: Receiver, client: KliqAPIClient, configuration: Configuration = .init(), logger: Logger) {
        self.receiver = receiver
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    /// Whether a `401`/`403` stopped polling.
    public var isStopped: Bool { self.state.withLock { $0.stopped } }

    /// Polls due jobs until graceful shutdown.
    public func run() async throws {
        self.logger.info("polling fallback on", metadata: [
            "kliq.api": .string(self.client.configuration.baseURL), "kliq.tenant": .string(self.client.configuration.tenantId),
            "kliq.poll_after": "\(self.configuration.pollAfter)", "kliq.poll_rate": "\(self.client.configuration.requestsPerSecond.map(String.init) ?? "unlimited")",
        ])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.runOnce()
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("could not read tracked jobs", metadata: ["kliq.error": "\(error)"])
                }
                let wait = self.nextWake()
                try? await Task.sleep(for: wait)
            }
        }
    }

    /// One round: reads the tracked jobs when a scan is due, then polls every job due now.
    func runOnce() async throws {
        let scanDue = self.state.withLock { state in state.lastScan.map { ContinuousClock.now - $0 >= self.configuration.scanInterval } ?? true }
        if scanDue {
            try await self.scan()
            self.state.withLock { $0.lastScan = ContinuousClock.now }
        }
        let now = Date()
        let due = self.state.withLock { state -> [(String, Date)] in
            guard !state.stopped else { return [] }
            return state.schedules.filter { !$0.value.done && $0.value.due <= now }.map { ($0.key, $0.value.due) }.sorted { $0.1 < $1.1 }
        }
        try await self.poll(due)
    }

    /// How long until the next job is due or the next scan, whichever is first (at least 50 ms).
    func nextWake() -> Duration {
        self.state.withLock { state in
            let scan = state.lastScan.map { self.configuration.scanInterval - (ContinuousClock.now - $0) } ?? .zero
            let next = state.schedules.values.filter { !$0.done }.map(\.due).min()
            let untilDue = next.map { Duration.milliseconds(Int64(max(0, $0.timeIntervalSinceNow) * 1000)) } ?? scan
            return max(.milliseconds(50), min(scan, untilDue))
        }
    }
}
