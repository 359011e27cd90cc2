import Logging

extension Logger.MetadataValue {
    /// A value from the wire, made safe for a log line: control characters are escaped (so an id with a
    /// newline cannot forge a line) and it is cut at 256 characters (ids may be up to any length).
    static func wire(_ text: String) -> Self {
        var out = ""
        for scalar in text.unicodeScalars.prefix(256) {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}" {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        if text.unicodeScalars.count > 256 { out += "…" }
        return .string(out)
    }
}
