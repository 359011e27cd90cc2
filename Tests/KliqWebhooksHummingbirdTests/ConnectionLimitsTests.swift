import Foundation
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksTesting
import Logging
import Synchronization
import Testing

/// Cheap refusals and connection limits over a real socket: slow and oversized requests are cut off
/// and answered, and the server keeps serving everyone else.
@Suite(.serialized)
struct ConnectionLimitsTests {
    /// Runs a server with short time-outs, gives `body` a client for it, and checks `/healthz` after.
    func withServer(
        maxConnections: Int = 1024, maxInFlightBytes: Int = 64 * 1024 * 1024, requestTimeout: Duration = .seconds(1),
        _ body: (RawHTTPClient) async throws -> Void
    ) async throws {
        let receiver = try makeReceiver(store: InMemoryEventStore(), maxBodyBytes: 64 * 1024)
        let configuration = WebhookServer.Configuration(port: 0, requestTimeout: requestTimeout, idleTimeout: requestTimeout + .milliseconds(500), maxConnections: maxConnections,
                                                        maxHeaderBytes: 8 * 1024, maxInFlightBytes: maxInFlightBytes)
        let port = Mutex(0)
        let app = WebhookServer.application(receiver: receiver, configuration: configuration, logger: quietLogger) { address in
            port.withLock { $0 = address?.port ?? 0 }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            while port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(20)) }
            let client = RawHTTPClient(port: port.withLock { $0 })
            try await body(client)
            #expect(try await client.request("GET", "/healthz").status == 200)
            group.cancelAll()
        }
    }

    func head(contentLength: Int, signature: String? = String(repeating: "a", count: 64), extra: String = "") -> [UInt8] {
        Array(("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + (signature.map { "X-Kliq-Signature: \($0)\r\n" } ?? "") + extra + "Content-Length: \(contentLength)\r\n\r\n").utf8)
    }

    @Test func aSlowBodyGets408AndTheConnectionCloses() async throws {
        try await self.withServer { client in
            let body = try fixtures.load("visit.submitted").body
            let started = ContinuousClock.now
            let response = try await client.send([self.head(contentLength: body.count, signature: signer.signature(for: body)) + body.prefix(10),
                                                  Array(body.dropFirst(10))], pausing: .milliseconds(1800))
            #expect(response.status == 408)
            #expect(response.header("Connection") == "close")
            #expect(String(decoding: response.body, as: UTF8.self).contains(#""error":"request_timeout""#))
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    @Test func headersThatNeverFinishAreCutOffByTheIdleTimeout() async throws {
        try await self.withServer { client in
            let partial = Array("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
            let started = ContinuousClock.now
            await #expect(throws: (any Error).self) {
                // No answer at all: the connection is closed before the head is complete.
                _ = try await client.send([partial, Array("a".utf8), Array("b".utf8), Array("c".utf8)], pausing: .milliseconds(900))
            }
            #expect(ContinuousClock.now - started < .seconds(8))
        }
    }

    @Test func aMissingOrMalformedSignatureIs401BeforeAnyBodyIsRead() async throws {
        try await self.withServer { client in
            // A huge declared body that is never sent: the answer cannot have waited for it.
            for signature in [nil, "not-hex", String(repeating: "z", count: 64)] as [String?] {
                let response = try await client.send(self.head(contentLength: 50_000_000, signature: signature))
                #expect(response.status == 401, "\(String(describing: signature))")
                #expect(response.header("Connection") == "close")
                #expect(String(decoding: response.body, as: UTF8.self).contains("invalid_signature"))
            }
        }
    }

    /// The client writes its whole (too large) body before reading, as simple clients do: it still gets
    /// the 413 (the server drains for a moment instead of resetting the connection), promptly.
    @Test func anEarly413ReachesAClientThatWritesEverythingFirst() async throws {
        try await self.withServer { client in
            let big = Array(repeating: UInt8(ascii: " "), count: 8_000_000)
            let started = ContinuousClock.now
            let response = try await client.send(self.head(contentLength: big.count) + big)
            #expect(response.status == 413)
            #expect(response.header("Connection") == "close")
            #expect(ContinuousClock.now - started < .seconds(2), "the client stalled: the server stopped reading")
        }
    }

    @Test func oversizedHeadersAre400() async throws {
        try await self.withServer { client in
            let response = try await client.send(self.head(contentLength: 2, extra: "X-Big: \(String(repeating: "b", count: 9000))\r\n") + Array("{}".utf8))
            #expect(response.status == 400)
            var many = ""
            for index in 0..<150 { many += "X-H\(index): v\r\n" }
            let fields = try await client.send(self.head(contentLength: 2, extra: many) + Array("{}".utf8))
            #expect(fields.status == 400)
        }
    }

    /// Two uploads, room for one body: the second is read only once the first is done.
    @Test func bodiesWaitForRoomInTheInFlightBudget() async throws {
        let first = try fixtures.load("visit.submitted").with(eventId: "evt_budget_1").body
        let second = try fixtures.load("visit.submitted").with(eventId: "evt_budget_2").body
        /// Starts a slow upload of `first` (its last part `pause` after the first) and, 200 ms in, a normal
        /// delivery of `second`; returns when the second was answered, relative to when the slow one's
        /// last part was due.
        func race(pause: Duration, on client: RawHTTPClient) async throws -> (answered: ContinuousClock.Instant, lastPartDue: ContinuousClock.Instant) {
            let firstPartSent = Mutex<ContinuousClock.Instant?>(nil)
            let slow = Task {
                try await client.send([self.head(contentLength: first.count, signature: signer.signature(for: first)) + first.prefix(5),
                                       Array(first.dropFirst(5))], pausing: pause) { firstPartSent.withLock { $0 = .now } }
            }
            try await Task.sleep(for: .milliseconds(200))
            let fast = try await client.post("/webhooks/kliq", body: second, headers: [("X-Kliq-Signature", signer.signature(for: second))])
            let answered = ContinuousClock.now
            #expect(fast.status == 200)
            #expect(try await slow.value.status == 200)
            return (answered, try #require(firstPartSent.withLock { $0 }) + pause)
        }
        try await self.withServer(maxInFlightBytes: max(first.count, second.count), requestTimeout: .seconds(5)) { client in
            let (answered, lastPartDue) = try await race(pause: .milliseconds(700), on: client)
            // The second body cannot be read before the first is complete.
            #expect(answered >= lastPartDue - .milliseconds(50), "the second body was read while the first held the whole budget")
        }
        try await self.withServer(requestTimeout: .seconds(5)) { client in
            let (answered, lastPartDue) = try await race(pause: .milliseconds(1500), on: client)
            #expect(answered < lastPartDue, "with room for both, the second does not wait for the first")
        }
    }

    /// At the connection limit, a new connection is served only once another closes.
    @Test func connectionsBeyondTheLimitWaitToBeAccepted() async throws {
        try await self.withServer(maxConnections: 2) { client in
            let idle = try (0..<2).map { _ in try client.connect() }
            defer { idle.forEach { close($0) } }
            try await Task.sleep(for: .milliseconds(200))
            let started = ContinuousClock.now
            #expect(try await client.request("GET", "/healthz").status == 200)
            // Served only after the idle time-out (1.5 s) closed one of the two idle connections.
            #expect(ContinuousClock.now - started >= .milliseconds(900))
        }
    }

    @Test func aSignedDeliveryStillWorksWithTheGuardInPlace() async throws {
        try await self.withServer { client in
            let body = try fixtures.load("visit.submitted").body
            let response = try await client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signer.signature(for: body))])
            #expect(response.status == 200)
            #expect(response.header("Connection") != "close")
        }
    }
}
