import Logging
import ServiceLifecycle
import Synchronization

/// Receives KLIQ webhook deliveries: verify → decode → claim (dedup) → persist → dispatch.
///
/// A `Receiver` has no HTTP dependency: an HTTP layer (such as `KliqWebhooksHummingbird`) hands it the
/// raw body and the `X-Kliq-Signature` header and maps the result to a status. It is a `Service`:
/// handlers run inside its ``run()``, so run it — once — in your `ServiceGroup` (or `Application(services:)`).
///
/// ```swift
/// let receiver = Receiver(
///     verifier: try SignatureVerifier(secrets: [Secret("whsec_…")]),
///     store: try FileEventStore(directory: "./kliq-data"),
///     logger: Logger(label: "kliq")
/// )
/// receiver.on(.cvJobCompleted) { event in
///     let job = try event.cvJob()
///     if (job.result?.summary?.complianceScore ?? 1) < 0.8 { try await alerts.send(job) }
/// }
/// receiver.onError { failure in logger.error("handler failed", metadata: failure.metadata) }
/// ```
public final class Receiver: Service, Sendable {
    /// Settings of a receiver.
    public struct Configuration: Sendable {
        /// The largest body accepted, in bytes (`--max-body-bytes`).
        public var maxBodyBytes: Int
        /// How many jobs' events are dispatched to handlers at the same time (events of one job go in order).
        public var maxConcurrentDispatches: Int
        /// How failed handlers are retried before their delivery is dead.
        public var retry: RetryPolicy
        /// On graceful shutdown, how long running handlers may take to finish before they are cancelled
        /// (what is unfinished then stays pending, for the next start).
        public var shutdownGracePeriod: Duration

        public init(maxBodyBytes: Int = 4 * 1024 * 1024, maxConcurrentDispatches: Int = 16, retry: RetryPolicy = .init(),
                    shutdownGracePeriod: Duration = .seconds(30)) {
            self.maxBodyBytes = maxBodyBytes
            self.maxConcurrentDispatches = maxConcurrentDispatches
            self.retry = retry
            self.shutdownGracePeriod = shutdownGracePeriod
        }
    }

    /// The result of a delivery that passed verification and was stored or recognised.
    public struct Delivery: Sendable {
        public var outcome: Outcome
        public var event: Event
        /// Which configured secret the signature matched.
        public var secretIndex: Int
        public var eventId: String { self.event.id }
    }

    public let configuration: Configuration
    public let store: any EventStore
    let verifier: SignatureVerifier
    let logger: Logger
    let handlers = HandlerRegistry()
    let waiters = JobWaiters()
    let scheduler: Scheduler

    /// - Parameters:
    ///   - verifier: checks signatures; holds the secrets.
    ///   - store: where events and job states are kept.
    ///   - configuration: limits.
    ///   - logger: logs one line per delivery with `kliq.event_id`, `kliq.event_type`, `kliq.outcome`.
    public init(verifier: SignatureVerifier, store: any EventStore, configuration: Configuration = .init(), logger: Logger) {
        self.verifier = verifier
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.scheduler = Scheduler(limit: configuration.maxConcurrentDispatches)
    }

    /// Runs `handler` for every accepted event of `type`, after the event is stored; failures are retried.
    /// - Parameters:
    ///   - type: the event type.
    ///   - name: the handler's name in the ledger. Give one that stays the same across releases: unfinished
    ///     deliveries are matched to handlers by name after a restart. Defaults to `on(<type>)#<n>`.
    ///   - handler: the work; it gets the event and a ``HandlerContext`` with the attempt number.
    public func on(_ type: EventType, name: String? = nil, _ handler: @escaping @Sendable (Event, HandlerContext) async throws -> Void) {
        self.handlers.add([type], name: name, handler)
    }

    /// Runs `handler` for every accepted event of `type`, after the event is stored; failures are retried.
    public func on(_ type: EventType, name: String? = nil, _ handler: @escaping @Sendable (Event) async throws -> Void) {
        self.handlers.add([type], name: name) { event, _ in try await handler(event) }
    }

