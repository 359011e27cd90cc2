extension JSONReader.Cursor {
    /// Skips a string, checking escapes, control characters and UTF-8 without building it.
    mutating func skipString() throws(JSONReader.SyntaxError) {
        try self.expect(UInt8(ascii: "\""), "a string")
        var runStart = self.index
        while true {
            guard let byte = self.peek else { throw self.error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                try self.checkUTF8(runStart..<self.index)
                self.index += 1
                return
            case UInt8(ascii: "\\"):
                try self.checkUTF8(runStart..<self.index)
                _ = try self.escape()
                runStart = self.index
            case 0..<0x20:
                throw self.error("control character in string")
            default:
                self.index += 1
            }
        }
    }

    /// Reads a string and returns it decoded.
    mutating func parseString() throws(JSONReader.SyntaxError) -> String {
        try self.expect(UInt8(ascii: "\""), "a string")
        var decoded: [UInt8] = []
        var runStart = self.index
        while true {
            guard let byte = self.peek else { throw self.error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                try self.checkUTF8(runStart..<self.index)
                if decoded.isEmpty {
                    defer { self.index += 1 }
                    return String(decoding: self.reader.bytes[runStart..<self.index], as: UTF8.self)
                }
                decoded.append(contentsOf: self.reader.bytes[runStart..<self.index])
                self.index += 1
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try self.checkUTF8(runStart..<self.index)
                decoded.append(contentsOf: self.reader.bytes[runStart..<self.index])
                let scalar = try self.escape()
                decoded.append(contentsOf: Array(String(Character(scalar)).utf8))
                runStart = self.index
            case 0..<0x20:
                throw self.error("control character in string")
            default:
                self.index += 1
            }
        }
    }

    /// Reads one escape sequence (the cursor is on the backslash) and returns the scalar it means.
    private mutating func escape() throws(JSONReader.SyntaxError) -> Unicode.Scalar {
        self.index += 1
        guard let byte = self.peek else { throw self.error("unterminated escape") }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try self.hex4()
            if (0xDC00...0xDFFF).contains(high) { throw self.error("unpaired surrogate escape") }
            if (0xD800...0xDBFF).contains(high) {
                guard self.peek == UInt8(ascii: "\\") else { throw self.error("unpaired surrogate escape") }
                self.index += 1
                guard self.peek == UInt8(ascii: "u") else { throw self.error("unpaired surrogate escape") }
                self.index += 1
                let low = try self.hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw self.error("unpaired surrogate escape") }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
            }
            return Unicode.Scalar(high)!
        default:
            throw SyntaxError(reason: "invalid escape", offset: self.index - 1)
        }
    }

    private typealias SyntaxError = JSONReader.SyntaxError

    private mutating func hex4() throws(JSONReader.SyntaxError) -> UInt32 {
        guard self.end - self.index >= 4 else { throw self.error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let nibble = Hex.nibble(self.reader.bytes[self.index]) else { throw self.error("invalid \\u escape") }
            value = value << 4 | UInt32(nibble)
            self.index += 1
        }
        return value
    }

    /// Reads a number and returns its byte range (RFC 8259 grammar, no leading zeros or '+').
    mutating func number() throws(JSONReader.SyntaxError) -> Range<Int> {
        let start = self.index
        if self.peek == UInt8(ascii: "-") { self.index += 1 }
        guard let first = self.peek, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else {
            throw self.error(self.index == start ? "unexpected character" : "invalid number")
        }
        if first == UInt8(ascii: "0") { self.index += 1 } else { self.digits() }
        if self.peek == UInt8(ascii: ".") {
            self.index += 1
            guard self.digits() > 0 else { throw self.error("invalid number") }
        }
        if self.peek == UInt8(ascii: "e") || self.peek == UInt8(ascii: "E") {
            self.index += 1
            if self.peek == UInt8(ascii: "+") || self.peek == UInt8(ascii: "-") { self.index += 1 }
            guard self.digits() > 0 else { throw self.error("invalid number") }
        }
        guard self.index - start <= 512 else { throw SyntaxError(reason: "number longer than 512 characters", offset: start) }
        return start..<self.index
    }

    @discardableResult
    private mutating func digits() -> Int {
        let start = self.index
        while let byte = self.peek, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { self.index += 1 }
        return self.index - start
    }

    /// Checks that `range` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
    private func checkUTF8(_ range: Range<Int>) throws(JSONReader.SyntaxError) {
        let bytes = self.reader.bytes
        var i = range.lowerBound
        while i < range.upperBound {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            let count: Int
            var lower: UInt8 = 0x80
            var upper: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: count = 1
            case 0xE0: count = 2; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: count = 2
            case 0xED: count = 2; upper = 0x9F
            case 0xF0: count = 3; lower = 0x90
            case 0xF1...0xF3: count = 3
            case 0xF4: count = 3; upper = 0x8F
            default: throw SyntaxError(reason: "invalid UTF-8", offset: i)
            }
            guard range.upperBound - i > count else { throw SyntaxError(reason: "invalid UTF-8", offset: i) }
            for k in 1...count {
                let byte = bytes[i + k]
                let (lo, hi) = k == 1 ? (lower, upper) : (UInt8(0x80), UInt8(0xBF))
                guard byte >= lo, byte <= hi else { throw SyntaxError(reason: "invalid UTF-8", offset: i + k) }
            }
            i += count + 1
        }
    }
}
