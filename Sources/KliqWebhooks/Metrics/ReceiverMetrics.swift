import CoreMetrics

/// The receiver's metrics, reported through swift-metrics to whatever backend the process bootstrapped
/// (`kliq-webhooks serve` bootstraps Prometheus). Names follow Prometheus conventions.
///
/// | name | kind | labels |
/// |---|---|---|
/// | `kliq_webhooks_events_total` | counter | `type`, `outcome` (`accepted`, `duplicate`) |
/// | `kliq_webhooks_store_write_duration_seconds` | histogram | — |
/// | `kliq_webhooks_handler_runs_total` | counter | `handler`, `outcome` (`success`, `failure`) |
/// | `kliq_webhooks_handler_retries_total` | counter | `handler` |
/// | `kliq_webhooks_handler_dead_total` | counter | `handler` |
/// | `kliq_webhooks_ledger_pending` | gauge | — |
/// | `kliq_webhooks_jobs_reconciled_total` | counter | — (final states found by polling and stored) |
package enum ReceiverMetrics {
    package static let storeWriteDuration = "kliq_webhooks_store_write_duration_seconds"

    /// Event types known to this version, used as label values as they are; any other type is
    /// counted as `other`, so a label set can never grow with what the wire sends.
    static let knownTypes: Set<String> = [
        EventType.observationCreated, .observationUpdated, .cvJobCompleted, .cvJobFailed, .visitSubmitted,
    ].reduce(into: []) { $0.insert($1.rawValue) }

    static func event(_ type: EventType, outcome: Outcome) {
        let label = self.knownTypes.contains(type.rawValue) ? type.rawValue : "other"
        Counter(label: "kliq_webhooks_events_total", dimensions: [("type", label), ("outcome", outcome.rawValue)]).increment()
    }

    /// A final state found by polling was stored (``Receiver/receive(polled:)``).
    static func reconciled() { Counter(label: "kliq_webhooks_jobs_reconciled_total").increment() }

    static func storeWrite(since start: ContinuousClock.Instant) {
        Timer(label: self.storeWriteDuration).recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }

    static func handlerRun(_ handler: String, succeeded: Bool) {
        Counter(label: "kliq_webhooks_handler_runs_total", dimensions: [("handler", handler), ("outcome", succeeded ? "success" : "failure")])
            .increment()
    }

    static func handlerRetry(_ handler: String) {
        Counter(label: "kliq_webhooks_handler_retries_total", dimensions: [("handler", handler)]).increment()
    }

    static func handlerDead(_ handler: String) {
        Counter(label: "kliq_webhooks_handler_dead_total", dimensions: [("handler", handler)]).increment()
    }

    static func pending(_ count: Int) {
        Gauge(label: "kliq_webhooks_ledger_pending").record(count)
    }
}
