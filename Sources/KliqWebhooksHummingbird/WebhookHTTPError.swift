import HTTPTypes
import Hummingbird
import KliqWebhooks
import Logging
import NIOCore

/// An HTTP error answer: status, stable `error` code and human `message`, sent as a JSON body.
public struct WebhookHTTPError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields

    public init(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The answer for a core error. This is the one place where error codes map to HTTP statuses.
    public init(_ error: WebhookError) {
        var headers: HTTPFields = [:]
        let status: HTTPResponse.Status
        switch error.code {
        case .invalidSignature: status = .unauthorized
        case .malformedPayload, .outsideReplayWindow: status = .badRequest
        case .payloadTooLarge: status = .contentTooLarge
        case .storageUnavailable:
            status = .serviceUnavailable
            headers[.retryAfter] = "5"
        case .timeout: status = .gatewayTimeout
        default: status = .internalServerError
        }
        self.init(status: status, code: error.code.rawValue, message: error.message, headers: headers)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        let body = JSONWriter.object([("error", JSONWriter.string(self.code)), ("message", JSONWriter.string(self.message))])
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Turns every other error a route or the router throws (404s, unexpected failures) into the same JSON
/// error shape, so every error body has a stable `error` code and a `message`.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as WebhookHTTPError {
            throw error
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .methodNotAllowed: code = "method_not_allowed"
            case .contentTooLarge: code = "payload_too_large"
            default: code = "http_\(error.status.code)"
            }
            let message = error.status == .notFound ? "nothing here: \(request.method) \(request.uri.path)" : (error.body ?? error.status.reasonPhrase)
            throw WebhookHTTPError(status: error.status, code: code, message: message, headers: error.headers)
        } catch is NIOTooManyBytesError {
            throw WebhookHTTPError(status: .contentTooLarge, code: "payload_too_large", message: "the body is too large")
        } catch {
            context.logger.error("unexpected error", metadata: ["kliq.error": "\(error)"])
            throw WebhookHTTPError(status: .internalServerError, code: "internal_error", message: "internal error")
        }
    }
}
