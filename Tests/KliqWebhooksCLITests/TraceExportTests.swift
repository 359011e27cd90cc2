import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KliqWebhooksTesting
import Logging
import Synchronization
import Testing

/// `serve --otlp-traces-url`: the receiver's spans reach an OTLP/HTTP collector (here a stub that
/// records what it is sent; the spans' names are plain bytes inside the protobuf body).
@Suite(.serialized)
struct TraceExportTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_trace_test"

    struct Export: Sendable {
        var contentType: String?
        var body: [UInt8]
    }

    @Test func spansOfADeliveryAreExportedOverOTLP() async throws {
        let exports = Mutex<[Export]>([])
        let router = Router()
        router.post("/v1/traces") { request, _ -> HTTPResponse.Status in
            let bytes = try await request.body.collect(upTo: 1 << 22)
            exports.withLock { $0.append(Export(contentType: request.headers[.contentType], body: Array(bytes.readableBytesView))) }
            return .ok
        }
        let collector = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                    logger: Logger(label: "collector", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await collector.test(.live) { client in
            let port = try #require(client.port)
            let serve = try await ServeProcess(
                ["serve", "--port", "0", "--data-dir", self.dir.file("data"), "--otlp-traces-url", "http://127.0.0.1:\(port)/v1/traces",
                 "--exec", "cat > /dev/null"],
                environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
            try await serve.waitUntilListening()
            let body = Array(#"{"id":"evt_traced","type":"visit.submitted","tenantId":"t","timestamp":"2026-04-28T12:00:00Z","data":{}}"#.utf8)
            let signature = Signer(secret: self.secret).signature(for: body)
            #expect(try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signature)]).status == 200)

            func exported(_ name: String) -> Bool {
                exports.withLock { $0.contains { String(decoding: $0.body, as: UTF8.self).contains(name) } }
            }
            #expect(try await eventually(timeout: .seconds(20)) { exported("kliq.receive") && exported("kliq.store") && exported("kliq.handler") })
            #expect(exported("kliq.verify") && exported("kliq-webhooks"), "the spans and the service name")
            #expect(exports.withLock { $0.allSatisfy { $0.contentType == "application/x-protobuf" } })
            #expect(try await serve.terminate() == 0)
            #expect(!serve.errors.contains(self.secret))
        }
    }

    @Test func aURLThatIsNotHTTPIsRefusedWithOneLine() async throws {
        let serve = try await ServeProcess(["serve", "--otlp-traces-url", "grpc://collector:4317"],
                                           environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        #expect(try await serve.waitForExit() == 2)
        #expect(serve.errors.contains("otlp-traces-url needs an http:// or https:// URL"), "\(serve.errors)")
    }
}
