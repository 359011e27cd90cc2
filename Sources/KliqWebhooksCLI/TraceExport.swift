import Logging
import OTel
import ServiceLifecycle

/// `--otlp-traces-url`: bootstraps swift-otel's tracer with an OTLP/HTTP (protobuf) span exporter, so
/// the receiver's spans (`kliq.receive` ⊃ `kliq.verify`, `kliq.store`; `kliq.handler`) reach a
/// collector. Only traces: metrics stay on Prometheus, logs on stderr. Must run before the receiver is
/// made (it takes the bootstrapped tracer).
enum TraceExport {
    static func bootstrap(url: String, version: String) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "kliq-webhooks"
        configuration.resourceAttributes = ["service.version": version]
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.endpoint = url
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        return try OTel.bootstrap(configuration: configuration, environment: [:])
    }
}
