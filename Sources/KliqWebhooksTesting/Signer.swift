import KliqWebhooks

/// Signs bodies the way KLIQ does: `X-Kliq-Signature` = hex HMAC-SHA256 of the raw body.
///
/// ```swift
/// let signer = Signer(secret: "whsec_test")
/// let header = signer.signature(for: body)
/// ```
public struct Signer: Sendable {
    public let secret: Secret

    public init(secret: String) {
        self.secret = Secret(secret)
    }

    public init(secret: Secret) {
        self.secret = secret
    }

    /// The `X-Kliq-Signature` value for `body`.
    public func signature(for body: [UInt8]) -> String {
        SignatureVerifier.signature(for: body, secret: self.secret)
    }

    /// The `X-Kliq-Signature` value for a UTF-8 `body`.
    public func signature(for body: String) -> String {
        self.signature(for: Array(body.utf8))
    }
}
