import ArgumentParser
import Foundation
import KliqWebhooks
import KliqWebhooksPostgres

/// The database options of `migrate`, `export` and `import`.
struct DatabaseOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The PostgreSQL database (also KLIQ_DATABASE_URL).", valueName: "postgres://USER[:PASSWORD]@HOST[:PORT]/DB"))
    var databaseURL: String?
    @Option(help: "The schema holding the tables. [default: kliq]") var databaseSchema = "kliq"

    func url() throws -> String {
        guard let url = StoreLocation.databaseURL(self.databaseURL) else {
            throw ValidationError("name the database: --database-url URL or KLIQ_DATABASE_URL")
        }
        return url
    }

    var hint: String { "--store postgres" + (self.databaseSchema == "kliq" ? "" : " --database-schema \(self.databaseSchema)") }
}

/// `kliq-webhooks migrate`: applies the PostgreSQL schema's pending versions and prints the version.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the PostgreSQL schema (serve also does this at start), then print its version.")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let url = try self.database.url()
        try await StoreLocation.withDatabase(url, schema: self.database.databaseSchema, migrating: true) { store in
            let before = try await store.schemaVersion()
            let after = try await store.migrate()
            print("schema \(store.schema): version \(after)\(before == after ? " (already current)" : " (was \(before))")")
        }
    }
}

/// `kliq-webhooks export --to DIR`: a PostgreSQL store written out as the files layout.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a PostgreSQL store out as the files layout: events/ byte for byte, jobs/.",
        discussion: "DIR is created; a directory that exists and is not empty is refused.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "The directory to write (created).") var to: String

    func run() async throws {
        let url = try self.database.url()
        let fileManager = FileManager.default
        if let existing = try? fileManager.contentsOfDirectory(atPath: self.to), !existing.isEmpty {
            throw Failure("\(self.to) is not empty; export into a new directory")
        }
        for sub in ["events", "jobs"] {
            try fileManager.createDirectory(atPath: self.to + "/" + sub, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let progress = ProgressLine(label: "exported")
        try await StoreLocation.withDatabase(url, schema: self.database.databaseSchema, migrating: false) { store in
            var after: UInt64 = 0
            var events = 0
            while true {
                let page = try await store.eventBodies(after: after, limit: 1000)
                for event in page {
                    try Self.write(event.body, to: "\(self.to)/events/\(StorageName.fileName(for: event.id))")
                    events += 1
                }
                progress.show("\(events) events")
                guard let last = page.last, page.count == 1000 else { break }
                after = last.sequence
            }
            var cursor: String?
            var jobs = 0
            repeat {
                let page = try await store.jobDocuments(after: cursor, limit: 1000)
                for job in page { try Self.write(job.document, to: "\(self.to)/jobs/\(StorageName.fileName(for: job.id))") }
                jobs += page.count
                progress.show("\(events) events, \(jobs) jobs")
                cursor = page.count == 1000 ? page.last?.id : nil
            } while cursor != nil
            progress.end()
            print("exported \(events) event\(events == 1 ? "" : "s") and \(jobs) job\(jobs == 1 ? "" : "s") from schema \(store.schema) to \(self.to)")
        }
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw Failure("cannot write \(path)")
        }
    }
}

/// `kliq-webhooks import --from DIR`: a files data directory moved into PostgreSQL, idempotently.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Move a files data directory into PostgreSQL: events (with their handler deliveries) and jobs.",
        discussion: """
            Migrates the schema first if needed. Idempotent: events already in the database are left as they are, \
            and a job state replaces a stored one only when it is later, so running it twice changes nothing. \
            Stop serve on DIR first (the directory is opened as its owner, and its journal applied).
            """)
    @OptionGroup var database: DatabaseOptions
    @Option(help: "The data directory to read.") var from: String

    func run() async throws {
        let url = try self.database.url()
        guard DataDirectory(path: self.from).exists else {
            throw Failure("\(self.from) is not a kliq-webhooks data directory (no events/ folder)")
        }
        let files: FileEventStore
        do {
            files = try FileEventStore(directory: self.from)
        } catch {
            throw Failure(error.message)
        }
        let progress = ProgressLine(label: "imported")
        try await StoreLocation.withDatabase(url, schema: self.database.databaseSchema, migrating: true) { store in
            try await store.migrate()
            var (events, new, after) = (0, 0, UInt64(0))
            while true {
                let page = try await files.events(after: after, matching: .all, limit: 500)
                for summary in page.events {
                    guard let event = try await files.event(id: summary.id) else { continue }
                    let deliveries = try await files.deliveries(eventId: summary.id)
                    if try await store.importEvent(event, deliveries: deliveries, acceptedAt: summary.acceptedAt) { new += 1 }
                    events += 1
                }
                progress.show("\(events) events")
                guard let next = page.next else { break }
                after = next
            }
            var (jobs, newJobs, cursor) = (0, 0, String?.none)
            repeat {
                let page = try await files.jobs(after: cursor, limit: 500)
                for job in page.jobs {
                    guard let document = DataDirectory(path: self.from).jobDocument(id: job.id) else { continue }
                    if try await store.importJob(document: document) { newJobs += 1 }
                    jobs += 1
                }
                progress.show("\(events) events, \(jobs) jobs")
                cursor = page.next
            } while cursor != nil
            progress.end()
            print("imported \(new) new event\(new == 1 ? "" : "s") (of \(events)) and \(newJobs) job state\(newJobs == 1 ? "" : "s") (of \(jobs)) from \(self.from) into schema \(store.schema)")
        }
        await files.close()
    }
}

/// A progress line on stderr, rewritten in place when stderr is a terminal (at most every half second).
final class ProgressLine {
    private let label: String
    private let terminal = isatty(2) == 1
    private var shownAt = ContinuousClock.now - .seconds(1)

    init(label: String) { self.label = label }

    func show(_ text: String) {
        guard self.terminal, ContinuousClock.now - self.shownAt >= .milliseconds(500) else { return }
        self.shownAt = .now
        FileHandle.standardError.write(Data("\r\u{1B}[K\(self.label) \(text)…".utf8))
    }

    func end() {
        if self.terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
