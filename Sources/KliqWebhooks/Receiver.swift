#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization
import Tracing

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
        /// When set, an event whose signed envelope `timestamp` is older than this (or further than this
        /// in the future), or has none, is refused with `outside_replay_window` before it is stored. It is
        /// measured on the event's own time, which KLIQ keeps across retries, so make it at least as long
        /// as KLIQ keeps retrying. `nil` (the default): no check; deduplication by id, which lasts as long
        /// as `events/` is kept, is the replay protection.
        public var replayWindow: Duration?
        /// How many bytes of event bodies the dispatcher holds at once for running handlers. What waits
        /// beyond it stays in the store and is claimed as handlers finish, so a long handler outage
        /// under heavy intake does not grow memory by bodies. Events of one job still reach a handler in
        /// order. (One event larger than this still runs, alone.)
        public var maxQueuedBytes: Int
        /// How long a claimed event's deliveries belong to this receiver before another may take them
        /// over (renewed at a third of it while the handlers run). Matters where several receivers
        /// share one store.
        public var lease: Duration
        /// Where spans go: `kliq.receive` (with `kliq.verify` and `kliq.store` inside it) for each delivery,
        /// `kliq.handler` for each handler attempt. The tracer the process bootstrapped by default — a
        /// no-op unless the app bootstraps one (e.g. swift-otel's).
        public var tracer: any Tracer = InstrumentationSystem.tracer

        public init(maxBodyBytes: Int = 4 * 1024 * 1024, maxConcurrentDispatches: Int = 16, retry: RetryPolicy = .init(),
                    shutdownGracePeriod: Duration = .seconds(30), replayWindow: Duration? = nil,
                    maxQueuedBytes: Int = 32 * 1024 * 1024, lease: Duration = .seconds(30)) {
            self.lease = lease
            self.maxBodyBytes = maxBodyBytes
            self.maxConcurrentDispatches = maxConcurrentDispatches
            self.retry = retry
            self.shutdownGracePeriod = shutdownGracePeriod
            self.replayWindow = replayWindow
            self.maxQueuedBytes = maxQueuedBytes
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
    private let currentVerifier: Mutex<SignatureVerifier>
    let logger: Logger
    let handlers = HandlerRegistry()
    let waiters = JobWaiters()
    let dispatch = DispatchState()
    let tally = IntakeTally()
    /// This receiver's name on the leases it takes: host, process and a random part.
    let owner: String

    /// - Parameters:
    ///   - verifier: checks signatures; holds the secrets.
    ///   - store: where events and job states are kept.
    ///   - configuration: limits.
    ///   - logger: logs one line per delivery with `kliq.event_id`, `kliq.event_type`, `kliq.outcome`.
    public init(verifier: SignatureVerifier, store: any EventStore, configuration: Configuration = .init(), logger: Logger) {
        self.currentVerifier = Mutex(verifier)
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.owner = "\(Receiver.hostName):\(getpid()):\(UInt32.random(in: .min ... .max))"
    }

    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, 255) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// What this receiver answered since it started (accepted, duplicates, refusals by code).
    public var intake: IntakeCounts { self.tally.counts }

    /// The verifier deliveries are checked with now.
    public var verifier: SignatureVerifier { self.currentVerifier.withLock { $0 } }

    /// Checks later deliveries with `verifier` (e.g. after a secret rotation): deliveries already being
    /// verified finish with the old one. `kliq-webhooks serve` calls this on SIGHUP with `--secret-file`.
    public func replaceVerifier(_ verifier: SignatureVerifier) {
        self.currentVerifier.withLock { $0 = verifier }
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
    ///   - logger: the logger for this delivery's log line, e.g. one carrying a request id and client
    ///     address; the receiver's own logger when `nil`.
    /// - Returns: `.accepted` once the event is durably stored (handlers then run in ``run()``), or
    ///   `.duplicate` when it was stored before.
    /// - Throws: ``WebhookError``: `invalid_signature` (nothing stored), `payload_too_large`,
    ///   `malformed_payload` (the body is kept in quarantine), or `storage_unavailable` (retry later).
    public func receive(body: [UInt8], signature: String?, logger: Logger? = nil) async throws(WebhookError) -> Delivery {
        do {
            return try await self.configuration.tracer.withSpan("kliq.receive") { span in
                do throws(WebhookError) {
                    let delivery = try await self.receive(body: body, signature: signature, logger: logger, span: span)
                    span.attributes["kliq.outcome"] = delivery.outcome.rawValue
                    return delivery
                } catch {
                    span.attributes["kliq.outcome"] = error.code.rawValue
                    span.setStatus(SpanStatus(code: .error, message: error.code.rawValue))
                    throw error
                }
            }
        } catch let error as WebhookError {
            throw error
        } catch {
            throw Self.storageError(error, doing: "receive a delivery")
        }
    }

    private func receive(body: [UInt8], signature: String?, logger: Logger?, span: any Span) async throws(WebhookError) -> Delivery {
        let started = ContinuousClock.now
        let logger = logger ?? self.logger
        // What this delivery adds to the log line, passed with it rather than set on the logger key by
        // key: a handler such as swift-log's StreamLogHandler re-renders all of its metadata on every
        // set, which cost ~7% of the server's CPU per delivery even when nothing was logged.
        var metadata: Logger.Metadata = [:]
        guard body.count <= self.configuration.maxBodyBytes else {
            throw self.refuse(WebhookError(.payloadTooLarge, "body is larger than \(self.configuration.maxBodyBytes) bytes"), logger, metadata, since: started)
        }
        let match: SignatureVerifier.Match
        do {
            match = try self.configuration.tracer.withSpan("kliq.verify") { _ in try self.verifier.verify(signature: signature, body: body) }
        } catch let error as WebhookError {
            throw self.refuse(error, logger, metadata, since: started)
        } catch {
            throw self.refuse(WebhookError(.invalidSignature, "\(error)"), logger, metadata, since: started)
        }
        metadata["kliq.secret_index"] = "\(match.secretIndex)"
        var event: Event
        do {
            event = try Event(decoding: body)
            event.signature = signature
        } catch {
            do {
                try await self.store.quarantine(body: body, reason: error.message)
            } catch {
                throw self.refuse(Self.storageError(error, doing: "quarantine a malformed body"), logger, metadata, since: started)
            }
            throw self.refuse(error, logger, metadata, since: started)
        }
        metadata["kliq.event_id"] = .wire(event.id)
        metadata["kliq.event_type"] = .wire(event.type.rawValue)
        if let jobId = event.jobId { metadata["kliq.job_id"] = .wire(jobId) }
        span.attributes["kliq.event_id"] = event.id
        span.attributes["kliq.event_type"] = event.type.rawValue
        if let jobId = event.jobId { span.attributes["kliq.job_id"] = jobId }
        if let window = self.configuration.replayWindow, let problem = Self.replayProblem(event, window: window, now: Timestamp.now()) {
            throw self.refuse(WebhookError(.outsideReplayWindow, problem), logger, metadata, since: started)
        }

        let names = self.handlers.names(for: event.type)
        let outcome: Outcome
        let writeStarted = ContinuousClock.now
        do {
            outcome = try await self.configuration.tracer.withSpan("kliq.store") { _ in try await self.store.accept(event, handlers: names).outcome }
        } catch {
            throw self.refuse(Self.storageError(error, doing: "store the event"), logger, metadata, since: started)
        }
        ReceiverMetrics.storeWrite(since: writeStarted)
        ReceiverMetrics.event(event.type, outcome: outcome)
        self.tally.record(outcome)
        if logger.logLevel <= .info {
            metadata["kliq.outcome"] = .string(outcome.rawValue)
            metadata["kliq.latency_ms"] = Self.milliseconds(since: started)
            logger.info("delivery \(outcome.rawValue)", metadata: metadata)
        }
        if outcome == .accepted, !names.isEmpty { self.dispatch.wake() }
        await self.notifyWaiters(after: event)
        return Delivery(outcome: outcome, event: event, secretIndex: match.secretIndex)
    }

    /// Why `event` is outside the replay window around `now`, or `nil` when it is inside.
    static func replayProblem(_ event: Event, window: Duration, now: Timestamp) -> String? {
        guard let instant = event.instant else {
            return event.timestamp == nil
                ? "the event has no timestamp, and the replay window needs one"
                : "the event's timestamp is not an RFC 3339 time, and the replay window needs one"
        }
        let (windowSeconds, _) = window.components
        let age = now.seconds - instant.seconds
        if age > windowSeconds {
            return "the event's timestamp \(instant.rfc3339) is \(age) s old, more than the replay window of \(windowSeconds) s"
        }
        if -age > windowSeconds {
            return "the event's timestamp \(instant.rfc3339) is \(-age) s in the future, more than the replay window of \(windowSeconds) s"
        }
        return nil
    }

    /// Refuses a delivery whose signature header is missing or malformed, before its body is read
    /// (logged like ``receive(body:signature:logger:)`` logs a refusal). A header that passes still has
    /// to match the body in `receive`.
    public func checkSignatureHeader(_ signature: String?, logger: Logger? = nil) throws(WebhookError) {
        let started = ContinuousClock.now
        do {
            try SignatureVerifier.decodeHeader(signature)
        } catch {
            throw self.refuse(error, logger ?? self.logger, [:], since: started)
        }
    }

    private func refuse(_ error: WebhookError, _ logger: Logger, _ metadata: Logger.Metadata, since started: ContinuousClock.Instant) -> WebhookError {
        self.tally.refused(error.code)
        let level: Logger.Level = error.code == .storageUnavailable ? .error : .notice
        var metadata = metadata
        metadata["kliq.outcome"] = .string(error.code.rawValue)
        metadata["kliq.latency_ms"] = Self.milliseconds(since: started)
        // A signature that does not verify is mostly a wrong secret or a body changed on the way:
        // `kliq-webhooks verify` tells which, from the body and the header.
        let hint = error.code == .invalidSignature ? " (to see why: kliq-webhooks verify BODY_FILE --signature HEADER)" : ""
        logger.log(level: level, "delivery refused: \(error.message)\(hint)", metadata: metadata)
        return error
    }

    /// Milliseconds since `start`, with three decimals, as a log value.
    static func milliseconds(since start: ContinuousClock.Instant) -> Logger.MetadataValue {
        let micros = (ContinuousClock.now - start).nanoseconds / 1000
        let fraction = String(micros % 1000)
        return .string("\(micros / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)")
    }

    static func storageError(_ error: any Error, doing what: String) -> WebhookError {
        if let error = error as? WebhookError, error.code == .storageUnavailable { return error }
        return WebhookError(.storageUnavailable, "could not \(what): \(error)", underlying: error)
    }
}
