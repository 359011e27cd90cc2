#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The default store: local JSON files under one data directory, crash-safe and deduplicated on disk.
///
/// Layout (see the README's "Files" section):
/// - `events/<eventId>.json` — each accepted body, byte for byte;
/// - `jobs/<jobId>.json` — each job's latest state;
/// - `quarantine/<sha256>.body` + `<sha256>.json` — signed bodies that could not be understood, and why;
/// - `ledger/active|done|dead/<eventId>.json` — the handler ledger (see ``LedgerEntry``);
/// - `journal/<sequence>.log` — the write-ahead journal (see below);
/// - `index/<first sequence>.log` — accepted events by sequence number (see ``EventIndex``);
/// - `tmp/` — files being written (removed at start-up); `state/lock` — held while a process owns the directory.
///
/// **Group commit.** A commit or ledger transition is first appended to the journal; one thread writes
/// every record that arrived since its last flush with one `write` and one `fdatasync`, so a single disk
/// flush covers a whole burst of deliveries. Then it applies the records to the files — each written to
/// `tmp/` and linked (events: `link` fails if the name exists) or renamed (jobs, ledger) into place, so
/// a reader only ever sees whole files — and only then does ``commit(_:)`` return. The files are
/// made durable in the background by a checkpoint every ``Configuration/checkpointBytes`` of journal or
/// ``Configuration/checkpointInterval``: the file system is flushed, then every file the segment
/// produced and every directory it changed is `fsync`ed, and only then is the segment deleted.
/// Start-up replays any segment left, so a crash or a power cut at any point loses nothing that was
/// acknowledged (the README's "Crash model" says what is durable when).
///
/// One process at a time may own a data directory; a second one fails to open it.
///
/// ```swift
/// let store = try FileEventStore(directory: "./kliq-data")
/// ```
public final class FileEventStore: EventStore {
    /// Settings of a file store.
    public struct Configuration: Sendable {
        /// Threads that perform blocking file-system calls (reads, quarantine, health checks).
        public var ioThreads: Int
        /// A journal segment is checkpointed (the file system flushed, the segment deleted) once it
        /// holds this many bytes. Bounds the work start-up does after a crash.
        public var checkpointBytes: Int
        /// ... or once it is this old, whatever its size.
        public var checkpointInterval: Duration
        /// Bytes of event bodies kept in memory for events whose deliveries are unfinished, so the
        /// dispatcher's claims need not read them back from disk; beyond it, they are read back.
        public var pendingCacheBytes: Int
        public init(ioThreads: Int = 8, checkpointBytes: Int = 32 << 20, checkpointInterval: Duration = .seconds(30),
                    pendingCacheBytes: Int = 16 << 20) {
            self.pendingCacheBytes = pendingCacheBytes
            self.ioThreads = ioThreads
            self.checkpointBytes = checkpointBytes
            self.checkpointInterval = checkpointInterval
        }
    }

    /// The data directory.
    public let directory: String

    let dirs: Directories
    private let pool: BlockingPool
    let committer: GroupCommitter
    let eventLocks = KeyedLock()
    /// Held around the accept of a job's final state (see ``EventStore``'s "final state once").
    let jobLocks = KeyedLock()
    /// Hands out sequence numbers.
    let sequences: Sequencer
    /// Events with unsettled deliveries, and their leases (see ``DeliveryIndex``); built at start from
    /// `ledger/active/`.
    let index: Mutex<DeliveryIndex>

