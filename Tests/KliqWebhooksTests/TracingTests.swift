import InMemoryTracing
import KliqWebhooks
import KliqWebhooksTesting
import Logging
import Testing
import Tracing

/// Spans through swift-distributed-tracing: `kliq.receive` around `kliq.verify` and `kliq.store` for a
/// delivery, `kliq.handler` for each handler attempt — to whatever tracer the configuration names.
@Suite struct TracingTests {
    let fixtures: Fixtures = try! Fixtures()
    let signer = Signer(secret: "whsec_tracing")

    func receiver(_ tracer: InMemoryTracer) throws -> Receiver {
        var configuration = Receiver.Configuration(retry: RetryPolicy(maxAttempts: 2, initialDelay: .milliseconds(10)))
        configuration.tracer = tracer
        return Receiver(verifier: try SignatureVerifier(secrets: [Secret("whsec_tracing")]), store: InMemoryEventStore(),
                        configuration: configuration, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    @Test func aDeliveryAndItsHandlerAttemptsAreSpans() async throws {
        let tracer = InMemoryTracer()
        let receiver = try self.receiver(tracer)
        receiver.on(.cvJobCompleted, name: "flaky") { _, context in
            if context.attempt == 1 { throw HandlerError() }
        }
        try await withRunningReceiver(receiver) {
            _ = try await receiver.deliver(self.fixtures.load("cv.job.completed.shelf-detection-v2"), signedWith: self.signer)
        }
        let spans = tracer.finishedSpans
        let receive = try #require(spans.first { $0.operationName == "kliq.receive" })
        #expect(receive.attributes["kliq.event_id"]?.toSpanAttribute() == "evt_shelf_0001")
        #expect(receive.attributes["kliq.job_id"]?.toSpanAttribute() == "job_shelf_0001")
        #expect(receive.attributes["kliq.outcome"]?.toSpanAttribute() == "accepted")
        for name in ["kliq.verify", "kliq.store"] {
            let child = try #require(spans.first { $0.operationName == name })
            #expect(child.parentSpanID == receive.spanID && child.traceID == receive.traceID, "\(name) is inside kliq.receive")
        }
        let attempts = spans.filter { $0.operationName == "kliq.handler" }
        #expect(attempts.count == 2)
        #expect(attempts.map { $0.attributes["kliq.attempt"]?.toSpanAttribute() } == [1, 2])
        #expect(attempts.allSatisfy { $0.attributes["kliq.handler"]?.toSpanAttribute() == "flaky" })
        #expect(attempts[0].errors.count == 1 && attempts[1].errors.isEmpty, "the failed attempt records its error")
    }

    @Test func aRefusalIsAnErrorSpanWithItsCode() async throws {
        let tracer = InMemoryTracer()
        let receiver = try self.receiver(tracer)
        _ = try? await receiver.deliver(self.fixtures.load("visit.submitted"), signedWith: Signer(secret: "whsec_other"))
        let receive = try #require(tracer.finishedSpans.first { $0.operationName == "kliq.receive" })
        #expect(receive.attributes["kliq.outcome"]?.toSpanAttribute() == "invalid_signature")
        #expect(receive.status?.code == .error)
        #expect(!tracer.finishedSpans.contains { $0.operationName == "kliq.store" }, "nothing stored")
    }

    struct HandlerError: Error {}
}
