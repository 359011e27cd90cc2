import Foundation
import KliqWebhooks
import KliqWebhooksTesting
import KliqWebhooksVapor
import Synchronization
import Testing
import VaporTesting

/// The Vapor route against a real Vapor application (in memory, and on a live port): the same answers
/// as the Hummingbird route and `serve`, handlers run by ``ReceiverLifecycle``.
@Suite struct KliqWebhooksVaporTests {
    let signer = Signer(secret: "whsec_vapor")
    let body = Array(#"{"id":"evt_v1","type":"cv.job.completed","tenantId":"t_1","timestamp":"2026-04-28T12:00:00Z","data":{"jobId":"job_v1","status":"completed","result":{"detections":[]}}}"#.utf8)

    func receiver(_ directory: TemporaryDirectory, maxBodyBytes: Int = 4 << 20) throws -> Receiver {
        Receiver(verifier: try SignatureVerifier(secrets: [Secret("whsec_vapor")]), store: try FileEventStore(directory: directory.path),
                 configuration: .init(maxBodyBytes: maxBodyBytes), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    func headers(_ body: [UInt8], signer: Signer? = nil) -> HTTPHeaders {
        ["X-Kliq-Signature": (signer ?? self.signer).signature(for: body), "Content-Type": "application/json"]
    }

    func json(_ response: TestingHTTPResponse) -> [String: String] {
        ((try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: String]) ?? [:]
    }

    @Test func acceptsOnceStoresByteForByteAndRunsHandlers() async throws {
        let directory = TemporaryDirectory()
        let receiver = try self.receiver(directory)
        let handled = Mutex<[String]>([])
        receiver.on(.cvJobCompleted) { event in handled.withLock { $0.append(event.id) } }
        try await withApp { app in
            app.kliqWebhook("webhooks", "kliq", receiver: receiver)
            app.lifecycle.use(ReceiverLifecycle(receiver))
            try await app.testing().test(.POST, "/webhooks/kliq", headers: self.headers(self.body), body: ByteBuffer(bytes: self.body)) { response in
                #expect(response.status == .ok)
                #expect(self.json(response) == ["status": "accepted", "eventId": "evt_v1"])
            }
            try await app.testing().test(.POST, "/webhooks/kliq", headers: self.headers(self.body), body: ByteBuffer(bytes: self.body)) { response in
                #expect(self.json(response)["status"] == "duplicate")
            }
            await receiver.waitUntilIdle()
        }
        #expect(handled.withLock { $0 } == ["evt_v1"])
        #expect(FileManager.default.contents(atPath: directory.path + "/events/evt_v1.json").map(Array.init) == self.body)
    }

    @Test func refusalsAnswerWithTheContractsCodes() async throws {
        let directory = TemporaryDirectory()
        let receiver = try self.receiver(directory, maxBodyBytes: 100)
        try await withApp { app in
            app.kliqWebhook("webhooks", "kliq", receiver: receiver)
            let tester = try app.testing(method: .running(port: 0))
            let small = Array(#"{"id":"evt_s","type":"visit.submitted"}"#.utf8)
            try await tester.test(.POST, "/webhooks/kliq", headers: self.headers(small, signer: Signer(secret: "whsec_other")), body: ByteBuffer(bytes: small)) { response in
                #expect(response.status == .unauthorized && self.json(response)["error"] == "invalid_signature")
            }
            try await tester.test(.POST, "/webhooks/kliq", headers: ["X-Kliq-Signature": "nothex"], body: ByteBuffer(bytes: small)) { response in
                #expect(response.status == .unauthorized && self.json(response)["error"] == "invalid_signature")
            }
            try await tester.test(.POST, "/webhooks/kliq", headers: self.headers(self.body), body: ByteBuffer(bytes: self.body)) { response in
                #expect(response.status == .payloadTooLarge && self.json(response)["error"] == "payload_too_large")
            }
            let broken = Array("{not json".utf8)
            try await tester.test(.POST, "/webhooks/kliq", headers: self.headers(broken), body: ByteBuffer(bytes: broken)) { response in
                #expect(response.status == .badRequest && self.json(response)["error"] == "malformed_payload")
            }
        }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: directory.path + "/events"))?.isEmpty ?? true)
    }
}
