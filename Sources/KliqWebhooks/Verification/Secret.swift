/// A webhook signing secret, e.g. `whsec_…`.
///
/// Its bytes are the secret's UTF-8 bytes exactly as given (KLIQ does not base64-decode the `whsec_`
/// form). A `Secret` never prints itself: `description` is redacted, so a secret that ends up in string
/// interpolation or a log line shows nothing.
public struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let bytes: [UInt8]

    /// A secret from its text, e.g. the value of `KLIQ_WEBHOOK_SECRET`.
    public init(_ text: String) {
        self.bytes = Array(text.utf8)
    }

    /// Secrets from a comma-separated list (the `KLIQ_WEBHOOK_SECRET` rotation form). Whitespace around
    /// each entry is dropped, as are empty entries.
    public static func list(_ text: String) -> [Secret] {
        text.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }.map { Secret(String($0)) }
    }

    /// Secrets from a secret file's contents: one a line; blank lines and lines starting with `#` are skipped.
    public static func lines(_ text: String) -> [Secret] {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }.map { Secret(String($0)) }
    }

    public var description: String { "Secret(redacted)" }
    public var debugDescription: String { "Secret(redacted)" }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
