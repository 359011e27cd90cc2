import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KliqWebhooks
@testable import KliqWebhooksConsole
import KliqWebhooksTesting
import NIOCore
import Testing

/// The console's pages, rendered by a real receiver's console: what they show, that nothing from the
/// wire becomes markup, and the sign-in that a console with a token asks for.
@Suite struct ConsolePageTests {
    static let script = "<script>alert(1)</script>"

    func withConsole(token: AdminToken? = nil, _ deliveries: [[UInt8]] = [], _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(secret)]), store: InMemoryEventStore(),
                                configuration: .init(retry: RetryPolicy(maxAttempts: 1)), logger: quietLogger)
        receiver.on(.visitSubmitted, name: "crm") { _ in throw CancellationError() }
        for delivery in deliveries { _ = try await receiver.deliver(delivery, signedWith: signer) }
        let router = Router()
        AdminAPI(receiver: receiver, token: token).addRoutes(to: router)
        try await Application(router: router, services: [receiver], logger: quietLogger).test(.router) { client in try await body(client) }
    }

    func page(_ client: any TestClientProtocol, _ uri: String, cookie: String? = nil) async throws -> (status: HTTPResponse.Status, html: String, headers: HTTPFields) {
        let response = try await client.execute(uri: uri, method: .get, headers: cookie.map { [.cookie: $0] } ?? [:], body: nil)
        return (response.status, String(buffer: response.body), response.headers)
    }

    static func hostile(_ id: String) -> [UInt8] {
        Array(#"{"id":"\#(id)","type":"visit.submitted","tenantId":"t_1","timestamp":"2026-04-28T12:00:00Z","data":{"note":"\#(script)","visitId":"\"><img src=x onerror=alert(2)>"}}"#.utf8)
    }

    static func hostileJob() -> [UInt8] {
        Array(#"{"id":"evt_xss_job","type":"cv.job.completed","tenantId":"t_1","timestamp":"2026-04-28T12:00:00Z","data":{"jobId":"job_xss","status":"completed","model":"shelf-detection-v2","result":{"detections":[{"objectName":"\#(script)","confidence":0.9,"boundingBox":{"x":10,"y":20,"width":30,"height":40},"attributes":{"x":"</code><script>alert(3)</script>"}}],"summary":{"note":"\#(script)"}}}}"#.utf8)
    }

    @Test func pagesShowTheEventsAndJobsWithStrictHeaders() async throws {
        let shelf = try fixtures.load("cv.job.completed.shelf-detection-v2").body
        try await self.withConsole([shelf, Self.hostile("evt_visit_1")]) { client in
            let overview = try await self.page(client, "/")
            #expect(overview.status == .ok)
            #expect(overview.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(overview.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(overview.html.contains(#"<meta name="csrf-token" content=""#))
            #expect(overview.html.contains(#"data-stat="accepted">2<"#), "\(overview.html)")

            let events = try await self.page(client, "/events?type=cv.job.completed")
            #expect(events.html.contains("evt_shelf_0001") && !events.html.contains("evt_visit_1"))

            let job = try await self.page(client, "/jobs/job_shelf_0001")
            #expect(job.status == .ok)
            #expect(job.html.components(separatedBy: #"class="detection""#).count - 1 == 4, "one box per detection")
            #expect(job.html.contains(#"<text class="label" x="120" y="41">Coca-Cola 330ml</text>"#), "\(job.html)")
            #expect(job.html.contains("evt_shelf_0001"))
            #expect(!job.html.contains("Found by") && !job.html.contains("<dt>Error</dt>"), "empty sections stay out")

            var failed = ""
            for _ in 0..<100 {
                failed = try await self.page(client, "/events/evt_visit_1").html
                if failed.contains(#"class="state dead""#) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(failed.contains(#"<li class="dead"><time>"#) && failed.contains("CancellationError"), "\(failed)")
            #expect(failed.contains(#"data-redrive="/api/events/evt_visit_1/redrive""#))
            #expect(!failed.contains("next try"))

            let js = try await self.page(client, "/assets/console.js")
            #expect(js.status == .ok && js.headers[.contentType]?.hasPrefix("text/javascript") == true)
            #expect(try await self.page(client, "/jobs/job_nope").status == .notFound)
        }
    }

    @Test func nothingFromTheWireBecomesMarkup() async throws {
        try await self.withConsole([Self.hostile("evt_xss_1"), Self.hostileJob()]) { client in
            for uri in ["/events", "/events/evt_xss_1", "/events/evt_xss_job", "/jobs", "/jobs/job_xss", "/dead", "/"] {
                let page = try await self.page(client, uri)
                #expect(page.status == .ok, "\(uri)")
                #expect(!page.html.contains("<script>alert"), "\(uri) holds a script from the payload")
                #expect(!page.html.contains("<img src=x"), "\(uri)")
            }
            let event = try await self.page(client, "/events/evt_xss_1")
            #expect(event.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            let job = try await self.page(client, "/jobs/job_xss")
            #expect(job.html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"))
        }
    }

    @Test func deadLettersOfferABulkRedriveOfTheirCount() async throws {
        try await self.withConsole([Self.hostile("evt_d1"), Self.hostile("evt_d2")]) { client in
            var dead = ""
            for _ in 0..<100 {
                dead = try await self.page(client, "/dead").html
                if dead.contains(#"data-expected="2""#) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(dead.contains(#"data-expected="2""#) && dead.contains("Re-drive all 2"), "\(dead)")
            #expect(dead.contains("evt_d1") && dead.contains("evt_d2"))
        }
    }

    @Test func withATokenThePagesAskToSignInAndTheCookieOpensThem() async throws {
        try await self.withConsole(token: AdminToken("tok_pages_123")!) { client in
            let anonymous = try await self.page(client, "/events")
            #expect(anonymous.status == .seeOther && anonymous.headers[.location] == "/sign-in")
            #expect(try await self.page(client, "/sign-in").html.contains(#"name="token""#))
            let wrong = try await client.execute(uri: "/sign-in", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                 body: ByteBuffer(string: "token=tok_pages_124"))
            #expect(wrong.status == .unauthorized && wrong.headers[.setCookie] == nil)
            let foreign = try await client.execute(uri: "/sign-in", method: .post, headers: [.origin: "https://evil.example"], body: ByteBuffer(string: "token=tok_pages_123"))
            #expect(foreign.status == .forbidden)
            let right = try await client.execute(uri: "/sign-in", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                 body: ByteBuffer(string: "token=tok_pages_123"))
            #expect(right.status == .seeOther)
            let cookie = try #require(right.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("tok_pages_123"))
            let session = String(cookie.prefix { $0 != ";" })
            #expect(try await self.page(client, "/events", cookie: session).status == .ok)
            #expect(try await self.page(client, "/api/stats", cookie: session).status == .ok)
            #expect(try await self.page(client, "/api/stats", cookie: "kliq_console=forged").status == .unauthorized)
        }
    }
}
