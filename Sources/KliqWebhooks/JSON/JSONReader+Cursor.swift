extension JSONReader {
    /// The reading position; every method leaves `index` just past what it read.
    struct Cursor {
        let reader: JSONReader
        var index: Int
        let end: Int
        /// The text was already checked (by an earlier pass over an enclosing range): values are skipped
        /// by their structure alone, without checking them again.
        var trusted = false
        /// Keys of the objects being read, innermost last (as byte ranges, quotes included, and whether
        /// they hold an escape): the duplicate-key check compares bytes, with one buffer for the whole document.
        var keys: [(range: Range<Int>, escaped: Bool)] = []

        var peek: UInt8? { self.index < self.end ? self.reader.bytes[self.index] : nil }

        func error(_ reason: String) -> SyntaxError { SyntaxError(reason: reason, offset: self.index) }

        mutating func skipWhitespace() {
            while let byte = self.peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                self.index += 1
            }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
            guard self.peek == byte else { throw self.error("expected \(what)") }
            self.index += 1
        }

        mutating func literal(_ text: StaticString) throws(SyntaxError) {
            let count = text.utf8CodeUnitCount
            guard self.end - self.index >= count else { throw self.error("truncated literal") }
            let matches = text.withUTF8Buffer { expected in
                (0..<count).allSatisfy { self.reader.bytes[self.index + $0] == expected[$0] }
            }
            guard matches else { throw self.error("invalid literal") }
            self.index += count
        }

        mutating func skipValue(depth: Int) throws(SyntaxError) {
            if self.trusted { return self.skipChecked() }
            guard let byte = self.peek else { throw self.error("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"):
                _ = try self.objectMembers(depth: depth, collect: false)
            case UInt8(ascii: "["):
                try self.array(depth: depth) { (cursor: inout Cursor) throws(SyntaxError) in try cursor.skipValue(depth: depth + 1) }
            case UInt8(ascii: "\""):
                try self.skipString()
            case UInt8(ascii: "t"): try self.literal("true")
            case UInt8(ascii: "f"): try self.literal("false")
            case UInt8(ascii: "n"): try self.literal("null")
            default: _ = try self.number()
            }
        }

        mutating func parseValue(depth: Int) throws(SyntaxError) -> JSONValue {
            guard let byte = self.peek else { throw self.error("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"):
                let members = try self.objectMembers(depth: depth)
                var object: [String: JSONValue] = [:]
                object.reserveCapacity(members.count)
                for member in members {
                    var inner = Cursor(reader: self.reader, index: member.value.lowerBound, end: member.value.upperBound)
                    object[member.key] = try inner.parseValue(depth: depth + 1)
                }
                return .object(object)
            case UInt8(ascii: "["):
                var elements: [JSONValue] = []
                try self.array(depth: depth) { (cursor: inout Cursor) throws(SyntaxError) in
                    elements.append(try cursor.parseValue(depth: depth + 1))
                }
                return .array(elements)
            case UInt8(ascii: "\""): return .string(try self.parseString())
            case UInt8(ascii: "t"): try self.literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try self.literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try self.literal("null"); return .null
            default:
                let range = try self.number()
                let text = String(decoding: self.reader.bytes[range], as: UTF8.self)
                guard let number = Double(text), number.isFinite else { throw self.error("number out of range") }
                return .number(number)
            }
        }

        /// Reads an object; returns its members (when `collect`) after checking keys are unique.
        mutating func objectMembers(depth: Int, collect: Bool = true) throws(SyntaxError) -> [Member] {
            guard depth < self.reader.maxDepth else { throw self.error("nesting deeper than \(self.reader.maxDepth)") }
            try self.expect(UInt8(ascii: "{"), "an object")
            var members: [Member] = []
            let base = self.keys.count
            defer { self.keys.removeSubrange(base...) }
            var seen: Set<String>?  // only for objects with many keys
            self.skipWhitespace()
            if self.peek == UInt8(ascii: "}") {
                self.index += 1
                return members
            }
            while true {
                self.skipWhitespace()
                guard self.peek == UInt8(ascii: "\"") else { throw self.error("expected a string key") }
                let keyStart = self.index
                let key: String?
                if collect { key = try self.parseString() } else { try self.skipString(); key = nil }
                let keyRange = keyStart..<self.index
                let escaped = self.reader.bytes[keyRange].contains(UInt8(ascii: "\\"))
                if !self.trusted, try self.isDuplicate(keyRange, escaped: escaped, base: base, seen: &seen) {
                    let name: String
                    if let key { name = key } else { name = try self.decodeKey(keyRange) }
                    throw SyntaxError(reason: "duplicate key \"\(name.prefix(64))\"", offset: keyStart)
                }
                self.keys.append((keyRange, escaped))
                self.skipWhitespace()
                try self.expect(UInt8(ascii: ":"), "':'")
                self.skipWhitespace()
                let valueStart = self.index
                try self.skipValue(depth: depth + 1)
                if let key { members.append(Member(key: key, value: valueStart..<self.index)) }
                self.skipWhitespace()
                guard let next = self.peek else { throw self.error("unterminated object") }
                self.index += 1
                if next == UInt8(ascii: "}") { return members }
                guard next == UInt8(ascii: ",") else { throw SyntaxError(reason: "expected ',' or '}'", offset: self.index - 1) }
            }
        }

        /// Whether the key at `range` equals one already read in this object (keys since `base`).
        /// Keys are compared as bytes; a key with an escape is compared decoded. Past 16 keys, a set of
        /// decoded keys takes over, so a huge object costs linear time.
        private func isDuplicate(_ range: Range<Int>, escaped: Bool, base: Int, seen: inout Set<String>?) throws(SyntaxError) -> Bool {
            if self.keys.count - base >= 16 {
                if seen == nil {
                    var set = Set<String>()
                    for earlier in self.keys[base...] { set.insert(try self.decodeKey(earlier.range)) }
                    seen = set
                }
                return !seen!.insert(try self.decodeKey(range)).inserted
            }
            let bytes = self.reader.bytes
            for earlier in self.keys[base...] {
                if escaped || earlier.escaped {
                    if try self.decodeKey(earlier.range) == self.decodeKey(range) { return true }
                } else if earlier.range.count == range.count, bytes[earlier.range].elementsEqual(bytes[range]) {
                    return true
                }
            }
            return false
        }

        private func decodeKey(_ range: Range<Int>) throws(SyntaxError) -> String {
            var cursor = Cursor(reader: self.reader, index: range.lowerBound, end: range.upperBound)
            return try cursor.parseString()
        }

        /// Skips one value of text already checked: strings and nesting are followed, nothing is validated.
        private mutating func skipChecked() {
            let bytes = self.reader.bytes
            var depth = 0
            while self.index < self.end {
                let byte = bytes[self.index]
                switch byte {
                case UInt8(ascii: "\""):
                    self.index += 1
                    while self.index < self.end, bytes[self.index] != UInt8(ascii: "\"") {
                        self.index += bytes[self.index] == UInt8(ascii: "\\") ? 2 : 1
                    }
                    self.index += 1
                    if depth == 0 { return }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    self.index += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return }
                    depth -= 1
                    self.index += 1
                    if depth == 0 { return }
                case UInt8(ascii: ","):
                    if depth == 0 { return }
                    self.index += 1
                default:
                    self.index += 1
                    // A scalar at the top ends where a delimiter or whitespace begins.
                    if depth == 0, let next = self.peek,
                        next == UInt8(ascii: ",") || next == UInt8(ascii: "}") || next == UInt8(ascii: "]") || next <= 0x20
                    {
                        return
                    }
                }
            }
        }

        mutating func array(depth: Int, element: (inout Cursor) throws(SyntaxError) -> Void) throws(SyntaxError) {
            guard depth < self.reader.maxDepth else { throw self.error("nesting deeper than \(self.reader.maxDepth)") }
            try self.expect(UInt8(ascii: "["), "an array")
            self.skipWhitespace()
            if self.peek == UInt8(ascii: "]") {
                self.index += 1
                return
            }
            while true {
                self.skipWhitespace()
                try element(&self)
                self.skipWhitespace()
                guard let next = self.peek else { throw self.error("unterminated array") }
                self.index += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw SyntaxError(reason: "expected ',' or ']'", offset: self.index - 1) }
            }
        }
    }
}
