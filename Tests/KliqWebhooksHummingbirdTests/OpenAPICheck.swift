import Foundation
@testable import KliqWebhooksConsole
import Testing

/// Checks an admin API answer against the response schema `/api/openapi.json` declares for it: types,
/// required properties, enums, nullable fields, `additionalProperties`, `$ref`s. (The schema keywords
/// the document uses; CI also runs schemathesis against a live serve once the console is wired in.)
enum OpenAPICheck {
    // Read-only after its one initialisation (a `let`): safe to read from any test.
    nonisolated(unsafe) static let document = try! JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8)) as! [String: Any]

    struct Mismatch: Error, CustomStringConvertible { var description: String }

    static func response(_ value: Any?, path: String, status: Int, method: String = "get") throws {
        guard let operation = ((document["paths"] as? [String: Any])?[path] as? [String: Any])?[method] as? [String: Any],
            var response = (operation["responses"] as? [String: Any])?[String(status)] as? [String: Any]
        else { throw Mismatch(description: "the document has no \(status) answer for \(method.uppercased()) \(path)") }
        if let ref = response["$ref"] as? String { response = self.resolve(ref) }
        guard let schema = ((response["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any] else {
            throw Mismatch(description: "no JSON schema for \(status) of \(path)")
        }
        try self.check(value ?? NSNull(), schema, at: "\(path) \(status)")
    }

    static func resolve(_ ref: String) -> [String: Any] {
        var node: Any = document
        for part in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(part)] ?? [:] }
        return node as? [String: Any] ?? [:]
    }

    static func check(_ value: Any, _ schema: [String: Any], at location: String) throws {
        if let ref = schema["$ref"] as? String { return try self.check(value, self.resolve(ref), at: location) }
        let types: [String] = (schema["type"] as? [String]) ?? (schema["type"] as? String).map { [$0] } ?? []
        if !types.isEmpty {
            let matches = types.contains { type in
                switch type {
                case "null": return value is NSNull
                case "object": return value is [String: Any]
                case "array": return value is [Any]
                case "string": return value is String
                case "integer": return Swift.type(of: value) != Bool.self && ((value as? NSNumber).map { $0.doubleValue == $0.doubleValue.rounded() } ?? false)
                case "number": return value is NSNumber
                case "boolean": return value is Bool
                default: return false
                }
            }
            guard matches else { throw Mismatch(description: "\(location): \(value) is not \(types)") }
        }
        if let options = schema["enum"] as? [String] {
            guard let text = value as? String, options.contains(text) else { throw Mismatch(description: "\(location): \(value) is not one of \(options)") }
        }
        if let object = value as? [String: Any] {
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                throw Mismatch(description: "\(location): required '\(key)' is missing")
            }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (key, member) in object {
                if let property = properties[key] as? [String: Any] {
                    try self.check(member, property, at: "\(location).\(key)")
                } else if let additional = schema["additionalProperties"] as? [String: Any] {
                    try self.check(member, additional, at: "\(location).\(key)")
                }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (index, item) in array.enumerated() { try self.check(item, items, at: "\(location)[\(index)]") }
        }
    }
}
