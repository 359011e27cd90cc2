import Foundation
import Hummingbird
import HummingbirdTesting
import KliqWebhooks
import KliqWebhooksHummingbirdTesting
import KliqWebhooksTesting
import Logging
import Synchronization
import Testing

/// `--forward` sends the signature a delivery arrived with — not only live, but for every delivery read
/// back from disk: after a SIGKILL with forwards in flight, and after `events redeliver`. The sink
/// verifies each body exactly as a service receiving from KLIQ would.
@Suite(.serialized)
struct ForwardSignatureTests {
    let dir = TemporaryDirectory()
    let fixtures: Fixtures = try! Fixtures()
    /// The delivery is signed with the *second* secret, so a forward re-signed with the first would
    /// differ from the original.
    let secrets = "whsec_current,whsec_previous"
    let original = Signer(secret: "whsec_previous")

    enum SinkMode: Int { case hold, fail, succeed }

    struct Received: Sendable {
        var body: [UInt8]
        var signature: String?
    }

    /// What the sink does with a request, and what it has received.
    final class Sink: Sendable {
        let mode = Mutex(SinkMode.hold)
        let received = Mutex<[Received]>([])
    }

    /// A Hummingbird sink: `hold` keeps each request open while the mode stays `hold`, `fail` answers 500, `succeed` 204.
    func withSink(_ body: @escaping @Sendable (Int, Sink) async throws -> Void) async throws {
        let state = Sink()
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let bytes = try await request.body.collect(upTo: 1 << 22)
            let item = Received(body: Array(bytes.readableBytesView), signature: request.headers[.init("X-Kliq-Signature")!])
            state.received.withLock { $0.append(item) }
            switch state.mode.withLock({ $0 }) {
            case .hold:
                // Held until the test changes the mode (or a minute passes), so the request is in flight.
                let deadline = ContinuousClock.now + .seconds(60)
                while state.mode.withLock({ $0 }) == .hold, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
                return .serviceUnavailable
            case .fail: return .internalServerError
            case .succeed: return .noContent
            }
        }
        let server = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                               logger: Logger(label: "sink", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await server.test(.live) { client in try await body(client.port!, state) }
    }

    func serve(_ port: Int, _ extra: [String] = []) async throws -> ServeProcess {
        let serve = try await ServeProcess(["serve", "--port", "0", "--forward", "http://127.0.0.1:\(port)/hook", "--forward-timeout", "120"] + extra,
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secrets], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        return serve
    }

    @Test func forwardsReadBackAfterASIGKILLCarryTheOriginalSignature() async throws {
        let bodies = try ["cv.job.completed.large", "cv.job.failed.error-string", "visit.submitted"].map { try self.fixtures.load($0).body }
        try await self.withSink { port, sink in
            let first = try await self.serve(port)
            for body in bodies {
                let answer = try await first.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", self.original.signature(for: body))])
                #expect(answer.status == 200)
            }
            // All three forwards are in flight (the sink holds them): nothing is recorded as handled.
            #expect(try await eventually { sink.received.withLock { $0.count } == 3 })
            kill(first.process.processIdentifier, SIGKILL)
            _ = try await first.waitForExit()
            sink.received.withLock { $0.removeAll() }
            sink.mode.withLock { $0 = .succeed }

            let second = try await self.serve(port)
            #expect(try await eventually { sink.received.withLock { $0.count } >= 3 })
            #expect(try await second.terminate() == 0)
            let got = sink.received.withLock { $0 }
            #expect(Set(got.map(\.body)) == Set(bodies))
            for item in got {
                #expect(item.signature == self.original.signature(for: item.body))
            }
        }
    }

    @Test func forwardsRedrivenWithEventsRedeliverCarryTheOriginalSignature() async throws {
        let body = try self.fixtures.load("cv.job.completed.custom").body
        try await self.withSink { port, sink in
            sink.mode.withLock { $0 = .fail }
            let serve = try await self.serve(port, ["--retry-attempts", "1"])
            let answer = try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", self.original.signature(for: body))])
            #expect(answer.status == 200)
            #expect(try await eventually { FileManager.default.fileExists(atPath: self.dir.file("kliq-data/ledger/dead/evt_custom_0001.json")) })
            #expect(try await serve.terminate() == 0)

            // Offline re-drive, then a restart that runs it.
            let redeliver = try await ServeProcess(["events", "redeliver", "evt_custom_0001"], environment: [:], workingDirectory: self.dir.path)
            #expect(try await redeliver.waitForExit() == 0)
            sink.mode.withLock { $0 = .succeed }
            sink.received.withLock { $0.removeAll() }
            let again = try await self.serve(port)
            #expect(try await eventually { sink.received.withLock { $0.count } == 1 })
            #expect(try await again.terminate() == 0)
            let got = try #require(sink.received.withLock { $0.first })
            #expect(got.body == body)
            #expect(got.signature == self.original.signature(for: body))
        }
    }

    /// A final state the polling fallback found never had a signature: it is forwarded signed with the
    /// first secret, so the receiving service verifies it like any delivery.
    @Test func aPolledStateIsForwardedSignedWithTheFirstSecret() async throws {
        let api = try await StubKliqAPI.start(apiKey: "key_forward")
        defer { api.stop() }
        api.setJob("job_fwd", status: .completed, completedAt: "2026-04-28T12:00:00Z")
        try await self.withSink { port, sink in
            sink.mode.withLock { $0 = .succeed }
            let serve = try await ServeProcess(
                ["serve", "--port", "0", "--forward", "http://127.0.0.1:\(port)/hook", "--poll-after", "1s", "--data-dir", self.dir.file("poll-data")],
                environment: ["KLIQ_WEBHOOK_SECRET": self.secrets, "KLIQ_API_KEY": "key_forward", "KLIQ_TENANT_ID": "t_1", "KLIQ_API_URL": api.baseURL],
                workingDirectory: self.dir.path)
            try await serve.waitUntilListening()
            let track = try await ServeProcess(["jobs", "track", "job_fwd", "--data-dir", self.dir.file("poll-data")], environment: [:], workingDirectory: self.dir.path)
            #expect(try await track.waitForExit() == 0)
            #expect(try await eventually { sink.received.withLock { !$0.isEmpty } })
            #expect(try await serve.terminate() == 0)
            let forwarded = try #require(sink.received.withLock { $0.first })
            #expect(String(decoding: forwarded.body, as: UTF8.self).contains(#""id":"poll_job_fwd_completed""#))
            #expect(forwarded.signature == Signer(secret: "whsec_current").signature(for: forwarded.body))
        }
    }
}
