import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksTesting
import Logging
import Synchronization
import Testing

/// Client addresses and request ids: believed from trusted proxies only.
struct ProxyAwarenessTests {
    @Test(arguments: [
        "127.0.0.1", "10.0.0.0/8", "192.168.1.7/32", "0.0.0.0/0", "::1", "fd00::/8", "2001:db8::/32", "::ffff:192.0.2.1", "::/0",
    ])
    func parsesAddressesAndNetworks(_ entry: String) throws {
        #expect(try TrustedProxies([entry]).entries == [entry])
    }

    @Test(arguments: [
        "", "localhost", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0/8", "256.1.1.1", "01.2.3.4", "1.2.3.4/", "::1/129",
        "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "fe80::1%", "1.2.3.4 ",
    ])
    func refusesWhatIsNeitherAnAddressNorANetwork(_ entry: String) {
        #expect(throws: TrustedProxiesError.self) { try TrustedProxies([entry]) }
    }

    /// The IPv6/IPv4 parser agrees with the C library's `inet_pton` on valid and invalid text.
    @Test func agreesWithInetPton() throws {
        let samples = [
            "::", "::1", "1::", "2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329", "fe80::1:2:3:4:5:6", "1:2:3:4:5:6:7::",
            "::ffff:10.0.0.1", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", ":1::", "1:::2", "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9", "g::1", "::12345", "1.2.3.4", "0.0.0.0", "255.255.255.255", "1.2.3", "1.2.3.4.5", "1..2.3",
        ]
        for sample in samples {
            var v6 = in6_addr()
            var v4 = in_addr()
            let c6 = inet_pton(AF_INET6, sample, &v6) == 1
            let c4 = inet_pton(AF_INET, sample, &v4) == 1
            let bytes: [UInt8]? =
                c4 ? withUnsafeBytes(of: &v4) { Array($0) } : c6 ? withUnsafeBytes(of: &v6) { Array($0) } : nil
            let ours = try? TrustedProxies([sample])
            #expect((ours != nil) == (bytes != nil), "\(sample): inet_pton says \(bytes != nil)")
            if let bytes {
                // Same bytes: the host-sized network of the address contains only itself.
                let exact = try TrustedProxies([sample + "/\(bytes.count * 8)"])
                #expect(exact.trusts(sample), "\(sample)")
            }
        }
    }

    @Test func networksContainTheirAddressesOnly() throws {
        let proxies = try TrustedProxies(["10.0.0.0/8", "192.168.1.0/25", "fd00::/8", "::1"])
        for inside in ["10.1.2.3", "10.255.255.255", "192.168.1.127", "fd12:3456::1", "::1"] {
            #expect(proxies.trusts(inside), "\(inside)")
        }
        for outside in ["11.0.0.1", "192.168.1.128", "fe00::1", "::2", "127.0.0.1", "not-an-ip"] {
            #expect(!proxies.trusts(outside), "\(outside)")
        }
        #expect(!TrustedProxies.none.trusts("127.0.0.1"))
    }

