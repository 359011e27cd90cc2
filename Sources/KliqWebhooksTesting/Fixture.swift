#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KliqWebhooks

/// A payload file from a fixtures folder: its name and exact bytes.
public struct Fixture: Sendable {
    /// The file name, e.g. `cv.job.completed.shelf-detection-v2.json`.
    public var name: String
    /// The file's bytes, exactly.
    public var body: [UInt8]

    public init(name: String, body: [UInt8]) {
        self.name = name
        self.body = body
    }

    /// The body decoded as an event.
    public func event() throws -> Event { try Event(decoding: self.body) }
}

/// Loads fixture payloads by name from a folder, by default this package's `Fixtures/`.
///
/// ```swift
/// let fixtures = try Fixtures()
/// let shelf = try fixtures.load("cv.job.completed.shelf-detection-v2")
/// ```
public struct Fixtures: Sendable {
    /// The folder the fixtures are read from.
    public let directory: URL

    /// Fixtures from `directory`.
    public init(directory: URL) {
        self.directory = directory
    }

    /// The fixtures that ship with kliq-webhooks (its top-level `Fixtures/`), found next to this
    /// package's sources — also when it is a dependency checked out under `.build/checkouts/`.
    /// - Throws: when the folder cannot be found.
    public init() throws {
        var url = URL(fileURLWithPath: "\(#filePath)")
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let candidate = url.appendingPathComponent("Fixtures")
        guard FileManager.default.fileExists(atPath: candidate.appendingPathComponent("README.md").path) else {
            throw WebhookError(.invalidConfiguration, "the bundled Fixtures folder was not found at \(candidate.path)")
        }
        self.directory = candidate
    }

    /// The fixture `name` (with or without `.json`).
    /// - Throws: when there is no such file; the message lists the available names.
    public func load(_ name: String) throws -> Fixture {
        let fileName = name.hasSuffix(".json") ? name : name + ".json"
        let url = self.directory.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            let names = (try? self.names()) ?? []
            throw WebhookError(.invalidConfiguration, "no fixture \(fileName) in \(self.directory.path); have: \(names.joined(separator: ", "))")
        }
        return Fixture(name: fileName, body: Array(data))
    }

    /// Every `.json` fixture in the folder, sorted by name.
    public func all() throws -> [Fixture] {
        try self.names().map { try self.load($0) }
    }

    /// The names of the `.json` files in the folder, sorted.
    public func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: self.directory.path).filter { $0.hasSuffix(".json") }.sorted()
    }
}
