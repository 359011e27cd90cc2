/// A JSON value, for the open-ended parts of a payload (`data`, detection `attributes`, `summary`).
///
/// Objects keep every key, so unknown fields are never lost; numbers are `Double`s (the exact bytes of
/// a payload are always kept on ``Event/rawBody``). `null` is a value of its own: an attribute that is
/// `null` is not the same as one that is absent.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a JSON text.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/malformedPayload`` when `bytes` is not JSON.
    public init(parsing bytes: [UInt8]) throws(WebhookError) {
        do {
            self = try JSONReader(bytes).value()
        } catch {
            throw WebhookError(.malformedPayload, "not valid JSON: \(error)")
        }
    }

    /// The member `key` of an object; `nil` when absent or when this is not an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The element at `index` of an array; `nil` when out of range or when this is not an array.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let array) = self, array.indices.contains(index) else { return nil }
        return array[index]
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number, when this is a number.
    public var doubleValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The number as an `Int`, when this is a number with no fractional part that fits.
    public var intValue: Int? {
        guard case .number(let value) = self, let int = Int(exactly: value) else { return nil }
        return int
    }

    /// The boolean, when this is `true` or `false`.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The members, when this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// Whether this is JSON `null`.
    public var isNull: Bool { self == .null }
}
