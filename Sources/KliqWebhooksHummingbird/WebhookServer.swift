import Hummingbird
import HummingbirdCore
import KliqWebhooks
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// A ready-made HTTP server for a receiver: the webhook route, `/healthz`, `/readyz`, JSON errors,
/// request ids and client addresses (proxy-aware), and graceful shutdown (the server stops intake and
/// drains, then the receiver finishes its handlers).
///
/// ```swift
/// let app = WebhookServer.application(receiver: receiver, configuration: .init(port: 8080), logger: logger)
/// try await app.runService()
/// ```
public enum WebhookServer {
    /// Where and how to listen.
    public struct Configuration: Sendable {
        /// Address to listen on.
        public var host: String
        /// Port to listen on; `0` picks a free one.
        public var port: Int
        /// Path of the webhook endpoint.
        public var path: String
        /// Proxies whose `X-Forwarded-For`, `Forwarded`, `X-Real-IP` and `X-Request-Id` are believed.
        public var trustedProxies: TrustedProxies
        /// How long a request may take to arrive, from its head to the end of its body; then `408` and the
        /// connection is closed.
        public var requestTimeout: Duration
        /// How long a connection may sit without a request (also: headers that never finish); then it is closed.
        public var idleTimeout: Duration
        /// Connections open at once; beyond it new ones wait to be accepted.
        public var maxConnections: Int
        /// Largest header section, in bytes; beyond it `400` and the connection closes.
        public var maxHeaderBytes: Int
        /// Most header fields; beyond it `400` and the connection closes.
        public var maxHeaderFields: Int
        /// Bytes of request bodies read at once, across all connections (each reserves its declared
        /// length, or the body limit); beyond it, requests wait before their body is read.
        public var maxInFlightBytes: Int

        public init(
            host: String = "127.0.0.1", port: Int = 8080, path: String = "/webhooks/kliq", trustedProxies: TrustedProxies = .none,
            requestTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60), maxConnections: Int = 1024,
            maxHeaderBytes: Int = 16 * 1024, maxHeaderFields: Int = 100, maxInFlightBytes: Int = 64 * 1024 * 1024
        ) {
            self.host = host
            self.port = port
            self.path = path
            self.trustedProxies = trustedProxies
            self.requestTimeout = requestTimeout
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
            self.maxHeaderBytes = maxHeaderBytes
            self.maxHeaderFields = maxHeaderFields
            self.maxInFlightBytes = maxInFlightBytes
        }

        /// The HTTP/1.1 server with these limits.
        var server: HTTPServerBuilder {
            let requestTimeout = TimeAmount(self.requestTimeout)
            var http1 = HTTP1Channel.Configuration(
                additionalChannelHandlers: [RequestGuardHandler(requestTimeout: requestTimeout)],
                idleTimeout: TimeAmount(self.idleTimeout)
            )
            http1.httpDecoder = .init(maxHeaderFieldSize: self.maxHeaderBytes, maxHeaderListSize: self.maxHeaderBytes,
                                      maxHeaderFieldCount: self.maxHeaderFields)
            return .http1(configuration: http1)
        }
    }

    /// The router with every route mounted.
    public static func router(
        receiver: Receiver, path: String, readiness: Readiness, trustedProxies: TrustedProxies = .none, maxInFlightBytes: Int? = nil
    ) -> Router<WebhookRequestContext> {
        let router = Router(context: WebhookRequestContext.self)
        router.add(middleware: RequestMetadataMiddleware(trustedProxies: trustedProxies))
        router.add(middleware: JSONErrorMiddleware())
        router.addKliqWebhook(RouterPath(path), receiver: receiver, maxInFlightBytes: maxInFlightBytes)
        router.addHealthChecks(readiness: readiness)
        return router
    }

    /// An application serving `receiver`, running it (and readiness) as services.
    /// - Parameters:
    ///   - services: more services to run beside the receiver (shut down after the server, before the receiver).
    ///   - readiness: the readiness `/readyz` reports. When `nil`, a new one runs among the application's
    ///     services; when given, the caller runs it (``run(_:readiness:services:maximumShutdown:logger:)`` does).
    ///   - onServerRunning: called with the bound address once listening (`port 0` binds a free one).
    public static func application(
        receiver: Receiver,
        configuration: Configuration,
        services: [any Service] = [],
        readiness: Readiness? = nil,
        logger: Logger,
        onServerRunning: @escaping @Sendable (SocketAddress?) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let given = readiness
        let readiness = readiness ?? Readiness(store: receiver.store)
        return Application(
            router: self.router(receiver: receiver, path: configuration.path, readiness: readiness, trustedProxies: configuration.trustedProxies,
                                 maxInFlightBytes: configuration.maxInFlightBytes),
            server: configuration.server,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections)
            ),
            services: [receiver] + (given == nil ? [readiness] : []) + services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress) },
            logger: logger
        )
    }

    /// Runs `application` until SIGTERM or SIGINT, then shuts down in order: `/readyz` turns `503` at
    /// once, the server stops accepting connections and answers the requests in flight, then the
    /// receiver's handlers get their grace period. Whatever is still running after `maximumShutdown`
    /// is cancelled (unfinished handler deliveries stay in the ledger and run at the next start).
    /// - Parameter services: run beside the application and shut down after it (e.g. a metrics endpoint,
    ///   which stays up while the server drains).
    public static func run(
        _ application: some ApplicationProtocol,
        readiness: Readiness,
        services: [any Service] = [],
        maximumShutdown: Duration,
        logger: Logger
    ) async throws {
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) } + [
                .init(service: application),
                // Last, so it is the first to hear of the shutdown.
                .init(service: readiness),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = maximumShutdown
        configuration.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: configuration).run()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(duration.nanoseconds)
    }
}
