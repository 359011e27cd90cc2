import KliqWebhooks
import Logging
import ServiceLifecycle
import Synchronization
import Vapor

extension RoutesBuilder {
    /// Mounts the KLIQ webhook endpoint at `path` of a Vapor app or route group: the same contract as
    /// `kliq-webhooks serve` and the Hummingbird route.
    ///
    /// `POST path` checks the `X-Kliq-Signature` header's form before reading the body, refuses a body
    /// over the receiver's `maxBodyBytes` (`413`), hands the raw bytes to the receiver — verified before
    /// parsing, deduplicated, durably stored — and answers `200 {"status":"accepted"|"duplicate","eventId":…}`,
    /// or `{"error": CODE, "message": …}` with `401`, `400`, `413` or `503`.
    ///
    /// ```swift
    /// let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(secret)]),
    ///                         store: try FileEventStore(directory: "./kliq-data"), logger: app.logger)
    /// app.kliqWebhook("webhooks", "kliq", receiver: receiver)
    /// app.lifecycle.use(ReceiverLifecycle(receiver))   // runs its handlers while the app runs
    /// ```
    @discardableResult
    public func kliqWebhook(_ path: PathComponent..., receiver: Receiver) -> Route {
        let limit = receiver.configuration.maxBodyBytes
        return self.on(.POST, path, body: .stream) { request async throws -> Response in
            let signature = request.headers.first(name: SignatureVerifier.headerName)
            do {
                try receiver.checkSignatureHeader(signature, logger: request.logger)
                if let declared = request.headers.first(name: .contentLength).flatMap(Int.init), declared > limit {
                    throw WebhookError(.payloadTooLarge, "Content-Length \(declared) is over the limit of \(limit) bytes")
                }
                let body: ByteBuffer
                do {
                    body = try await request.body.collect(max: limit).get() ?? ByteBuffer()
                } catch let error as Abort where error.status == .payloadTooLarge {
                    throw WebhookError(.payloadTooLarge, "the body is over the limit of \(limit) bytes")
                }
                let delivery = try await receiver.receive(body: Array(body.readableBytesView), signature: signature, logger: request.logger)
                return Self.json(.ok, ["status": delivery.outcome.rawValue, "eventId": delivery.eventId])
            } catch let error as WebhookError {
                if error.code == .payloadTooLarge {
                    request.logger.notice("delivery refused: \(error.message)", metadata: ["kliq.outcome": .string(error.code.rawValue)])
                }
                return Self.json(Self.status(for: error.code), ["error": error.code.rawValue, "message": error.message])
            }
        }
    }

    /// The HTTP status for a refusal, as every kliq-webhooks front end answers it.
    static func status(for code: WebhookError.Code) -> HTTPResponseStatus {
        switch code {
        case .invalidSignature: .unauthorized
        case .payloadTooLarge: .payloadTooLarge
        case .storageUnavailable: .serviceUnavailable
        default: .badRequest
        }
    }

    static func json(_ status: HTTPResponseStatus, _ members: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: members, options: [.sortedKeys])) ?? Data()
        var headers = HTTPHeaders()
        headers.contentType = .json
        if status == .serviceUnavailable { headers.replaceOrAdd(name: .retryAfter, value: "5") }
        return Response(status: status, headers: headers, body: .init(data: data))
    }
}

/// Runs a ``Receiver`` — its handlers, retries and waiters — for as long as a Vapor app runs: started
/// when the app boots, and on shutdown given its grace period to finish running handlers (what does
/// not finish stays pending for the next start).
///
/// ```swift
/// app.lifecycle.use(ReceiverLifecycle(receiver))
/// ```
public final class ReceiverLifecycle: LifecycleHandler, Sendable {
    private let group: ServiceGroup
    private let task = Mutex<Task<Void, Never>?>(nil)

    public init(_ receiver: Receiver, logger: Logger = Logger(label: "kliq-webhooks")) {
        self.group = ServiceGroup(configuration: .init(services: [receiver], logger: logger))
    }

    /// Starts the receiver (called by both Vapor's `boot()` and `asyncBoot()`).
    public func didBoot(_ application: Application) throws {
        let group = self.group
        self.task.withLock { task in
            if task == nil { task = Task { try? await group.run() } }
        }
    }

    /// Lets running handlers finish (within the receiver's grace period), then returns.
    public func shutdownAsync(_ application: Application) async {
        await self.group.triggerGracefulShutdown()
        await self.task.withLock { $0 }?.value
    }

    /// Starts the graceful shutdown without waiting for it (Vapor's synchronous `shutdown()`).
    public func shutdown(_ application: Application) {
        let group = self.group
        Task { await group.triggerGracefulShutdown() }
    }
}
