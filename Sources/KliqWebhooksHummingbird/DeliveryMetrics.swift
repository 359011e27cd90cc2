import CoreMetrics
import KliqWebhooks

/// The HTTP layer's metrics: every `POST` to the webhook path ends in exactly one outcome.
///
/// | name | kind | labels |
/// |---|---|---|
/// | `kliq_webhooks_deliveries_total` | counter | `outcome`: `accepted`, `duplicate`, or the error code (`invalid_signature`, `payload_too_large`, `malformed_payload`, `storage_unavailable`, …) |
/// | `kliq_webhooks_request_duration_seconds` | histogram | — |
enum DeliveryMetrics {
    static let requestDuration = "kliq_webhooks_request_duration_seconds"

    static func record(outcome: String, since start: ContinuousClock.Instant) {
        Counter(label: "kliq_webhooks_deliveries_total", dimensions: [("outcome", outcome)]).increment()
        Timer(label: self.requestDuration).recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }
}
