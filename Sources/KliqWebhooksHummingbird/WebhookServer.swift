import Hummingbird
import KliqWebhooks
import Logging
import NIOCore
import ServiceLifecycle

/// A ready-made HTTP server for a receiver: the webhook route, `/healthz`, `/readyz`, JSON errors, and
/// graceful shutdown (the server stops intake and drains, then the receiver finishes its handlers).
///
/// ```swift
/// let app = WebhookServer.application(receiver: receiver, configuration: .init(port: 8080), logger: logger)
/// try await app.runService()
/// ```
public enum WebhookServer {
    /// Where and how to listen.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var path: String

        public init(host: String = "127.0.0.1", port: Int = 8080, path: String = "/webhooks/kliq") {
            self.host = host
            self.port = port
            self.path = path
        }
    }

    /// The router with every route mounted.
    public static func router(receiver: Receiver, path: String, readiness: Readiness) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.addKliqWebhook(RouterPath(path), receiver: receiver)
        router.addHealthChecks(readiness: readiness)
        return router
    }

    /// An application serving `receiver`, running it (and readiness) as services.
    /// - Parameters:
    ///   - services: more services to run beside the receiver (shut down after the server, before the receiver).
    ///   - onServerRunning: called with the bound address once listening (`port 0` binds a free one).
    public static func application(
        receiver: Receiver,
        configuration: Configuration,
        services: [any Service] = [],
        logger: Logger,
        onServerRunning: @escaping @Sendable (SocketAddress?) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let readiness = Readiness(store: receiver.store)
        return Application(
            router: self.router(receiver: receiver, path: configuration.path, readiness: readiness),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            services: [receiver, readiness] + services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress) },
            logger: logger
        )
    }
}