    /// Opens (creating if needed) the data directory, takes ownership of it, and replays the journal
    /// an earlier process left.
    /// - Throws: ``WebhookError`` with code ``WebhookError/Code/storageUnavailable`` when the directory
    ///   cannot be created or opened, or another process (or another store in this one) owns it. The
    ///   directory is owned until the store is released.
    public init(directory: String, configuration: Configuration = .init()) throws(WebhookError) {
        self.directory = directory
        do {
            let dirs = try Directories(path: directory)
            let replay = try dirs.replayJournal()
            let sequences = Sequencer()
            let checkpointer = GroupCommitter.Checkpointer(
                root: dirs.root, journal: dirs.journal, events: dirs.events, jobs: dirs.jobs, index: dirs.index,
                shelves: LedgerEntry.Shelf.allCases.map { dirs.ledger[$0]! }, highestSequence: { sequences.highest })
            var highest = max(replay.highestSequence, GroupCommitter.Checkpointer.storedSequence(in: checkpointer.state))
            if !dirs.eventIndex.isComplete {
                highest = try dirs.eventIndex.build(events: dirs.events, state: checkpointer.state, after: highest)
            }
            sequences.start(after: highest)
            self.sequences = sequences
            self.index = Mutex(try dirs.loadActiveDeliveries(cacheLimit: configuration.pendingCacheBytes))
            self.committer = try GroupCommitter(
                journal: dirs.journal, checkpointer: checkpointer, firstSequence: replay.next, replayed: replay.replayed, replayedFiles: replay.files,
                segmentLimit: configuration.checkpointBytes, checkpointInterval: configuration.checkpointInterval.seconds,
                hooks: .init(apply: { try dirs.apply($0, replaying: false) }, undo: { dirs.undo($0) })
            )
            self.dirs = dirs
        } catch let error as WebhookError {
            throw error
        } catch {
            throw WebhookError(.storageUnavailable, "cannot open data directory \(directory): \(error)", underlying: error)
        }
        self.pool = BlockingPool(threads: configuration.ioThreads)
    }

    deinit {
        // Quick: nothing is queued once the last reference is gone, and a running checkpoint is not
        // waited for. What was not checkpointed is replayed by the next start. The journal thread has
        // stopped writing once `stop` returns, but may let go of the committer (and so of `dirs`) a
        // moment later: ownership is handed back here, so the directory can be opened again at once.
        self.committer.stop(checkpoint: false)
        self.dirs.releaseOwnership()
    }

    /// Finishes pending writes, checkpoints the journal (so the next start has nothing to replay) and
    /// hands the data directory back: it can be opened again at once, by this process or another.
    /// Accepts after this throw ``WebhookError/Code/storageUnavailable``.
    public func close() async {
        try? await self.pool.run { self.committer.stop(checkpoint: true) }
        self.dirs.releaseOwnership()
    }

    public func accept(_ event: Event, handlers: [String]) async throws -> Acceptance {
        guard let record = JobRecord(event: event), record.status.isTerminal else {
            return try await self.accept(event, job: JobRecord(event: event), handlers: handlers)
        }
        // A final state: under its job's lock, so a webhook and a poll of one job cannot both see the
        // other's state missing (the job file is written before an accept returns).
        let jobName = StorageName.fileName(for: record.jobId)
        return try await self.jobLocks.withLock(jobName) {
            var handlers = handlers
            if !handlers.isEmpty, let stored = try await self.io({ try FileSystem.readFile(named: jobName, in: self.dirs.jobs, label: "jobs/\(jobName)") }),
                let final = JobRecord.finalState(ofStored: stored), record.repeatsFinalState(stored: final.status, storedFromPoll: final.fromPoll)
            {
                handlers = []
            }
            return try await self.accept(event, job: record, handlers: handlers)
        }
    }

