import HTTPTypes
import Hummingbird
import KliqWebhooks
import Logging
import NIOCore

extension HTTPField.Name {
    /// `X-Kliq-Signature`.
    public static var kliqSignature: Self { .init(SignatureVerifier.headerName)! }
}

extension RouterMethods {
    /// Mounts the KLIQ webhook endpoint at `path` of an existing Hummingbird router or group.
    ///
    /// `POST path` verifies, deduplicates, persists and answers `200 {"status":"accepted"|"duplicate"}`,
    /// or a JSON error (`401`, `400`, `413`, `503`); other methods get `405`. The body limit is the
    /// receiver's `maxBodyBytes`: a larger `Content-Length` is refused before reading, and a body without
    /// one is cut off once it exceeds the limit.
    ///
    /// ```swift
    /// let router = Router()
    /// router.addKliqWebhook("/webhooks/kliq", receiver: receiver)
    /// let app = Application(router: router, services: [receiver])
    /// ```
    @discardableResult
    public func addKliqWebhook(_ path: RouterPath = "/webhooks/kliq", receiver: Receiver, maxInFlightBytes: Int? = nil) -> Self {
        let limit = receiver.configuration.maxBodyBytes
        let budget = maxInFlightBytes.map { BodyBudget(capacity: max(1, $0)) }
        self.post(path) { request, context -> Response in
            let started = ContinuousClock.now
            do throws(WebhookHTTPError) {
                let response = try await Self.deliver(request, logger: context.logger, receiver: receiver, limit: limit, budget: budget)
                DeliveryMetrics.record(outcome: response.outcome, since: started)
                return response.response
            } catch {
                DeliveryMetrics.record(outcome: error.code, since: started)
                throw error
            }
        }
        for method in [HTTPRequest.Method.get, .put, .delete, .patch, .head, .options] {
            self.on(path, method: method) { _, _ -> Response in
                throw WebhookHTTPError(status: .methodNotAllowed, code: "method_not_allowed", message: "use POST", headers: [.allow: "POST"])
            }
        }
        return self
    }

    /// Mounts `GET /healthz` (200 while the process runs) and `GET /readyz` (200 when the store can write
    /// and the server is not draining, else 503).
    @discardableResult
    public func addHealthChecks(readiness: Readiness) -> Self {
        self.get("/healthz") { _, _ -> Response in
            Self.json(.ok, [("status", JSONWriter.string("ok"))])
        }
        self.get("/readyz") { _, _ -> Response in
            if let problem = await readiness.problem() {
                throw WebhookHTTPError(status: .serviceUnavailable, code: "not_ready", message: problem)
            }
            return Self.json(.ok, [("status", JSONWriter.string("ready"))])
        }
        return self
    }

    private static func deliver(
        _ request: Request, logger: Logger, receiver: Receiver, limit: Int, budget: BodyBudget?
    ) async throws(WebhookHTTPError) -> (outcome: String, response: Response) {
        // Refusals that need no body come first, so a bad request costs no reading.
        do {
            try receiver.checkSignatureHeader(request.headers[.kliqSignature], logger: logger)
        } catch {
            throw WebhookHTTPError(error)
        }
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw Self.tooLarge("Content-Length \(declared) is over the limit of \(limit) bytes", logger)
        }
        // Memory for bodies being read at once is bounded: wait for room before reading.
        let declared = request.headers[.contentLength].flatMap { Int($0) } ?? limit
        let reserved = await budget?.reserve(declared)
        defer { if let reserved { budget?.release(reserved) } }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw Self.tooLarge("the body is over the limit of \(limit) bytes", logger)
        } catch {
            throw WebhookHTTPError(status: .badRequest, code: "bad_request", message: "the body could not be read: \(error)")
        }
        let delivery: Receiver.Delivery
        do {
            delivery = try await receiver.receive(body: Array(buffer.readableBytesView), signature: request.headers[.kliqSignature], logger: logger)
        } catch {
            throw WebhookHTTPError(error)
        }
        let body = JSONWriter.object([
            ("status", JSONWriter.string(delivery.outcome.rawValue)), ("eventId", JSONWriter.string(delivery.eventId)),
        ])
        let response = Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        return (delivery.outcome.rawValue, response)
    }

    /// A `413`, logged like every refusal (the receiver never sees the body).
    private static func tooLarge(_ message: String, _ logger: Logger) -> WebhookHTTPError {
        let error = WebhookError(.payloadTooLarge, message)
        logger.notice("delivery refused: \(message)", metadata: ["kliq.outcome": .string(error.code.rawValue)])
        return WebhookHTTPError(error)
    }

    static func json(_ status: HTTPResponse.Status, _ members: [(String, [UInt8])]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.object(members))))
    }
}
