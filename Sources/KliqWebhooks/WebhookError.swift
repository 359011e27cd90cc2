/// The one error type of the core, with a stable machine-readable ``Code``.
///
/// Messages are for people and never contain a secret or payload bytes. The HTTP layer sends the code
/// as the `error` member of its JSON error bodies.
public struct WebhookError: Error, Sendable, CustomStringConvertible {
    /// A stable error code. New codes may be added; a `switch` over codes needs a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { self.rawValue }

        /// The signature header is missing, malformed, or matches no configured secret.
        public static var invalidSignature: Self { .init("invalid_signature") }
        /// The body is signed but is not a JSON object with string `id` and `type`.
        public static var malformedPayload: Self { .init("malformed_payload") }
        /// The event's signed `timestamp` is missing, unreadable, or outside the configured replay window.
        public static var outsideReplayWindow: Self { .init("outside_replay_window") }
        /// The body is larger than the configured limit.
        public static var payloadTooLarge: Self { .init("payload_too_large") }
        /// The store could not write (disk full, permissions, I/O error). Retry later.
        public static var storageUnavailable: Self { .init("storage_unavailable") }
        /// `waitForCompletion` ran out of time.
        public static var timeout: Self { .init("timeout") }
        /// The configuration is unusable (no secret, bad path, bad value).
        public static var invalidConfiguration: Self { .init("invalid_configuration") }
        /// A payload is valid JSON but does not have the shape a typed accessor expects.
        public static var unexpectedShape: Self { .init("unexpected_shape") }
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { "\(self.code): \(self.message)" }
}
