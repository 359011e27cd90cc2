import AsyncHTTPClient
import Foundation
import KliqWebhooks
import Logging
import NIOCore
import NIOHTTP1

/// A KLIQ API key. It never prints itself: `description` is redacted.
public struct APIKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    package let value: String
    /// A key from its text, e.g. the value of `KLIQ_API_KEY` (surrounding whitespace dropped).
    public init(_ value: String) { self.value = value.trimmingCharacters(in: .whitespacesAndNewlines) }
    public var description: String { "APIKey(redacted)" }
    public var debugDescription: String { "APIKey(redacted)" }
}

/// A CV job as KLIQ's API returns it: `{"id", "status", "model", "observationId", "result" | "error", …}`.
public struct APIJob: Sendable {
    public var id: String
    public var status: JobStatus
    /// The API's document, byte for byte (``PolledJob`` builds the poll event from it).
    public var raw: [UInt8]

    /// Reads an API job document. - Throws: ``KliqAPIError`` (`bad_response`) when it is not one.
    public init(raw: [UInt8]) throws(KliqAPIError) {
        guard let json = try? JSONValue(parsing: raw), let id = json["id"]?.stringValue, let status = json["status"]?.stringValue else {
            throw KliqAPIError(.badResponse, "the API's answer is not a job (a JSON object with string \"id\" and \"status\")")
        }
        self.id = id
        self.status = JobStatus(status)
        self.raw = raw
    }
}

/// One page of ``KliqAPIClient/jobs(cursor:limit:)``.
public struct APIJobPage: Sendable {
    public var jobs: [APIJob]
    /// The cursor of the next page; `nil` after the last one.
    public var next: String?
}

/// A small client of KLIQ's CV Jobs API on AsyncHTTPClient: start a job, read one, list them.
///
/// Like KLIQ's SDKs it sends the key as `Authorization: Bearer KEY` and gives each request 30 s. It
/// retries timeouts, unreachable hosts and `5xx` answers with exponential backoff, and obeys
/// `Retry-After` on `429`/`503` by pausing *every* request of this client for that long. With
/// ``Configuration/requestsPerSecond`` at most that many requests start in any one-second window.
/// The key never appears in a log line or an error.
///
/// ```swift
/// let kliq = KliqAPIClient(configuration: .init(apiKey: APIKey(key), tenantId: "t_xyz789"), logger: logger)
/// let job = try await kliq.startJob(observationId: "obs_abc123", model: "shelf-detection-v2")
/// ```
public struct KliqAPIClient: Sendable {
    /// Where and how the client talks to the API.
    public struct Configuration: Sendable {
        /// The API's base URL, up to and including the version: `https://api.kliqpulse.com/v1`.
        public var baseURL: String
        public var apiKey: APIKey
        public var tenantId: String
        /// How long one attempt may take.
        public var timeout: Duration
        /// Attempts of one request, the first included.
        public var maxAttempts: Int
        /// The wait before the second attempt; it doubles for each further one.
        public var backoff: Duration
        /// At most this many requests start in any one-second window; `nil`: no limit.
        public var requestsPerSecond: Int?

        public static let defaultBaseURL = "https://api.kliqpulse.com/v1"

        public init(baseURL: String = Self.defaultBaseURL, apiKey: APIKey, tenantId: String, timeout: Duration = .seconds(30),
                    maxAttempts: Int = 3, backoff: Duration = .milliseconds(500), requestsPerSecond: Int? = nil) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.apiKey = apiKey
            self.tenantId = tenantId
            self.timeout = timeout
            self.maxAttempts = max(1, maxAttempts)
            self.backoff = backoff
            self.requestsPerSecond = requestsPerSecond
        }
    }

    public let configuration: Configuration
    let http: HTTPClient
    let pacer: RequestPacer
    let logger: Logger

    /// - Parameters:
    ///   - httpClient: the client to send with (the shared one by default).
    public init(configuration: Configuration, httpClient: HTTPClient = .shared, logger: Logger) {
        self.configuration = configuration
        self.http = httpClient
        self.pacer = RequestPacer(rate: configuration.requestsPerSecond)
        self.logger = logger
    }

    /// `GET /tenants/{t}/cv/jobs/{id}`. - Throws: ``KliqAPIError``.
    public func job(id: String) async throws(KliqAPIError) -> APIJob {
        try APIJob(raw: try await self.send(.GET, "/cv/jobs/\(Self.escape(id))", body: nil, what: "read job \(id)"))
    }

    /// `POST /tenants/{t}/cv/jobs` with `observationId` and `model`: the new job (`queued`). - Throws: ``KliqAPIError``.
    public func startJob(observationId: String, model: String) async throws(KliqAPIError) -> APIJob {
        let body = JSONWriter.object([("observationId", JSONWriter.string(observationId)), ("model", JSONWriter.string(model))])
        return try APIJob(raw: try await self.send(.POST, "/cv/jobs", body: body, what: "start a job"))
    }

    /// `GET /tenants/{t}/cv/jobs?cursor=&limit=`: one page. Accepts `{"data"|"items"|"jobs": […], "next"|"nextCursor": …}`
    /// or a bare array. - Throws: ``KliqAPIError``.
    public func jobs(cursor: String? = nil, limit: Int = 100) async throws(KliqAPIError) -> APIJobPage {
        var path = "/cv/jobs?limit=\(limit)"
        if let cursor { path += "&cursor=\(Self.escape(cursor))" }
        let bytes = try await self.send(.GET, path, body: nil, what: "list jobs")
        guard let page = PolledJob.listPage(bytes) else { throw KliqAPIError(.badResponse, "the job list holds no array of jobs") }
        var jobs: [APIJob] = []
        for raw in page.jobs { jobs.append(try APIJob(raw: raw)) }
        return APIJobPage(jobs: jobs, next: page.next)
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}
