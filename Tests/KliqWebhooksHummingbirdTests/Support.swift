import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksTesting
import Logging
import NIOCore

let secret = "whsec_http_test"
let signer = Signer(secret: secret)
let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
let fixtures: Fixtures = try! Fixtures()

func makeReceiver(store: any EventStore, maxBodyBytes: Int = 4 * 1024 * 1024) throws -> Receiver {
    Receiver(verifier: try SignatureVerifier(secrets: [Secret(secret)]), store: store,
             configuration: .init(maxBodyBytes: maxBodyBytes), logger: quietLogger)
}

func makeApp(_ receiver: Receiver, readiness: Readiness? = nil) -> some ApplicationProtocol {
    let readiness = readiness ?? Readiness(store: receiver.store)
    return Application(
        router: WebhookServer.router(receiver: receiver, path: "/webhooks/kliq", readiness: readiness),
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        services: [receiver, readiness],
        logger: quietLogger
    )
}

func signedHeaders(_ body: [UInt8]) -> HTTPFields {
    [.kliqSignature: signer.signature(for: body), .contentType: "application/json"]
}

extension TestClientProtocol {
    func deliver(_ body: [UInt8], headers: HTTPFields? = nil) async throws -> TestResponse {
        try await self.execute(uri: "/webhooks/kliq", method: .post, headers: headers ?? signedHeaders(body), body: ByteBuffer(bytes: body))
    }
}

extension TestResponse {
    var json: [String: Any] {
        (self.body.readableBytes > 0 ? try? JSONSerialization.jsonObject(with: Data(self.body.readableBytesView)) as? [String: Any] : nil) ?? [:]
    }
}

/// A store whose writes always fail, as on a full or read-only disk.
struct FailingStore: EventStore {
    func accept(_ event: Event, handlers: [String]) async throws -> Acceptance {
        throw WebhookError(.storageUnavailable, "cannot write to the data directory: write events/x.json: No space left on device")
    }
    func claim(handlers: Set<String>, owner: String, limit: Int, maxBytes: Int, lease: Duration) async throws -> [Claim] { [] }
    func renew(_ claim: Claim, lease: Duration) async throws -> Bool { false }
    func settle(_ claim: Claim, outcomes: [String: DeliveryOutcome]) async throws -> Bool { false }
    func release(_ claim: Claim) async {}
    func pending(handlers: Set<String>) async throws -> Int { 0 }
    func redrive(_ filter: RedriveFilter) async throws -> Int { throw WebhookError(.storageUnavailable, "no space left") }
    func deliveries(eventId: String) async throws -> LedgerEntry? { nil }
    func jobs(after cursor: String?, limit: Int) async throws -> JobPage { JobPage(jobs: [], next: nil) }
    func track(jobId: String) async throws { throw WebhookError(.storageUnavailable, "no space left") }
    func untrack(jobId: String) async throws {}
    func trackedJobs(after cursor: String?, limit: Int) async throws -> [TrackedJob] { [] }
    func deliveries(on shelf: LedgerEntry.Shelf, after cursor: String?, limit: Int) async throws -> [LedgerEntry] { [] }
    func quarantine(body: [UInt8], reason: String) async throws { throw WebhookError(.storageUnavailable, "no space left") }
    func event(id: String) async throws -> Event? { nil }
    func events(after: UInt64, matching filter: EventFilter, limit: Int) async throws -> EventPage { EventPage(events: [], next: nil) }
    func job(id: String) async throws -> Job? { nil }
    func checkHealth() async throws { throw WebhookError(.storageUnavailable, "No space left on device") }
}
