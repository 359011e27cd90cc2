import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksHummingbirdTesting
import KliqWebhooksTesting
import NIOCore
import Testing

struct WebhookRouteTests {
    let dir = TemporaryDirectory()

    @Test func newEventIsAcceptedOnlyOnceItIsOnDisk() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        let recorder = RecordingHandler()
        receiver.onAny(recorder.handler)
        let fixture = try fixtures.load("cv.job.completed.shelf-detection-v2")
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.deliver(fixture.body)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.json["status"] as? String == "accepted")
            #expect(response.json["eventId"] as? String == "evt_shelf_0001")
            #expect(self.dir.contents("events/evt_shelf_0001.json") == fixture.body)
            #expect(self.dir.contents("jobs/job_shelf_0001.json") != nil)
            await receiver.waitUntilIdle()
        }
        #expect(recorder.eventIds == ["evt_shelf_0001"])
    }

    @Test func sameEventAgainIsADuplicateAndDoesNotDispatch() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        let recorder = RecordingHandler()
        receiver.onAny(recorder.handler)
        let body = try fixtures.load("cv.job.failed.error-object").body
        try await makeApp(receiver).test(.router) { client in
            #expect(try await client.deliver(body).json["status"] as? String == "accepted")
            let again = try await client.deliver(body)
            #expect(again.status == .ok)
            #expect(again.json["status"] as? String == "duplicate")
            #expect(again.json["eventId"] as? String == "evt_failed_0001")
            await receiver.waitUntilIdle()
        }
        #expect(recorder.eventIds == ["evt_failed_0001"])
    }

    static let badSignatureHeaders: [String?] = [nil, "", "not-hex", "abc", String(repeating: "0", count: 64)]

    @Test(arguments: badSignatureHeaders)
    func badSignaturesAre401AndStoreNothing(_ header: String?) async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        let body = try fixtures.load("visit.submitted").body
        var fields: HTTPFields = [.contentType: "application/json"]
        if let header { fields[.kliqSignature] = header }
        let headers = fields
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.deliver(body, headers: headers)
            #expect(response.status == .unauthorized)
            #expect(response.json["error"] as? String == "invalid_signature")
            #expect((response.json["message"] as? String)?.isEmpty == false)
        }
        #expect(self.dir.names("events").isEmpty)
    }

    @Test func signatureFromAnotherSecretIs401() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let body = try fixtures.load("visit.submitted").body
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.deliver(body, headers: [.kliqSignature: Signer(secret: "whsec_other").signature(for: body)])
            #expect(response.status == .unauthorized)
            #expect(!response.body.getString(at: 0, length: response.body.readableBytes)!.contains("whsec"))
        }
    }

    @Test func bodyOverTheLimitIs413() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path), maxBodyBytes: 1024)
        let body = try fixtures.load("cv.job.completed.large").body
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.deliver(body)
            #expect(response.status == .contentTooLarge)
            #expect(response.json["error"] as? String == "payload_too_large")
        }
        #expect(self.dir.names("events").isEmpty)
    }

    @Test func signedMalformedBodyIs400AndQuarantined() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        let body = Array(#"{"id": 42, "type": "cv.job.completed"}"#.utf8)
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.deliver(body)
            #expect(response.status == .badRequest)
            #expect(response.json["error"] as? String == "malformed_payload")
        }
        #expect(self.dir.names("events").isEmpty)
        let kept = try #require(self.dir.names("quarantine").first { $0.hasSuffix(".body") })
        #expect(self.dir.contents("quarantine/\(kept)") == body)
    }

    @Test func storageFailureIs503WithRetryAfter() async throws {
        let receiver = try makeReceiver(store: FailingStore())
        let body = try fixtures.load("visit.submitted").body
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.deliver(body)
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.retryAfter] == "5")
            #expect(response.json["error"] as? String == "storage_unavailable")
        }
    }

    /// A real fault in the file store (the job file's name is taken by a directory): the event claim is
    /// taken back, so nothing half-stored remains and KLIQ's retry is accepted as new once it clears.
    @Test func fileStoreFaultLeavesNothingBehindAndRecovers() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let receiver = try makeReceiver(store: store)
        let body = try fixtures.load("cv.job.completed.custom").body
        try FileManager.default.createDirectory(atPath: self.dir.file("jobs/job_custom_0001.json/blocker"), withIntermediateDirectories: true)
        try await makeApp(receiver).test(.router) { client in
            let failed = try await client.deliver(body)
            #expect(failed.status == .serviceUnavailable)
            #expect(failed.json["error"] as? String == "storage_unavailable")
            #expect(self.dir.names("events").isEmpty)
            #expect(self.dir.names("tmp").isEmpty)
            try FileManager.default.removeItem(atPath: self.dir.file("jobs/job_custom_0001.json"))
            let retried = try await client.deliver(body)
            #expect(retried.json["status"] as? String == "accepted")
        }
        #expect(self.dir.contents("events/evt_custom_0001.json") == body)
    }

    @Test(arguments: [HTTPRequest.Method.get, .put, .delete, .patch])
    func otherMethodsOnThePathAre405(_ method: HTTPRequest.Method) async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.execute(uri: "/webhooks/kliq", method: method)
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == "POST")
            #expect(response.json["error"] as? String == "method_not_allowed")
        }
    }

    @Test(arguments: ["/", "/webhooks", "/webhooks/kliq/extra", "/events/evt_1.json"])
    func otherPathsAre404(_ path: String) async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.execute(uri: path, method: .post, body: ByteBuffer(string: "{}"))
            #expect(response.status == .notFound)
            #expect(response.json["error"] as? String == "not_found")
        }
    }

    @Test func healthzAnswersWhileRunning() async throws {
        let receiver = try makeReceiver(store: FailingStore())
        try await makeApp(receiver).test(.router) { client in
            let response = try await client.execute(uri: "/healthz", method: .get)
            #expect(response.status == .ok)
        }
    }

    @Test func readyzReflectsStorageAndDraining() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path))
        let readiness = Readiness(store: receiver.store)
        try await makeApp(receiver, readiness: readiness).test(.router) { client in
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            readiness.startDraining()
            let draining = try await client.execute(uri: "/readyz", method: .get)
            #expect(draining.status == .serviceUnavailable)
            #expect(draining.json["error"] as? String == "not_ready")
        }
        let broken = try makeReceiver(store: FailingStore())
        try await makeApp(broken).test(.router) { client in
            let response = try await client.execute(uri: "/readyz", method: .get)
            #expect(response.status == .serviceUnavailable)
            #expect((response.json["message"] as? String)?.contains("the store cannot be written") == true)
        }
    }

    @Test func routeMountsUnderAGroupOfAnExistingApp() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let router = Router()
        router.get("/hello") { _, _ in "world" }
        router.group("/integrations").addKliqWebhook("/kliq", receiver: receiver)
        let app = Application(router: router, services: [receiver], logger: quietLogger)
        let body = try fixtures.load("observation.updated").body
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/integrations/kliq", method: .post, headers: signedHeaders(body), body: ByteBuffer(bytes: body))
            #expect(response.status == .ok)
            #expect(try await client.execute(uri: "/hello", method: .get).status == .ok)
        }
    }

    /// Over a real socket: a chunked body (no Content-Length) is cut off once it passes the limit.
    @Test func chunkedBodyOverTheLimitIsCutOffWhileReading() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path), maxBodyBytes: 64 * 1024)
        let body = try fixtures.load("cv.job.completed.large").body
        let small = try fixtures.load("cv.job.completed.custom").body
        try await makeApp(receiver).test(.live) { client in
            let raw = RawHTTPClient(port: client.port!)
            let refused = try await raw.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signer.signature(for: body))], chunked: true)
            #expect(refused.status == 413)
            #expect(refused.bodyText.contains("payload_too_large"))
            let accepted = try await raw.post("/webhooks/kliq", body: small, headers: [("X-Kliq-Signature", signer.signature(for: small))], chunked: true)
            #expect(accepted.status == 200)
            #expect(accepted.bodyText.contains("accepted"))
        }
        #expect(self.dir.names("events") == ["evt_custom_0001.json"])
    }

    /// Over a real socket: a Content-Length over the limit is answered 413 before any of the body is sent.
    @Test func declaredLengthOverTheLimitIsRefusedBeforeReading() async throws {
        let receiver = try makeReceiver(store: try FileEventStore(directory: self.dir.path), maxBodyBytes: 1024)
        try await makeApp(receiver).test(.live) { client in
            let head = "POST /webhooks/kliq HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n"
                + "X-Kliq-Signature: \(String(repeating: "0", count: 64))\r\n\r\n"
            let start = ContinuousClock.now
            let response = try await RawHTTPClient(port: client.port!, timeout: 5).send(Array(head.utf8))
            #expect(response.status == 413)
            #expect(response.bodyText.contains("payload_too_large"))
            #expect(ContinuousClock.now - start < .seconds(4))
        }
        #expect(self.dir.names("events").isEmpty)
    }

    @Test func theTestingLibraryDeliversThroughHummingbirdTesting() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let fixture = try fixtures.load("cv.job.completed.custom")
        try await makeApp(receiver).test(.router) { client in
            let first = try await client.deliver(fixture, signedWith: signer)
            let second = try await client.deliver(fixture, signedWith: signer)
            let forged = try await client.deliver(fixture, signedWith: Signer(secret: "whsec_nope"))
            #expect(first.webhookOutcome == "accepted")
            #expect(second.webhookOutcome == "duplicate")
            #expect(forged.webhookOutcome == "invalid_signature")
        }
    }
}
