import KliqWebhooks
import KliqWebhooksTesting
import Logging
import Testing

/// The examples from README.md and TestingYourHandlers.md, verbatim, so the docs cannot rot.
struct DocumentedExampleTests {
    @Test func lowComplianceRaisesAnAlert() async throws {
        let signer = Signer(secret: "whsec_test")
        let receiver = Receiver(
            verifier: try SignatureVerifier(secrets: [signer.secret]),
            store: InMemoryEventStore(),
            logger: Logger(label: "test")
        )
        let recorder = RecordingHandler()
        receiver.on(.cvJobCompleted, recorder.handler)

        try await withRunningReceiver(receiver) {
            let delivery = try await receiver.deliver(try Fixtures().load("cv.job.completed.shelf-detection-v2"), signedWith: signer)
            #expect(delivery.outcome == .accepted)
        }
        #expect(recorder.eventIds == ["evt_shelf_0001"])
    }

    @Test func testingYourHandlersArticle() async throws {
        let signer = Signer(secret: "whsec_test")
        let receiver = Receiver(
            verifier: try SignatureVerifier(secrets: [signer.secret]),
            store: InMemoryEventStore(),
            logger: Logger(label: "test")
        )
        let alerts = RecordingHandler()
        receiver.on(.cvJobCompleted, name: "alerts", alerts.handler)

        let shelf = try Fixtures().load("cv.job.completed.shelf-detection-v2")
        try await withRunningReceiver(receiver) {
            try await receiver.deliver(shelf, signedWith: signer)
            try await receiver.deliver(try shelf.with(eventId: "evt_2", jobId: "job_2"), signedWith: signer)
            try await receiver.deliver(shelf, signedWith: signer)   // a duplicate: not dispatched again
        }
        #expect(alerts.eventIds.sorted() == ["evt_2", "evt_shelf_0001"])
    }
}
