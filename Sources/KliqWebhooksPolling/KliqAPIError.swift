/// What went wrong talking to KLIQ's API, with a stable ``Code``. Messages name the request and the
/// answer, never the API key.
public struct KliqAPIError: Error, Sendable, CustomStringConvertible {
    /// A stable error code. New codes may be added; a `switch` over codes needs a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { self.rawValue }

        /// `401`: the API key is missing, wrong or revoked.
        public static var unauthorized: Self { .init("unauthorized") }
        /// `403`: the key may not use this tenant or operation.
        public static var forbidden: Self { .init("forbidden") }
        /// `404`: no such job (or tenant).
        public static var notFound: Self { .init("not_found") }
        /// `429`/`503` still after every attempt.
        public static var rateLimited: Self { .init("rate_limited") }
        /// Another `4xx`: the request is wrong (e.g. an unknown model); retrying does not help.
        public static var rejected: Self { .init("rejected") }
        /// `5xx` still after every attempt.
        public static var serverError: Self { .init("server_error") }
        /// No answer within the time limit, after every attempt.
        public static var timeout: Self { .init("timeout") }
        /// The API could not be reached (DNS, refused connection, TLS), after every attempt.
        public static var unreachable: Self { .init("unreachable") }
        /// The answer was not the JSON expected.
        public static var badResponse: Self { .init("bad_response") }
    }

    public var code: Code
    public var message: String
    /// The HTTP status of the last answer, when there was one.
    public var status: Int?

    public init(_ code: Code, _ message: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    /// Whether the API refused the key (`401`/`403`): polling cannot go on until it is fixed.
    public var isAuthorizationFailure: Bool { self.code == .unauthorized || self.code == .forbidden }

    public var description: String { "\(self.code): \(self.message)" }
}
