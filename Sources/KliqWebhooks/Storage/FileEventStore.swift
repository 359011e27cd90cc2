#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The default store: local JSON files under one data directory, crash-safe and deduplicated on disk.
///
/// Layout (see the README's "Files" section):
/// - `events/<eventId>.json` — each accepted body, byte for byte;
/// - `jobs/<jobId>.json` — each job's latest state;
/// - `quarantine/<sha256>.body` + `<sha256>.json` — signed bodies that could not be understood, and why;
/// - `ledger/active|done|dead/<eventId>.json` — the handler ledger (see ``LedgerEntry``);
/// - `tmp/` — files being written (removed at start-up); `state/lock` — held while a process owns the directory.
///
/// Every file is written to `tmp/`, `fsync`ed, then linked (events: `link` fails if the name exists,
/// which is the atomic dedup) or renamed (jobs) into place, and the directory is `fsync`ed before
/// ``commit(_:)`` returns. One process at a time may own a data directory; a second one fails to open it.
///
/// ```swift
/// let store = try FileEventStore(directory: "./kliq-data")
/// ```
public final class FileEventStore: EventStore {
    /// Settings of a file store.
    public struct Configuration: Sendable {
        /// Threads that perform blocking file-system calls.
        public var ioThreads: Int
        public init(ioThreads: Int = 8) { self.ioThreads = ioThreads }
    }

    /// The data directory.
    public let directory: String

    let dirs: Directories
    private let pool: BlockingPool
    private let eventLocks = KeyedLock()
    private let jobLocks = KeyedLock()

    /// Opens (creating if needed) the data directory and takes ownership of it.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/storageUnavailable`` when the directory
    ///   cannot be created or opened, or another process owns it.
    public init(directory: String, configuration: Configuration = .init()) throws(WebhookError) {
        self.directory = directory
        do {
            self.dirs = try Directories(path: directory)
        } catch let error as WebhookError {
            throw error
        } catch {
            throw WebhookError(.storageUnavailable, "cannot open data directory \(directory): \(error)", underlying: error)
        }
        self.pool = BlockingPool(threads: configuration.ioThreads)
    }

    public func commit(_ event: Event, ledger: LedgerEntry?) async throws -> Outcome {
        let name = StorageName.fileName(for: event.id)
        let record = JobRecord(event: event)
        let ledgerBytes = try ledger.map(Self.encode)
        return try await self.eventLocks.withLock(name) {
            // The ledger entry goes first: an event is never on disk without the record of who must see it.
            // Under this id's lock, in a directory this process owns, the existence check cannot race.
            let outcome = try await self.io { () throws -> Outcome in
                if faccessat(self.dirs.events, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 { return .duplicate }
                if let ledgerBytes { try self.placeLedger(ledgerBytes, as: name, on: .active) }
                do {
                    let outcome = try self.claim(event.rawBody, as: name)
                    if outcome == .duplicate, ledgerBytes != nil { try self.removeLedger(name, from: .active) }
                    return outcome
                } catch {
                    if ledgerBytes != nil { try? self.removeLedger(name, from: .active) }
                    throw error
                }
            }
            guard let record else { return outcome }
            do {
                try await self.jobLocks.withLock(record.jobId) {
                    try await self.io { try self.apply(record) }
                }
            } catch {
                if outcome == .accepted {
                    try? await self.io {
                        try self.unclaim(name)
                        if ledgerBytes != nil { try self.removeLedger(name, from: .active) }
                    }
                }
                throw error
            }
            return outcome
        }
    }

    public func quarantine(body: [UInt8], reason: String) async throws {
        let digest = Hex.encode(Crypto.sha256(body))
        let note = JSONWriter.object([
            ("reason", JSONWriter.string(reason)),
            ("receivedAt", JSONWriter.string(Timestamp.now().rfc3339)),
            ("bytes", Array(String(body.count).utf8)),
            ("sha256", JSONWriter.string(digest)),
            ("body", JSONWriter.string("\(digest).body")),
        ])
        try await self.io {
            try self.place(body, as: "\(digest).body", in: self.dirs.quarantine, label: "quarantine")
            try self.place(note, as: "\(digest).json", in: self.dirs.quarantine, label: "quarantine")
            try FileSystem.syncDirectory(self.dirs.quarantine, label: "quarantine/")
        }
    }

    public func event(id: String) async throws -> Event? {
        let name = StorageName.fileName(for: id)
        guard let bytes = try await self.io({ try FileSystem.readFile(named: name, in: self.dirs.events, label: "events/\(name)") }) else {
            return nil
        }
        return try Event(decoding: bytes)
    }

    public func job(id: String) async throws -> Job? {
        let name = StorageName.fileName(for: id)
        guard let bytes = try await self.io({ try FileSystem.readFile(named: name, in: self.dirs.jobs, label: "jobs/\(name)") }) else {
            return nil
        }
        return try Job(json: JSONValue(parsing: bytes))
    }

    public func checkHealth() async throws {
        try await self.io {
            let name = FileSystem.temporaryName()
            try FileSystem.writeNewFile(Array("ok".utf8), named: name, in: self.dirs.tmp, label: "tmp/\(name)")
            unlinkat(self.dirs.tmp, name, 0)
        }
    }

    /// Runs blocking work on the I/O threads, reporting file-system failures as `storage_unavailable`.
    func io<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await self.pool.run(work)
        } catch let error as SystemCallError {
            throw WebhookError(.storageUnavailable, "cannot write to the data directory: \(error)", underlying: error)
        }
    }
}

