import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KliqWebhooks
@testable import KliqWebhooksConsole
import KliqWebhooksTesting
import NIOCore
import Synchronization
import Testing

/// The operator console's JSON API against a real receiver and store, each answer checked against the
/// OpenAPI document the API serves.
@Suite struct ConsoleAPITests {
    let token = AdminToken("s3cret-admin-token")!

    /// A receiver on `store` whose one handler fails on `evt_dead…` events (one attempt: dead at once).
    func receiver(_ store: any EventStore) throws -> Receiver {
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(secret)]), store: store,
                                configuration: .init(retry: RetryPolicy(maxAttempts: 1)), logger: quietLogger)
        receiver.on(.visitSubmitted, name: "crm") { event in
            if event.id.hasPrefix("evt_dead") { throw Refusal() }
        }
        return receiver
    }

    struct Refusal: Error {}

    static func visit(_ id: String, job: String? = nil) -> [UInt8] {
        Array(#"{"id":"\#(id)","type":"visit.submitted","tenantId":"t_1","timestamp":"2026-04-28T12:00:00Z","data":{"visitId":"v1"\#(job.map { #","jobId":"\#($0)""# } ?? "")}}"#.utf8)
    }

    /// Runs `body` with the API mounted (and the receiver's handlers running).
    func withAPI(_ receiver: Receiver, token: AdminToken?, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = Router()
        AdminAPI(receiver: receiver, token: token).addRoutes(to: router)
        let app = Application(router: router, services: [receiver], logger: quietLogger)
        try await app.test(.router) { client in try await body(client) }
    }

    func get(_ client: any TestClientProtocol, _ uri: String, token: AdminToken? = nil) async throws -> (status: HTTPResponse.Status, json: Any?, response: TestResponse) {
        let headers: HTTPFields = [.authorization: "Bearer s3cret-admin-token"]
        let response = try await client.execute(uri: uri, method: .get, headers: token == nil ? [:] : headers, body: nil)
        let json = try? JSONSerialization.jsonObject(with: Data(buffer: response.body), options: [.fragmentsAllowed])
        return (response.status, json, response)
    }

    @Test func listsPagesAndFiltersEventsWithTheirHandlerStates() async throws {
        let receiver = try self.receiver(InMemoryEventStore())
        for index in 0..<120 { _ = try await receiver.deliver(Self.visit("evt_\(String(format: "%03d", index))", job: index % 2 == 0 ? "job_even" : nil), signedWith: signer) }
        _ = try await receiver.deliver(Self.visit("evt_dead_1"), signedWith: signer)
        _ = try await receiver.deliver(try fixtures.load("cv.job.completed.custom"), signedWith: signer)
        try await self.withAPI(receiver, token: nil) { client in
            var ids: [String] = []
            var cursor = ""
            var pages = 0
            repeat {
                let (status, json, _) = try await self.get(client, "/api/events?type=visit.submitted&limit=50&cursor=\(cursor)")
                #expect(status == .ok)
                try OpenAPICheck.response(json, path: "/api/events", status: 200)
                let page = try #require(json as? [String: Any])
                ids += (page["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page["next"] as? String ?? ""
                pages += 1
            } while !cursor.isEmpty && pages < 10
            #expect(ids.count == 121 && pages == 3, "\(ids.count) events in \(pages) pages")
            #expect(Set(ids).count == 121)
            #expect(!ids.contains("evt_custom_0001"))

            let even = try await self.get(client, "/api/events?jobId=job_even&limit=200")
            #expect(((even.json as? [String: Any])?["items"] as? [Any])?.count == 60)

            // The dead one, once its handler has failed.
            var dead: [[String: Any]] = []
            for _ in 0..<100 {
                dead = ((try await self.get(client, "/api/events?state=dead").json as? [String: Any])?["items"] as? [[String: Any]]) ?? []
                if !dead.isEmpty { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(dead.map { $0["id"] as? String } == ["evt_dead_1"])
            #expect((dead.first?["handlers"] as? [String: String]) == ["crm": "dead"])

            let stats = try await self.get(client, "/api/stats")
            try OpenAPICheck.response(stats.json, path: "/api/stats", status: 200)
            let counts = try #require(stats.json as? [String: Any])
            #expect(counts["accepted"] as? Int == 122)
            #expect(counts["dead"] as? Int == 1)
        }
    }

    @Test func showsAnEventByteForByteWithItsAttempts() async throws {
        let receiver = try self.receiver(InMemoryEventStore())
        let fixture = try fixtures.load("cv.job.completed.custom")
        _ = try await receiver.deliver(fixture, signedWith: signer)
        _ = try await receiver.deliver(Self.visit("evt_dead_2"), signedWith: signer)
        try await self.withAPI(receiver, token: nil) { client in
            let (status, json, _) = try await self.get(client, "/api/events/evt_custom_0001")
            #expect(status == .ok)
            try OpenAPICheck.response(json, path: "/api/events/{id}", status: 200)
            let event = try #require(json as? [String: Any])
            #expect((event["body"] as? String).map { Array($0.utf8) } == fixture.body)
            #expect(event["bytes"] as? Int == fixture.body.count)
            // sha256sum Fixtures/cv.job.completed.custom.json
            #expect(event["sha256"] as? String == "042b6b0eb22f6071a6205abf2fadd92bc0b622f629f36dde264e81d171da4e3d")

            var handler: [String: Any] = [:]
            for _ in 0..<100 {
                let dead = try await self.get(client, "/api/events/evt_dead_2").json as? [String: Any]
                handler = ((dead?["handlers"] as? [String: Any])?["crm"] as? [String: Any]) ?? [:]
                if handler["state"] as? String == "dead" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(handler["state"] as? String == "dead")
            let attempts = handler["attempts"] as? [[String: Any]] ?? []
            #expect(attempts.count == 1 && attempts.first?["outcome"] as? String == "dead")
            #expect((attempts.first?["error"] as? String)?.contains("Refusal") == true)

            let missing = try await self.get(client, "/api/events/evt_nope")
            #expect(missing.status == .notFound)
            try OpenAPICheck.response(missing.json, path: "/api/events/{id}", status: 404)
        }
    }

    @Test func jobsAreListedAndShownInKliqsShape() async throws {
        let store = InMemoryEventStore()
        let receiver = try self.receiver(store)
        _ = try await receiver.deliver(try fixtures.load("cv.job.completed.custom"), signedWith: signer)
        _ = try await receiver.deliver(try fixtures.load("cv.job.failed.error-object"), signedWith: signer)
        try await self.withAPI(receiver, token: nil) { client in
            let all = try await self.get(client, "/api/jobs")
            try OpenAPICheck.response(all.json, path: "/api/jobs", status: 200)
            #expect(((all.json as? [String: Any])?["items"] as? [Any])?.count == 2)
            let failed = try await self.get(client, "/api/jobs?status=failed")
            let items = (failed.json as? [String: Any])?["items"] as? [[String: Any]] ?? []
            #expect(items.map { $0["status"] as? String } == ["failed"])
            let id = try #require(items.first?["id"] as? String)
            let job = try await self.get(client, "/api/jobs/\(id)")
            try OpenAPICheck.response(job.json, path: "/api/jobs/{id}", status: 200)
            #expect((job.json as? [String: Any])?["id"] as? String == id)
        }
    }

    @Test func badQueriesAreRefusedWithWhatIsExpected() async throws {
        let receiver = try self.receiver(InMemoryEventStore())
        try await self.withAPI(receiver, token: nil) { client in
            for uri in ["/api/events?limit=0", "/api/events?limit=x", "/api/events?state=lost", "/api/events?since=yesterday",
                        "/api/events?until=", "/api/events?state=", "/api/jobs?since=",
                        "/api/events?cursor=abc", "/api/jobs?limit=999"] {
                let (status, json, _) = try await self.get(client, uri)
                #expect(status == .badRequest, "\(uri)")
                try OpenAPICheck.response(json, path: uri.hasPrefix("/api/jobs") ? "/api/jobs" : "/api/events", status: 400)
            }
        }
    }

    @Test func aTokenIsRequiredWhenSetAndNeverEchoed() async throws {
        let receiver = try self.receiver(InMemoryEventStore())
        try await self.withAPI(receiver, token: self.token) { client in
            for path in ["/api/stats", "/api/events", "/api/openapi.json", "/api/jobs/x"] {
                let anonymous = try await self.get(client, path)
                #expect(anonymous.status == .unauthorized, "\(path)")
                #expect(anonymous.response.headers[.wwwAuthenticate] == "Bearer")
                try OpenAPICheck.response(anonymous.json, path: "/api/stats", status: 401)
                let wrong = try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer s3cret-admin-tokem"], body: nil)
                #expect(wrong.status == .unauthorized)
                #expect(!String(buffer: wrong.body).contains("s3cret"))
            }
            let allowed = try await self.get(client, "/api/stats", token: self.token)
            #expect(allowed.status == .ok)
            #expect(allowed.response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(allowed.response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(!"\(self.token)".contains("s3cret"))
        }
    }

    @Test func theServedDocumentIsOpenAPIAndNamesEveryRoute() async throws {
        let receiver = try self.receiver(InMemoryEventStore())
        try await self.withAPI(receiver, token: nil) { client in
            let (status, json, _) = try await self.get(client, "/api/openapi.json")
            #expect(status == .ok)
            let document = try #require(json as? [String: Any])
            #expect((document["openapi"] as? String)?.hasPrefix("3.") == true)
            let paths = Set((document["paths"] as? [String: Any] ?? [:]).keys)
            #expect(paths == ["/api/stats", "/api/events", "/api/events/{id}", "/api/events/{id}/redrive", "/api/redrive", "/api/jobs", "/api/jobs/{id}"])
        }
    }

    /// Redrive: the CSRF token and a same-origin request are required, and nothing changes without them.
    @Test func redriveNeedsTheCSRFTokenFromTheConsoleAndItsOrigin() async throws {
        let store = InMemoryEventStore()
        let failing = Mutex(true)
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(secret)]), store: store,
                                configuration: .init(retry: RetryPolicy(maxAttempts: 1)), logger: quietLogger)
        receiver.on(.visitSubmitted, name: "crm") { _ in if failing.withLock({ $0 }) { throw Refusal() } }
        for id in ["evt_r1", "evt_r2", "evt_r3"] { _ = try await receiver.deliver(Self.visit(id, job: id == "evt_r3" ? "job_r" : nil), signedWith: signer) }
        try await self.withAPI(receiver, token: nil) { client in
            #expect(try await eventually { await store.deliveries(on: .dead, after: nil, limit: 10).count == 3 })
            let page = try await self.get(client, "/api/events?state=dead")
            let csrf = try #require(page.response.headers[HTTPField.Name("X-CSRF-Token")!])
            func post(_ uri: String, _ headers: HTTPFields, body: String? = nil) async throws -> (HTTPResponse.Status, Any?) {
                let response = try await client.execute(uri: uri, method: .post, headers: headers, body: body.map { ByteBuffer(string: $0) })
                return (response.status, try? JSONSerialization.jsonObject(with: Data(buffer: response.body)))
            }
            let token = HTTPField.Name("X-CSRF-Token")!
            // No token, a wrong one, or another origin: 403, and the event stays dead.
            for headers: HTTPFields in [[:], [token: "0000"], [token: csrf, .origin: "https://evil.example"]] {
                let (status, json) = try await post("/api/events/evt_r1/redrive", headers)
                #expect(status == .forbidden, "\(headers)")
                try OpenAPICheck.response(json, path: "/api/events/{id}/redrive", status: 403, method: "post")
            }
            #expect(await store.deliveries(eventId: "evt_r1")?.handlers["crm"]?.status == .dead)

            failing.withLock { $0 = false }
            let (status, json) = try await post("/api/events/evt_r1/redrive", [token: csrf])
            #expect(status == .ok)
            try OpenAPICheck.response(json, path: "/api/events/{id}/redrive", status: 200, method: "post")
            #expect((json as? [String: Any])?["redriven"] as? Int == 1)
            #expect(try await eventually { await store.deliveries(eventId: "evt_r1")?.handlers["crm"]?.status == .succeeded })
            #expect(try await post("/api/events/evt_nope/redrive", [token: csrf]).0 == .notFound)

            // Bulk: the confirmed count must still be the count; then every matching dead event runs again.
            let stale = try await post("/api/redrive", [token: csrf, .contentType: "application/json"], body: #"{"filter":{},"expected":3}"#)
            #expect(stale.0 == .conflict)
            try OpenAPICheck.response(stale.1, path: "/api/redrive", status: 409, method: "post")
            #expect((stale.1 as? [String: Any])?["count"] as? Int == 2)
            #expect(await store.deliveries(eventId: "evt_r2")?.handlers["crm"]?.status == .dead)
            let one = try await post("/api/redrive", [token: csrf], body: #"{"filter":{"jobId":"job_r"},"expected":1}"#)
            #expect(one.0 == .ok && (one.1 as? [String: Any])?["redriven"] as? Int == 1)
            #expect(try await eventually { await store.deliveries(eventId: "evt_r3")?.handlers["crm"]?.status == .succeeded })
            #expect(await store.deliveries(eventId: "evt_r2")?.handlers["crm"]?.status == .dead)
            #expect(try await post("/api/redrive", [token: csrf], body: "not json").0 == .badRequest)
        }
    }
}

/// Polls `condition` every 50 ms for at most `timeout`.
private func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return false
}
