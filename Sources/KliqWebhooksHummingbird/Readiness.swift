import KliqWebhooks
import ServiceLifecycle
import Synchronization

/// Whether the server should get traffic: the store can write and the server is not draining.
///
/// It is a `Service`: run it beside the HTTP server and it reports draining from the moment graceful
/// shutdown begins. Store checks are cached for a second so a probe storm does not become an fsync storm.
public final class Readiness: Service, Sendable {
    private let store: any EventStore
    private let state = Mutex<(draining: Bool, checkedAt: ContinuousClock.Instant?, problem: String?)>((false, nil, nil))

    public init(store: any EventStore) {
        self.store = store
    }

    /// Why the server is not ready, or `nil` when it is.
    public func problem() async -> String? {
        let (draining, checkedAt, cached) = self.state.withLock { ($0.draining, $0.checkedAt, $0.problem) }
        if draining { return "the server is shutting down" }
        if let checkedAt, ContinuousClock.now - checkedAt < .seconds(1) { return cached }
        var problem: String?
        do {
            try await self.store.checkHealth()
        } catch {
            problem = "the store cannot be written: \((error as? WebhookError)?.message ?? "\(error)")"
        }
        self.state.withLock { $0.checkedAt = .now; $0.problem = problem }
        return problem
    }

    /// Marks the server as draining (also done on graceful shutdown).
    public func startDraining() {
        self.state.withLock { $0.draining = true }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        self.startDraining()
    }
}