extension FileEventStore {
    /// Writes the body to `tmp/`, flushes it, and links it to `events/<name>`: the link is the claim.
    private func claim(_ body: [UInt8], as name: String) throws -> Outcome {
        let temporary = FileSystem.temporaryName()
        try FileSystem.writeNewFile(body, named: temporary, in: self.dirs.tmp, label: "tmp/\(temporary)")
        defer { unlinkat(self.dirs.tmp, temporary, 0) }
        if linkat(self.dirs.tmp, temporary, self.dirs.events, name, 0) < 0 {
            // An existing name was placed under this id's lock, or found durable at start-up.
            if errno == EEXIST { return .duplicate }
            throw SystemCallError(operation: "link", path: "events/\(name)", errno: errno)
        }
        do {
            try FileSystem.syncDirectory(self.dirs.events, label: "events/")
        } catch {
            unlinkat(self.dirs.events, name, 0)
            throw error
        }
        return .accepted
    }

    /// Takes back a claim whose job update failed, so a retry of the delivery is a fresh commit.
    private func unclaim(_ name: String) throws {
        unlinkat(self.dirs.events, name, 0)
        try FileSystem.syncDirectory(self.dirs.events, label: "events/")
    }

    /// Replaces `jobs/<jobId>.json` when `record` is later than what is stored.
    private func apply(_ record: JobRecord) throws {
        let name = StorageName.fileName(for: record.jobId)
        if let stored = try FileSystem.readFile(named: name, in: self.dirs.jobs, label: "jobs/\(name)"),
            let order = JobRecord.order(ofStored: stored), order >= record.order
        {
            return
        }
        try self.place(record.bytes, as: name, in: self.dirs.jobs, label: "jobs")
        try FileSystem.syncDirectory(self.dirs.jobs, label: "jobs/")
    }

    /// Writes `bytes` to `tmp/`, flushes it, and renames it over `name` in `directory`.
    func place(_ bytes: [UInt8], as name: String, in directory: Int32, label: String) throws {
        let temporary = FileSystem.temporaryName()
        try FileSystem.writeNewFile(bytes, named: temporary, in: self.dirs.tmp, label: "tmp/\(temporary)")
        if renameat(self.dirs.tmp, temporary, directory, name) < 0 {
            let error = SystemCallError(operation: "rename", path: "\(label)/\(name)", errno: errno)
            unlinkat(self.dirs.tmp, temporary, 0)
            throw error
        }
    }
}
