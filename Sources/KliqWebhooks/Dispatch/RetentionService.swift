import Foundation
import Logging
import ServiceLifecycle

/// Keeps a store's events for `retention`, then forgets them (``EventStore/prune(acceptedBefore:)``),
/// at start and every `interval`.
///
/// Forgetting an event forgets its id, so a replay of it could be accepted again — unless a replay
/// window refuses it first. The rule: **retention ≥ 2 × the replay window** (an event may be dated up
/// to one window ahead of the time it was accepted). ``init(store:retention:replayWindow:interval:logger:)``
/// refuses anything else.
public struct RetentionService: Service {
    /// The store whose old events are forgotten.
    public let store: any EventStore
    /// How long after acceptance an event is kept.
    public let retention: Duration
    /// How often pruning runs (also once at start).
    public let interval: Duration
    let logger: Logger

    /// - Throws: ``WebhookError`` `invalid_configuration` when `replayWindow` is `nil` or more than half of `retention`.
    public init(store: any EventStore, retention: Duration, replayWindow: Duration?, interval: Duration = .seconds(3600), logger: Logger) throws(WebhookError) {
        try Self.check(retention: retention, replayWindow: replayWindow)
        self.store = store
        self.retention = retention
        self.interval = interval
        self.logger = logger
    }

    /// The rule on its own, for configuration checks before a store exists: a replay window is needed,
    /// and retention must be at least twice it.
    /// - Throws: ``WebhookError`` `invalid_configuration` saying which half of the rule is broken.
    public static func check(retention: Duration, replayWindow: Duration?) throws(WebhookError) {
        guard let replayWindow else {
            throw WebhookError(.invalidConfiguration,
                               "retention needs replay-window: without a window, remembering every event id is the only replay protection")
        }
        guard retention >= replayWindow * 2 else {
            throw WebhookError(.invalidConfiguration,
                               "retention (\(Int(retention.seconds)) s) must be at least twice replay-window (\(Int(replayWindow.seconds)) s), or a replayed event could be accepted again once forgotten")
        }
    }

    /// Prunes once: events accepted more than `retention` before `now`.
    @discardableResult
    public func pruneOnce(now: Date = Date()) async throws -> Int {
        let cutoff = now.addingTimeInterval(-self.retention.seconds)
        let removed = try await self.store.prune(acceptedBefore: cutoff)
        if removed > 0 { self.logger.info("retention: forgot old events", metadata: ["kliq.count": "\(removed)"]) }
        return removed
    }

    /// Prunes at start and every `interval` until graceful shutdown; a failed pass is logged and retried at the next.
    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                try await self.pruneOnce()
            } catch {
                self.logger.error("retention: pruning failed; will try again", metadata: ["kliq.error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            if Task.isCancelled { return }
        }
    }
}
