import ArgumentParser
import Foundation
import KliqWebhooks
import KliqWebhooksPostgres
import Logging

/// Where a read-side command (`events …`, `jobs …`, `export`) finds the store: a data directory (the
/// default), or a PostgreSQL database (`--store postgres`, `--database-url` or `KLIQ_DATABASE_URL`).
struct StoreLocation: ParsableArguments {
    @Option(help: "The data directory of the receiver (files store).") var dataDir = "./kliq-data"
    @Option(help: ArgumentHelp("files or postgres. [default: files, or postgres when a database URL is given]", valueName: "files|postgres"))
    var store: String?
    @Option(help: ArgumentHelp("The PostgreSQL database (also KLIQ_DATABASE_URL).", valueName: "postgres://USER[:PASSWORD]@HOST[:PORT]/DB"))
    var databaseURL: String?
    @Option(help: "The schema holding the tables. [default: kliq]") var databaseSchema = "kliq"

    func validate() throws {
        if let store, !["files", "postgres"].contains(store) { throw ValidationError("--store is files or postgres, not '\(store)'") }
    }

    /// The database URL from the flag or the environment, when the store is PostgreSQL.
    var databaseText: String? {
        guard self.store != "files" else { return nil }
        return Self.databaseURL(self.databaseURL)
    }

    /// The database URL given as a flag, else `KLIQ_DATABASE_URL` (when set and not empty).
    static func databaseURL(_ flag: String?) -> String? {
        flag ?? ProcessInfo.processInfo.environment["KLIQ_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Runs `body` against the store, reporting a failure as one line (exit 1).
    func withReader<T: Sendable>(_ body: (any StoreReader) async throws -> T) async throws -> T {
        if self.store == "postgres", self.databaseText == nil {
            throw Failure("--store postgres needs the database: --database-url URL or KLIQ_DATABASE_URL")
        }
        guard let text = self.databaseText else {
            let directory = DataDirectory(path: self.dataDir)
            guard directory.exists else {
                throw Failure("\(self.dataDir) is not a kliq-webhooks data directory (no events/ folder); pass --data-dir")
            }
            return try await body(directory)
        }
        do {
            return try await Self.withDatabase(text, schema: self.databaseSchema, migrating: false) { store in
                try await body(DatabaseReader(store: store, hint: self.hint))
            }
        } catch let error as WebhookError {
            throw Failure(error.message)
        }
    }

    /// Opens the PostgreSQL store at `url`, runs its pool around `body`, and (unless `migrating`) insists
    /// that the schema exists.
    static func withDatabase<T: Sendable>(_ text: String, schema: String, migrating: Bool,
                                          _ body: (PostgresEventStore) async throws -> T) async throws -> T {
        let url = try PostgresURL(text)
        guard PostgresEventStore.isValidSchema(schema) else { throw ValidationError("--database-schema must be letters, digits and _, not '\(schema)'") }
        let logger = Logger(label: "kliq-webhooks") { _ in SwiftLogNoOpLogHandler() }
        let store = try PostgresEventStore(configuration: url.configuration, schema: schema, logger: logger)
        let pool = Task { try? await store.run() }
        defer { pool.cancel() }
        try? await Task.sleep(for: .milliseconds(20))
        do {
            if !migrating {
                let version = try await store.schemaVersion()
                if version == 0 {
                    throw Failure("schema \(schema) in \(url.redacted) holds no kliq-webhooks tables; run kliq-webhooks migrate, or start serve with this database")
                }
            }
            return try await body(store)
        } catch let error as WebhookError {
            throw Failure("\(error.message) (\(url.redacted))")
        }
    }

    /// The options that name this store again, for hints (never the database URL: it may hold a password).
    var hint: String {
        guard self.databaseText != nil else { return "--data-dir \(self.dataDir)" }
        return "--store postgres" + (self.databaseSchema == "kliq" ? "" : " --database-schema \(self.databaseSchema)")
    }
}

/// A failure the user can fix: printed as one line, exit status 1, no usage text.
struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// What the read-side commands read, from either store.
protocol StoreReader: Sendable {
    /// The store as it appears in messages: the data directory's path, or the database (password hidden).
    var name: String { get }
    /// The options that name this store, for hints.
    var hint: String { get }
    func ledgerEntries(on shelf: LedgerEntry.Shelf) async throws -> [LedgerEntry]
    func ledgerEntry(eventId: String) async throws -> LedgerEntry?
    func eventBody(id: String) async throws -> [UInt8]?
    func jobDocument(id: String) async throws -> [UInt8]?
    func jobDocuments() async throws -> [[UInt8]]
    func acceptedEvents(after: UInt64, matching filter: EventFilter, limit: Int) async throws -> EventPage?
}

extension DataDirectory: StoreReader {
    var name: String { self.path }
    var hint: String { "--data-dir \(self.path)" }
}

/// The PostgreSQL store as a ``StoreReader``.
struct DatabaseReader: StoreReader {
    let store: PostgresEventStore
    let hint: String
    var name: String { "schema \(self.store.schema)" }

    func ledgerEntries(on shelf: LedgerEntry.Shelf) async throws -> [LedgerEntry] { try await self.store.allDeliveries(on: shelf) }
    func ledgerEntry(eventId: String) async throws -> LedgerEntry? { try await self.store.deliveries(eventId: eventId) }
    func eventBody(id: String) async throws -> [UInt8]? { try await self.store.event(id: id)?.rawBody }
    func jobDocument(id: String) async throws -> [UInt8]? { try await self.store.jobDocument(id: id) }
    func jobDocuments() async throws -> [[UInt8]] {
        var all: [[UInt8]] = []
        var cursor: String?
        repeat {
            let page = try await self.store.jobDocuments(after: cursor, limit: 1000)
            all += page.map(\.document)
            cursor = page.count == 1000 ? page.last?.id : nil
        } while cursor != nil
        return all
    }
    func acceptedEvents(after: UInt64, matching filter: EventFilter, limit: Int) async throws -> EventPage? {
        try await self.store.events(after: after, matching: filter, limit: limit)
    }
}