    @Test(arguments: [
        // (peer, headers, expected client)
        ("203.0.113.5", ["X-Forwarded-For": "198.51.100.1"], "203.0.113.5"),  // untrusted peer: headers ignored
        ("127.0.0.1", [:], "127.0.0.1"),
        ("127.0.0.1", ["X-Forwarded-For": "198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["X-Forwarded-For": "198.51.100.1, 203.0.113.9"], "203.0.113.9"),  // nearest untrusted hop
        ("127.0.0.1", ["X-Forwarded-For": "198.51.100.1, 10.0.0.4"], "198.51.100.1"),  // 10/8 is trusted: skipped
        ("127.0.0.1", ["X-Forwarded-For": "garbage, 203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", ["X-Forwarded-For": "203.0.113.9, garbage"], "127.0.0.1"),  // unreadable: stop at the last trusted hop
        ("127.0.0.1", ["X-Real-IP": "198.51.100.2"], "198.51.100.2"),
        ("127.0.0.1", ["Forwarded": "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\""], "2001:db8:cafe::17"),
        ("127.0.0.1", ["Forwarded": "for=192.0.2.60:8080", "X-Forwarded-For": "198.51.100.1"], "192.0.2.60"),  // Forwarded wins
        ("127.0.0.1", ["X-Forwarded-For": "10.0.0.9"], "10.0.0.9"),  // every hop trusted: the farthest
    ])
    func findsTheClientAddress(_ peer: String, _ headers: [String: String], _ expected: String) throws {
        let proxies = try TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
        var fields = HTTPFields()
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        #expect(proxies.clientAddress(peer: peer, headers: fields) == expected)
    }

    /// Over a real socket: the client and request id reach the delivery's log line and the answer.
    @Test func trustedProxyHeadersReachTheLogAndTheAnswer() async throws {
        let (trusted, trustedLines) = try await self.deliver(trustedProxies: ["127.0.0.1"])
        #expect(trusted.header("X-Request-Id") == "nginx-req-0001")
        let line = try #require(trustedLines.first { $0.message == "delivery accepted" })
        #expect(line.metadata["kliq.client"] == "198.51.100.7")
        #expect(line.metadata["kliq.request_id"] == "nginx-req-0001")
        #expect(line.metadata["kliq.latency_ms"].map { Double($0) != nil } == true)

        let (untrusted, untrustedLines) = try await self.deliver(trustedProxies: [])
        let id = try #require(untrusted.header("X-Request-Id"))
        #expect(id != "nginx-req-0001")
        let other = try #require(untrustedLines.first { $0.message == "delivery accepted" })
        #expect(other.metadata["kliq.client"] == "127.0.0.1")
        #expect(other.metadata["kliq.request_id"] == id)
    }

    @Test func errorAnswersCarryTheRequestIdToo() async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore())
        let app = Application(
            router: WebhookServer.router(receiver: receiver, path: "/webhooks/kliq", readiness: Readiness(store: receiver.store)),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)), services: [receiver], logger: quietLogger)
        try await app.test(.live) { client in
            let bad = try await client.deliver([0x7B, 0x7D], headers: [.kliqSignature: String(repeating: "0", count: 64)])
            #expect(bad.status == .unauthorized)
            #expect(bad.headers[.xRequestID]?.isEmpty == false)
            let missing = try await client.execute(uri: "/nowhere", method: .get)
            #expect(missing.status == .notFound)
            #expect(missing.headers[.xRequestID]?.isEmpty == false)
        }
    }

    private func deliver(trustedProxies: [String]) async throws -> (RawHTTPClient.Response, [CapturedLine]) {
        let capture = LineCapture()
        let logger = Logger(label: "test") { _ in capture }
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(secret)]), store: InMemoryEventStore(), logger: logger)
        let configuration = WebhookServer.Configuration(port: 0, trustedProxies: try TrustedProxies(trustedProxies))
        let port = Mutex(0)
        let app = WebhookServer.application(receiver: receiver, configuration: configuration, logger: logger) { address in
            port.withLock { $0 = address?.port ?? 0 }
        }
        let body = try fixtures.load("cv.job.completed.shelf-detection-v2").body
        let response = try await withThrowingTaskGroup(of: RawHTTPClient.Response?.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []); return nil }
            while port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(20)) }
            let client = RawHTTPClient(port: port.withLock { $0 })
            let response = try await client.post("/webhooks/kliq", body: body, headers: [
                ("X-Kliq-Signature", signer.signature(for: body)), ("X-Forwarded-For", "198.51.100.7"), ("X-Request-Id", "nginx-req-0001"),
            ])
            group.cancelAll()
            return response
        }
        #expect(response.status == 200)
        return (response, capture.lines)
    }
}

struct CapturedLine: Sendable {
    var message: String
    var metadata: [String: String]
}

/// Where ``LineCapture`` keeps lines.
final class LineStore: Sendable {
    let lines = Mutex<[CapturedLine]>([])
}

/// A log handler that keeps every line, for assertions (a value, like every log handler: metadata set on
/// one logger copy stays on that copy).
struct LineCapture: LogHandler {
    let store = LineStore()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    var lines: [CapturedLine] { self.store.lines.withLock { $0 } }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
        self.store.lines.withLock { $0.append(CapturedLine(message: event.message.description, metadata: merged)) }
    }
}
