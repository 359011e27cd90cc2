import CoreMetrics
import Hummingbird
import KliqWebhooks
import Logging
import NIOCore
import Prometheus

/// `serve`'s Prometheus endpoint (`GET /metrics` on `--metrics-host`/`--metrics-port`, loopback by
/// default), a separate listener so the public webhook port never exposes it.
struct MetricsEndpoint: Sendable {
    let host: String
    let port: Int
    let registry = PrometheusCollectorRegistry()

    /// Bootstraps swift-metrics with this registry (once a process) and records `kliq_webhooks_build_info`.
    init(host: String, port: Int, version: String) {
        self.host = host
        self.port = port
        var factory = PrometheusMetricsFactory(registry: self.registry)
        // Store writes are fsyncs: finer buckets than the default's 5 ms floor.
        let fine: [Duration] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        factory.defaultDurationHistogramBuckets = fine
        MetricsSystem.bootstrap(factory)
        Gauge(label: "kliq_webhooks_build_info", dimensions: [("version", version)]).record(1)
    }

    func application(logger: Logger, onServerRunning: @escaping @Sendable (SocketAddress?) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        let registry = self.registry
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(self.host, port: self.port), serverName: nil),
            onServerRunning: { await onServerRunning($0.localAddress) },
            logger: logger
        )
    }
}
