import Foundation
import HTTPTypes
import Hummingbird
import KliqWebhooks
import NIOCore

/// The admin token: `Authorization: Bearer TOKEN` on every admin request when one is set. Its
/// description is redacted, so it never reaches a log line or an error message.
public struct AdminToken: Sendable, CustomStringConvertible {
    let bytes: [UInt8]

    /// - Parameter text: the token (surrounding whitespace and a trailing newline are dropped).
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        self.bytes = Array(trimmed.utf8)
    }

    /// Whether `candidate` is this token, in time that does not depend on where they differ.
    func matches(_ candidate: Substring) -> Bool {
        let given = Array(candidate.utf8)
        return given.count == self.bytes.count && KliqWebhooks.Crypto.constantTimeEqual(given, self.bytes)
    }

    public var description: String { "AdminToken(***)" }

    /// The token's text, for the CSRF header and the sign-in cookie (never for the admin token itself).
    var text: String { String(decoding: self.bytes, as: UTF8.self) }

    /// A random token of this process (CSRF, sign-in session).
    static func random() -> AdminToken {
        AdminToken((0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined())!
    }
}

/// Checks the token, and puts the console's security headers on every answer: a strict
/// Content-Security-Policy, no sniffing, no caching, no referrer.
struct AdminGuard<Context: RequestContext>: RouterMiddleware {
    let api: AdminAPI
    var token: AdminToken? { self.api.token }
    var csrfToken: AdminToken { self.api.csrfToken }

    static var securityHeaders: HTTPFields {
        [
            .contentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            .cacheControl: "no-store",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        if let token = self.token {
            let header = request.headers[.authorization] ?? ""
            // A bearer token, or the sign-in cookie the pages use.
            guard (header.hasPrefix("Bearer ") && token.matches(header.dropFirst("Bearer ".count))) || self.api.signedIn(request) else {
                response = AdminAPI.error(.unauthorized, code: "unauthorized", "this console needs its admin token: Authorization: Bearer TOKEN")
                response.headers[.wwwAuthenticate] = "Bearer"
                response.headers.append(contentsOf: Self.securityHeaders)
                return response
            }
        }
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            let code = switch error.status {
            case .notFound: "not_found"
            case .badRequest: "bad_request"
            case .contentTooLarge: "payload_too_large"
            default: "error"
            }
            response = AdminAPI.error(error.status, code: code, error.body ?? error.status.reasonPhrase)
        }
        response.headers.append(contentsOf: Self.securityHeaders)
        if request.method == .get { response.headers[HTTPField.Name("X-CSRF-Token")!] = self.csrfToken.text }
        return response
    }
}

extension AdminAPI {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func json(_ value: some Encodable) throws -> Response {
        try self.json(bytes: Array(self.encoder.encode(value)))
    }

    static func json(bytes: [UInt8]) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(_ status: HTTPResponse.Status, code: String, _ message: String) -> Response {
        let body = (try? self.encoder.encode(ErrorBody(error: code, message: message))).map(Array.init) ?? []
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func badRequest(_ message: String) -> HTTPError { HTTPError(.badRequest, message: message) }

    /// `limit`: 1…200, 50 when absent.
    static func limit(_ query: Parameters) throws -> Int {
        guard let text = query.get("limit"), !text.isEmpty else { return 50 }
        guard let limit = Int(text), (1...200).contains(limit) else { throw self.badRequest("limit is a number from 1 to 200, not '\(text)'") }
        return limit
    }

    /// An RFC 3339 time from the query (`since`, `until`), or `nil` when absent. An empty value is
    /// refused, except from a page's filter form (`form`), whose empty fields mean "any".
    static func time(_ query: Parameters, _ name: String, form: Bool = false) throws -> Date? {
        guard let text = query.get(name) else { return nil }
        if text.isEmpty, form { return nil }
        guard let date = self.date(text) else { throw self.badRequest("\(name) is an RFC 3339 time like 2026-04-28T12:00:00Z, not '\(text)'") }
        return date
    }

    /// The core's own RFC 3339 parser and writer (``Timestamp``): no formatter made per call.
    static func date(_ text: String) -> Date? { Timestamp(rfc3339: text)?.date }

    static func rfc3339(_ date: Date) -> String { Timestamp(date: date).rfc3339 }

    /// Handler name → its state's name.
    static func states(_ entry: LedgerEntry?) -> [String: String] {
        (entry?.handlers ?? [:]).mapValues(\.status.rawValue)
    }
}
