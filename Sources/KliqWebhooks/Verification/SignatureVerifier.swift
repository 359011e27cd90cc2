/// Verifies `X-Kliq-Signature`: lowercase (or uppercase) hex of HMAC-SHA256 over the raw body bytes.
///
/// Several secrets can be configured at once for rotation; a delivery signed with any of them is valid,
/// and the index of the secret that matched is reported so operators can see when an old one is no
/// longer used. The comparison is constant-time, and the header is decoded strictly: exactly 64 hex
/// digits, nothing else.
///
/// ```swift
/// let verifier = try SignatureVerifier(secrets: Secret.list("whsec_new,whsec_old"))
/// let match = try verifier.verify(signature: request.headers["X-Kliq-Signature"], body: body)
/// ```
public struct SignatureVerifier: Sendable {
    /// The header that carries the signature.
    public static let headerName = "X-Kliq-Signature"

    /// Which configured secret a valid signature was made with (its position in the list).
    public struct Match: Sendable, Hashable {
        public var secretIndex: Int
    }

    private let keys: [[UInt8]]

    /// - Parameter secrets: the accepted secrets, newest first. At least one; none may be empty.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/invalidConfiguration`` when the list is
    ///   empty or holds an empty secret.
    public init(secrets: [Secret]) throws(WebhookError) {
        guard !secrets.isEmpty else {
            throw WebhookError(.invalidConfiguration, "no signing secret configured")
        }
        guard secrets.allSatisfy({ !$0.bytes.isEmpty }) else {
            throw WebhookError(.invalidConfiguration, "a signing secret is empty")
        }
        self.keys = secrets.map(\.bytes)
    }

    /// The number of configured secrets.
    public var secretCount: Int { self.keys.count }

    /// Checks `signature` against `body`.
    /// - Parameters:
    ///   - signature: the header value, or `nil` when the header is missing.
    ///   - body: the raw request body, exactly as received.
    /// - Returns: which secret matched.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/invalidSignature``; the message says
    ///   whether the header was missing, not 64 hex digits, or matched no secret.
    public func verify(signature: String?, body: [UInt8]) throws(WebhookError) -> Match {
        let given = try Self.decodeHeader(signature)
        var matched: Int?
        body.withUnsafeBytes { message in
            for (index, key) in self.keys.enumerated() {
                let expected = Crypto.hmacSHA256(key: key, message: message)
                if Crypto.constantTimeEqual(expected, given), matched == nil { matched = index }
            }
        }
        guard let matched else {
            throw WebhookError(.invalidSignature, "\(Self.headerName) does not match the body under any configured secret")
        }
        return Match(secretIndex: matched)
    }

    /// The digest in a signature header, checked for form only (present, 64 hex digits): a check that
    /// needs no body, so a server can refuse before reading one.
    /// - Throws: ``WebhookError`` `invalid_signature` saying what is wrong with the header.
    @discardableResult
    public static func decodeHeader(_ signature: String?) throws(WebhookError) -> [UInt8] {
        guard let signature else {
            throw WebhookError(.invalidSignature, "the \(Self.headerName) header is missing")
        }
        guard signature.utf8.count == 64, let given = Hex.decode(signature) else {
            throw WebhookError(.invalidSignature, "\(Self.headerName) must be 64 hexadecimal digits (HMAC-SHA256)")
        }
        return given
    }

    /// The signature of `body` under the first (newest) configured secret: how an event whose original
    /// signature is not known (stored by 0.5.1, which kept none) is signed when it is forwarded.
    public func sign(_ body: [UInt8]) -> String {
        Hex.encode(Crypto.hmacSHA256(key: self.keys[0], message: body))
    }

    /// The signature a sender would put in `X-Kliq-Signature` for `body` under `secret`.
    public static func signature(for body: [UInt8], secret: Secret) -> String {
        Hex.encode(Crypto.hmacSHA256(key: secret.bytes, message: body))
    }
}
