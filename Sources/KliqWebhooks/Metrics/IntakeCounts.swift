import Synchronization

/// What a receiver answered since it started: deliveries accepted, duplicates, and refusals by their
/// ``WebhookError/Code`` (`invalid_signature`, `payload_too_large`, …). The operator console's
/// overview shows them; Prometheus has the same as `kliq_webhooks_events_total`.
public struct IntakeCounts: Sendable, Equatable, Codable {
    public var accepted: Int
    public var duplicates: Int
    /// Refusals by error code; codes never seen are absent.
    public var refused: [String: Int]
}

/// The counters behind ``Receiver/intake``: two atomics on the delivery path, a lock only when a
/// delivery is refused.
final class IntakeTally: Sendable {
    private let accepted = Atomic<Int>(0)
    private let duplicates = Atomic<Int>(0)
    private let refused = Mutex<[String: Int]>([:])

    func record(_ outcome: Outcome) {
        switch outcome {
        case .accepted: self.accepted.add(1, ordering: .relaxed)
        case .duplicate: self.duplicates.add(1, ordering: .relaxed)
        }
    }

    func refused(_ code: WebhookError.Code) {
        self.refused.withLock { $0[code.rawValue, default: 0] += 1 }
    }

    var counts: IntakeCounts {
        IntakeCounts(accepted: self.accepted.load(ordering: .relaxed), duplicates: self.duplicates.load(ordering: .relaxed),
                     refused: self.refused.withLock { $0 })
    }
}