    private func accept(_ event: Event, job record: JobRecord?, handlers: [String]) async throws -> Acceptance {
        let name = StorageName.fileName(for: event.id)
        let job = record.map { JournalRecord.JobWrite(name: StorageName.fileName(for: $0.jobId), bytes: $0.bytes, order: $0.order) }
        return try await self.eventLocks.withLock(name) {
            // Under this id's lock, in a directory this process owns, the existence check cannot race.
            // A name alone is not proof: a file system that lost unflushed data (a power cut on a
            // directory written by 0.5.1) can leave an empty or partial file behind, and such a file is
            // treated as absent — the event is stored again and answered `accepted`, never `duplicate`.
            if faccessat(self.dirs.events, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0,
                try await self.io({ try self.dirs.holdsWholeEvent(named: name, id: event.id) })
            {
                // A duplicate re-applies its job state: harmless when applied, a repair when a store
                // written by an older version lost it to a crash between two writes.
                if let job, try await self.io({ try self.jobNeedsUpdate(job) }) {
                    _ = try await self.committer.submit(.job(job))
                }
                return .duplicate
            }
            let sequence = self.sequences.next()
            let entry = handlers.isEmpty ? nil : LedgerEntry(event: event, handlers: handlers, acceptedAt: Timestamp.now().rfc3339, sequence: sequence)
            let record = JournalRecord.event(name: name, body: event.rawBody, job: job, ledger: try entry.map(Self.encode), sequence: sequence)
            guard try await self.committer.submit(record) == .accepted else { return .duplicate }
            if let entry { self.index.withLock { $0.put(entry, sequence: sequence, bytes: event.rawBody.count, event: event) } }
            return .accepted(sequence: sequence)
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
            try self.dirs.place(body, as: "\(digest).body", in: self.dirs.quarantine, label: "quarantine", flush: true)
            try self.dirs.place(note, as: "\(digest).json", in: self.dirs.quarantine, label: "quarantine", flush: true)
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

    public func events(after: UInt64, matching filter: EventFilter, limit: Int) async throws -> EventPage {
        try await self.io {
            try EventIndex.page(index: self.dirs.index, events: self.dirs.events, after: after, matching: filter, limit: limit)
        }
    }

    public func job(id: String) async throws -> Job? {
        let name = StorageName.fileName(for: id)
        guard let bytes = try await self.io({ try FileSystem.readFile(named: name, in: self.dirs.jobs, label: "jobs/\(name)") }) else {
            return nil
        }
        return try Job(json: JSONValue(parsing: bytes))
    }

    public func checkHealth() async throws {
        try self.committer.checkHealth()
        try await self.io {
            let name = FileSystem.temporaryName()
            try FileSystem.writeNewFile(Array("ok".utf8), named: name, in: self.dirs.tmp, label: "tmp/\(name)")
            unlinkat(self.dirs.tmp, name, 0)
        }
    }

    public func jobs(after cursor: String?, limit: Int) async throws -> JobPage {
        try await self.io {
            let names = FileSystem.list(at: self.dirs.jobs).filter { name in name.hasSuffix(".json") && cursor.map { name > $0 } ?? true }.sorted()
            let page = names.prefix(limit)
            let jobs = try page.compactMap { name -> Job? in
                guard let bytes = try FileSystem.readFile(named: name, in: self.dirs.jobs, label: "jobs/\(name)") else { return nil }
                return try Job(json: JSONValue(parsing: bytes))
            }
            return JobPage(jobs: jobs, next: names.count > limit ? page.last : nil)
        }
    }

    public func track(jobId: String) async throws {
        try await self.io { try TrackedFile.track(jobId, in: self.dirs.tracked) }
    }

    public func untrack(jobId: String) async throws {
        let name = StorageName.fileName(for: jobId)
        try await self.io {
            if unlinkat(self.dirs.tracked, name, 0) == 0 { try FileSystem.syncDirectory(self.dirs.tracked, label: "tracked/") }
        }
    }

    public func trackedJobs(after cursor: String?, limit: Int) async throws -> [TrackedJob] {
        try await self.io { TrackedFile.list(in: self.dirs.tracked, after: cursor, limit: limit) }
    }

    /// Runs blocking work on the I/O threads, reporting file-system failures as `storage_unavailable`.
    func io<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await self.pool.run(work)
        } catch let error as SystemCallError {
            throw error.storageError
        }
    }
}

extension FileEventStore {
    /// Whether `job` is later than the stored state of its job.
    private func jobNeedsUpdate(_ job: JournalRecord.JobWrite) throws -> Bool {
        guard let stored = try FileSystem.readFile(named: job.name, in: self.dirs.jobs, label: "jobs/\(job.name)"),
            let order = JobRecord.order(ofStored: stored)
        else { return true }
        return order < job.order
    }
}

/// The file store's sequence numbers: strictly increasing, continuing after the highest one the
/// journal or `state/sequence` holds at start-up.
final class Sequencer: Sendable {
    private let last = Atomic<UInt64>(0)

    /// Continues after `value`.
    func start(after value: UInt64) { self.last.store(value, ordering: .releasing) }
    /// The next number.
    func next() -> UInt64 { self.last.add(1, ordering: .acquiringAndReleasing).newValue }
    /// The highest number handed out so far.
    var highest: UInt64 { self.last.load(ordering: .acquiring) }
}
