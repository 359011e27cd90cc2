import Foundation
import HTTPTypes
import Hummingbird
import KliqWebhooks
import Logging
import NIOCore
import Synchronization

/// A stand-in for KLIQ's CV Jobs API on a loopback port, for testing polling paths: your own, or the
/// polling fallback's. Jobs are whatever you set; failures (`429` with `Retry-After`, `5xx`, `401`) and
/// latency are programmable; every request is recorded.
///
/// It serves `POST /v1/tenants/{t}/cv/jobs` (a new `queued` job), `GET /v1/tenants/{t}/cv/jobs/{id}`
/// and `GET /v1/tenants/{t}/cv/jobs?cursor=&limit=` (`{"data": […], "next": …}`), and checks
/// `Authorization: Bearer <apiKey>` (else `401`).
///
/// ```swift
/// let api = try await StubKliqAPI.start(apiKey: "key_test")
/// defer { api.stop() }
/// api.setJob("job_1", status: .completed, completedAt: "2026-04-28T12:00:00Z")
/// let client = KliqAPIClient(configuration: .init(baseURL: api.baseURL, apiKey: APIKey("key_test"), tenantId: "t_1"), logger: logger)
/// ```
public final class StubKliqAPI: Sendable {
    /// One request the stub answered.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var authorization: String?
        /// When it arrived.
        public var at: ContinuousClock.Instant
        /// The status it was answered with.
        public var status: Int
    }

    /// A failure to answer the next matching request(s) with.
    public struct Failure: Sendable {
        public var status: Int
        public var retryAfter: String?
        public var times: Int
        /// Only for this job id (else any request).
        public var jobId: String?

        public init(status: Int, retryAfter: String? = nil, times: Int = 1, jobId: String? = nil) {
            self.status = status
            self.retryAfter = retryAfter
            self.times = times
            self.jobId = jobId
        }
    }

    struct State {
        var jobs: [String: [UInt8]] = [:]
        var failures: [Failure] = []
        var requests: [Request] = []
        var latency: Duration = .zero
        var nextId = 1
    }

    /// `http://127.0.0.1:PORT/v1`: the client's base URL.
    public let baseURL: String
    /// The key requests must carry.
    public let apiKey: String
    fileprivate let handler: Handler
    private let task: Mutex<Task<Void, Never>?>

    fileprivate init(baseURL: String, apiKey: String, handler: Handler, task: Task<Void, Never>?) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.handler = handler
        self.task = Mutex(task)
    }

    /// Starts a stub on a free loopback port.
    public static func start(apiKey: String = "key_test") async throws -> StubKliqAPI {
        let router = Router()
        let handler = Handler(apiKey: apiKey)
        router.on("/v1/tenants/:tenant/cv/jobs", method: .post) { request, context in try await handler.answer(request, context, jobId: nil) }
        router.on("/v1/tenants/:tenant/cv/jobs", method: .get) { request, context in try await handler.answer(request, context, jobId: nil) }
        router.on("/v1/tenants/:tenant/cv/jobs/:id", method: .get) { request, context in
            try await handler.answer(request, context, jobId: context.parameters.get("id") ?? "")
        }
        let bound = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { bound.continuation.yield($0.localAddress?.port ?? 0) },
            logger: Logger(label: "stub-kliq-api") { _ in SwiftLogNoOpLogHandler() }
        )
        let task = Task<Void, Never> { try? await app.runService() }
        var iterator = bound.stream.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw WebhookError(.invalidConfiguration, "the stub KLIQ API could not bind a port")
        }
        return StubKliqAPI(baseURL: "http://127.0.0.1:\(port)/v1", apiKey: apiKey, handler: handler, task: task)
    }

    /// Stops listening.
    public func stop() { self.task.withLock { $0?.cancel() } }

    deinit { self.task.withLock { $0?.cancel() } }

    /// Sets job `id` to `status`, with a result of `detections` boxes (completed) or an error (failed).
    public func setJob(_ id: String, status: JobStatus, model: String = "shelf-detection-v2", observationId: String = "obs_1",
                       detections: Int = 1, completedAt: String? = nil) {
        var members: [(String, [UInt8])] = [
            ("id", JSONWriter.string(id)), ("status", JSONWriter.string(status.rawValue)),
            ("model", JSONWriter.string(model)), ("observationId", JSONWriter.string(observationId)),
        ]
        if status == .completed {
            let boxes = (0..<detections).map { n in
                #"{"objectName":"Item \#(n)","confidence":0.9,"boundingBox":{"x":\#(n * 10),"y":5,"width":8,"height":20},"attributes":{}}"#
            }.joined(separator: ",")
            members.append(("result", Array(#"{"detections":[\#(boxes)],"summary":{"totalProducts":\#(detections)}}"#.utf8)))
        }
        if status == .failed { members.append(("error", Array(#"{"code":"image_unreadable","message":"the image could not be read"}"#.utf8))) }
        if let completedAt { members.append(("completedAt", JSONWriter.string(completedAt))) }
        self.setJob(id, document: Array(JSONWriter.object(members).dropLast()))
    }

    /// Sets job `id` to an API document of your own, byte for byte.
    public func setJob(_ id: String, document: [UInt8]) { self.handler.state.withLock { $0.jobs[id] = document } }

    /// Forgets job `id`: it answers `404`.
    public func removeJob(_ id: String) { self.handler.state.withLock { _ = $0.jobs.removeValue(forKey: id) } }

    /// Answers the next matching request(s) with `failure` instead.
    public func fail(_ failure: Failure) { self.handler.state.withLock { $0.failures.append(failure) } }

    /// Waits this long before each answer.
    public func setLatency(_ latency: Duration) { self.handler.state.withLock { $0.latency = latency } }

    /// Every request so far, in order.
    public var requests: [Request] { self.handler.state.withLock { $0.requests } }

    /// The `GET` requests for job `id` so far.
    public func reads(of id: String) -> Int {
        self.handler.state.withLock { $0.requests.filter { $0.method == "GET" && $0.path.hasSuffix("/cv/jobs/\(id)") }.count }
    }
}

/// The stub's routes.
private final class Handler: Sendable {
    let state = Mutex(StubKliqAPI.State())
    let apiKey: String

    init(apiKey: String) { self.apiKey = apiKey }

    func answer(_ request: Request, _ context: BasicRequestContext, jobId: String?) async throws -> Response {
        let arrived = ContinuousClock.now
        let authorization = request.headers[.authorization]
        let latency = self.state.withLock { $0.latency }
        if latency > .zero { try await Task.sleep(for: latency) }
        let (status, body, retryAfter): (Int, [UInt8], String?) = try await {
            if authorization != "Bearer \(self.apiKey)" { return (401, Array(#"{"message":"invalid API key"}"#.utf8), nil) }
            let failure = self.state.withLock { state -> StubKliqAPI.Failure? in
                guard let index = state.failures.firstIndex(where: { $0.jobId == nil || $0.jobId == jobId }) else { return nil }
                let failure = state.failures[index]
                state.failures[index].times -= 1
                if state.failures[index].times <= 0 { state.failures.remove(at: index) }
                return failure
            }
            if let failure { return (failure.status, Array(#"{"message":"stub failure"}"#.utf8), failure.retryAfter) }
            if let jobId {
                guard let document = self.state.withLock({ $0.jobs[jobId] }) else { return (404, Array(#"{"message":"job not found"}"#.utf8), nil) }
                return (200, document, nil)
            }
            if request.method == .post {
                let body = try await request.body.collect(upTo: 1 << 20)
                let json = try? JSONValue(parsing: Array(buffer: body))
                guard let observation = json?["observationId"]?.stringValue, let model = json?["model"]?.stringValue else {
                    return (400, Array(#"{"message":"observationId and model are required"}"#.utf8), nil)
                }
                let id = self.state.withLock { state -> String in
                    defer { state.nextId += 1 }
                    return "job_stub\(state.nextId)"
                }
                let document = Array(JSONWriter.object([
                    ("id", JSONWriter.string(id)), ("status", JSONWriter.string("queued")),
                    ("model", JSONWriter.string(model)), ("observationId", JSONWriter.string(observation)),
                ]).dropLast())
                self.state.withLock { $0.jobs[id] = document }
                return (201, document, nil)
            }
            return (200, self.list(request.uri.queryParameters.get("cursor"), limit: request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 100), nil)
        }()
        self.state.withLock {
            $0.requests.append(.init(method: request.method.rawValue, path: request.uri.path, authorization: authorization, at: arrived, status: status))
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = retryAfter }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func list(_ cursor: String?, limit: Int) -> [UInt8] {
        let jobs = self.state.withLock { $0.jobs }.sorted { $0.key < $1.key }.filter { id, _ in cursor.map { id > $0 } ?? true }
        let page = jobs.prefix(max(1, limit))
        let items = page.map { String(decoding: $0.value, as: UTF8.self) }.joined(separator: ",")
        let next = jobs.count > page.count ? String(decoding: JSONWriter.string(page.last!.key), as: UTF8.self) : "null"
        return Array(#"{"data":[\#(items)],"next":\#(next)}"#.utf8)
    }
}
