/// A strict, bounded JSON reader over raw bytes (RFC 8259).
///
/// It exists so the receiver never has to round-trip a payload: it validates a body, finds the byte
/// ranges of an object's members, and builds ``JSONValue``s only for what is asked. Nesting depth is
/// bounded, strings must be valid UTF-8, and duplicate keys in one object are an error, so a signed but
/// absurd body is refused with a reason rather than crashing or being read two ways.
struct JSONReader {
    /// Why a body is not acceptable JSON. `offset` is the byte offset where reading stopped.
    struct SyntaxError: Error, Sendable, CustomStringConvertible {
        var reason: String
        var offset: Int
        var description: String { "\(self.reason) at byte \(self.offset)" }
    }

    /// A member of an object: its decoded key and the byte range of its value.
    struct Member: Sendable {
        var key: String
        var value: Range<Int>
    }

    static let defaultMaxDepth = 128

    let bytes: [UInt8]
    let maxDepth: Int

    init(_ bytes: [UInt8], maxDepth: Int = JSONReader.defaultMaxDepth) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// Checks that `range` holds exactly one JSON value, with only whitespace around it.
    func validate(_ range: Range<Int>? = nil) throws(SyntaxError) {
        let range = range ?? self.bytes.indices
        var cursor = Cursor(reader: self, index: range.lowerBound, end: range.upperBound)
        cursor.skipWhitespace()
        try cursor.skipValue(depth: 0)
        cursor.skipWhitespace()
        guard cursor.index == range.upperBound else { throw cursor.error("unexpected data after the JSON value") }
    }

    /// The members of the object in `range`, in order. Throws when the value is not an object.
    /// `checked`: `range` lies inside text an earlier call already checked in full, so its values are
    /// skipped without checking them again (a 500 KB result is validated once, not once per level).
    func members(of range: Range<Int>? = nil, checked: Bool = false) throws(SyntaxError) -> [Member] {
        let range = range ?? self.bytes.indices
        var cursor = Cursor(reader: self, index: range.lowerBound, end: range.upperBound)
        cursor.trusted = checked
        cursor.skipWhitespace()
        let members = try cursor.objectMembers(depth: 0)
        cursor.skipWhitespace()
        guard cursor.index == range.upperBound else { throw cursor.error("unexpected data after the JSON value") }
        return members
    }

    /// The byte ranges of the elements of the array in `range`, in order. Throws when it is not an array.
    func elements(of range: Range<Int>? = nil) throws(SyntaxError) -> [Range<Int>] {
        let range = range ?? self.bytes.indices
        var cursor = Cursor(reader: self, index: range.lowerBound, end: range.upperBound)
        cursor.skipWhitespace()
        var elements: [Range<Int>] = []
        try cursor.array(depth: 0) { (element: inout Cursor) throws(SyntaxError) in
            let start = element.index
            try element.skipValue(depth: 1)
            elements.append(start..<element.index)
        }
        return elements
    }

    /// The value in `range`, built as a ``JSONValue``.
    func value(of range: Range<Int>? = nil) throws(SyntaxError) -> JSONValue {
        let range = range ?? self.bytes.indices
        var cursor = Cursor(reader: self, index: range.lowerBound, end: range.upperBound)
        cursor.skipWhitespace()
        let value = try cursor.parseValue(depth: 0)
        cursor.skipWhitespace()
        guard cursor.index == range.upperBound else { throw cursor.error("unexpected data after the JSON value") }
        return value
    }

    /// The string in `range`, or `nil` when the value there is not a string.
    func string(at range: Range<Int>) -> String? {
        var cursor = Cursor(reader: self, index: range.lowerBound, end: range.upperBound)
        cursor.skipWhitespace()
        guard cursor.peek == UInt8(ascii: "\"") else { return nil }
        return try? cursor.parseString()
    }
}