    /// Runs `handler`, under one name, for every accepted event of any of `types`.
    public func on(_ types: Set<EventType>, name: String? = nil, _ handler: @escaping @Sendable (Event, HandlerContext) async throws -> Void) {
        self.handlers.add(types, name: name, handler)
    }

    /// Runs `handler` for every accepted event, whatever its type (also unknown types). Named `onAny#<n>` by default.
    public func onAny(name: String? = nil, _ handler: @escaping @Sendable (Event, HandlerContext) async throws -> Void) {
        self.handlers.add(nil, name: name, handler)
    }

    /// Runs `handler` for every accepted event, whatever its type (also unknown types).
    public func onAny(name: String? = nil, _ handler: @escaping @Sendable (Event) async throws -> Void) {
        self.handlers.add(nil, name: name) { event, _ in try await handler(event) }
    }

    /// Runs `handler` whenever another handler throws. Without one, failures are logged.
    public func onError(_ handler: @escaping @Sendable (HandlerFailure) async -> Void) {
        self.handlers.addError(handler)
    }

    /// Handles one delivery.
    /// - Parameters:
    ///   - body: the raw request body, exactly as received.
    ///   - signature: the `X-Kliq-Signature` header, or `nil` when absent.
    /// - Returns: `.accepted` once the event is durably stored (handlers then run in ``run()``), or
    ///   `.duplicate` when it was stored before.
    /// - Throws: ``WebhookError``: `invalid_signature` (nothing stored), `payload_too_large`,
    ///   `malformed_payload` (the body is kept in quarantine), or `storage_unavailable` (retry later).
    public func receive(body: [UInt8], signature: String?) async throws(WebhookError) -> Delivery {
        var logger = self.logger
        guard body.count <= self.configuration.maxBodyBytes else {
            throw self.refuse(WebhookError(.payloadTooLarge, "body is larger than \(self.configuration.maxBodyBytes) bytes"), logger)
        }
        let match: SignatureVerifier.Match
        do {
            match = try self.verifier.verify(signature: signature, body: body)
        } catch {
            throw self.refuse(error, logger)
        }
        logger[metadataKey: "kliq.secret_index"] = "\(match.secretIndex)"
        var event: Event
        do {
            event = try Event(decoding: body)
            event.signature = signature
        } catch {
            do {
                try await self.store.quarantine(body: body, reason: error.message)
            } catch {
                throw self.refuse(Self.storageError(error, doing: "quarantine a malformed body"), logger)
            }
            throw self.refuse(error, logger)
        }
        logger[metadataKey: "kliq.event_id"] = .wire(event.id)
        logger[metadataKey: "kliq.event_type"] = .wire(event.type.rawValue)
        if let jobId = event.jobId { logger[metadataKey: "kliq.job_id"] = .wire(jobId) }

        let names = self.handlers.names(for: event.type)
        let entry = names.isEmpty ? nil : LedgerEntry(event: event, handlers: names, acceptedAt: Timestamp.now().rfc3339)
        let outcome: Outcome
        do {
            outcome = try await self.store.commit(event, ledger: entry)
        } catch {
            throw self.refuse(Self.storageError(error, doing: "store the event"), logger)
        }
        logger.info("delivery \(outcome.rawValue)", metadata: ["kliq.outcome": .string(outcome.rawValue)])
        if outcome == .accepted, let entry { self.scheduler.submit(.init(event: event, entry: entry)) }
        await self.notifyWaiters(after: event)
        return Delivery(outcome: outcome, event: event, secretIndex: match.secretIndex)
    }

    private func refuse(_ error: WebhookError, _ logger: Logger) -> WebhookError {
        let level: Logger.Level = error.code == .storageUnavailable ? .error : .notice
        logger.log(level: level, "delivery refused: \(error.message)", metadata: ["kliq.outcome": .string(error.code.rawValue)])
        return error
    }

    static func storageError(_ error: any Error, doing what: String) -> WebhookError {
        if let error = error as? WebhookError, error.code == .storageUnavailable { return error }
        return WebhookError(.storageUnavailable, "could not \(what): \(error)", underlying: error)
    }
}
