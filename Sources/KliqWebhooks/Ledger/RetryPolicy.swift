/// How a failed handler is retried: exponential backoff with jitter, then dead letter.
///
/// Attempt `n` (1-based) that fails is retried after `min(maxDelay, initialDelay × multiplier^(n-1))`,
/// scaled by a random factor in `1 - jitter … 1` so retries of many events do not fire in lock-step.
/// After `maxAttempts` failed attempts the delivery is dead: kept, with its errors, until re-driven.
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts: Int
    public var initialDelay: Duration
    public var maxDelay: Duration
    public var multiplier: Double
    /// 0…1: the share of each delay that is random.
    public var jitter: Double

    /// The defaults: 8 attempts over about 4 minutes (1 s, 2 s, 4 s, … capped at 5 min).
    public init(maxAttempts: Int = 8, initialDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(300),
                multiplier: Double = 2, jitter: Double = 0.2) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.multiplier = max(1, multiplier)
        self.jitter = min(1, max(0, jitter))
    }

    /// The delay after failed attempt `attempt`, or `nil` when it was the last one allowed.
    public func delay(afterAttempt attempt: Int) -> Duration? {
        guard attempt < self.maxAttempts else { return nil }
        let base = self.initialDelay.seconds * pow(self.multiplier, Double(attempt - 1))
        let capped = min(self.maxDelay.seconds, base)
        let factor = 1 - self.jitter * Double.random(in: 0...1)
        return .nanoseconds(Int64(capped * factor * 1e9))
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        for _ in 0..<Int(exponent) { result *= base }
        return result
    }
}

extension Timestamp {
    func adding(_ duration: Duration) -> Timestamp {
        let total = self.nanoseconds + Int64(duration.seconds * 1e9)
        return Timestamp(seconds: self.seconds + total / 1_000_000_000, nanoseconds: total % 1_000_000_000)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    package var seconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
    /// The duration in whole nanoseconds (for swift-metrics timers and NIO time amounts).
    package var nanoseconds: Int64 { self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000 }
}
