#if canImport(Glibc)
import Glibc
#endif
import CKliqSystem

extension GroupCommitter {
    /// What a checkpoint needs, on descriptors of its own: a checkpoint still running when the store
    /// is released keeps these open, never the data directory's ownership lock.
    ///
    /// A segment is deleted only once every file its records produced is known durable. The file
    /// system is flushed in bulk (`syncfs`), and every directory that gained or lost a name is
    /// `fsync`ed. Where `syncfs` is known to write back and flush everything and to report failures —
    /// ext4, XFS and Btrfs (Linux 5.8 and later report writeback errors from `syncfs`), and tmpfs, which
    /// has nothing to flush — that is all. Anywhere else (FUSE, network and overlay file systems),
    /// `syncfs` may not reach the storage, so each file the segments wrote is `fsync`ed itself before
    /// they are deleted (``fsyncsEveryFile``): slower, never silently unsafe.
    final class Checkpointer: Sendable {
        let root: Int32
        let journal: Int32
        /// `events/`, `jobs/`, and the ledger shelves, by the shelf's position in `Shelf.allCases`.
        let events: Int32
        let jobs: Int32
        /// `index/` (see ``EventIndex``).
        let index: Int32
        let shelves: [Int32]
        /// `state/`, where the highest sequence number handed out is kept once segments are deleted.
        let state: Int32
        /// The highest sequence number handed out so far (at least every one the segments hold).
        let highestSequence: @Sendable () -> UInt64

        init(root: Int32, journal: Int32, events: Int32, jobs: Int32, index: Int32, shelves: [Int32], highestSequence: @escaping @Sendable () -> UInt64) {
            self.root = dup(root)
            self.index = dup(index)
            self.journal = dup(journal)
            self.events = dup(events)
            self.jobs = dup(jobs)
            self.shelves = shelves.map { dup($0) }
            self.state = openat(root, "state", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
            self.highestSequence = highestSequence
            self.fsyncsEveryFile = !Self.syncfsIsTrusted(root)
        }

        /// Whether checkpoints `fsync` each file the segments wrote (see ``Checkpointer``).
        let fsyncsEveryFile: Bool

        /// Whether the file system holding `fd` is one whose `syncfs` writes back, flushes and reports
        /// errors for everything: ext4, XFS, Btrfs, tmpfs.
        static func syncfsIsTrusted(_ fd: Int32) -> Bool {
            let trusted: Set<UInt64> = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994]
            return trusted.contains(UInt64(ckliq_fs_type(fd)))
        }

        deinit {
            for fd in [self.root, self.journal, self.events, self.jobs, self.index, self.state] + self.shelves { Glibc.close(fd) }
        }

        /// `state/sequence`: the highest sequence number handed out, as decimal text; 0 when absent.
        static func storedSequence(in state: Int32) -> UInt64 {
            guard let bytes = try? FileSystem.readFile(named: "sequence", in: state, label: "state/sequence") else { return 0 }
            return UInt64(String(decoding: bytes.filter { (0x30...0x39).contains($0) }, as: UTF8.self)) ?? 0
        }

        /// Durably replaces `state/sequence` with `sequence`.
        static func storeSequence(_ sequence: UInt64, in state: Int32) throws {
            let temporary = FileSystem.temporaryName()
            try FileSystem.writeNewFile(Array("\(sequence)\n".utf8), named: temporary, in: state, label: "state/sequence")
            try FileSystem.check(renameat(state, temporary, state, "sequence"), "rename", "state/sequence")
            try FileSystem.syncDirectory(state, label: "state/")
        }

        /// Everything in `segments` has been applied to the files, which are `files`: make those files
        /// durable, then delete the segments. - Returns: whether they were deleted (if not, they stay for
        /// the next checkpoint or start-up, which re-applies them).
        func run(_ segments: [UInt64], files: Set<WrittenFile>) -> Bool {
            let sequence = self.highestSequence()
            let active = LedgerEntry.Shelf.allCases
            do {
                try FileSystem.syncFileSystem(self.root, label: "data directory")
                for file in files where self.fsyncsEveryFile {
                    switch file.folder {
                    case .events: try Self.syncFile(file.name, in: self.events)
                    case .jobs: try Self.syncFile(file.name, in: self.jobs)
                    case .index: try Self.syncFile(file.name, in: self.index)
                    case .ledger(let shelf): try Self.syncFile(file.name, in: self.shelves[active.firstIndex(of: shelf)!])
                    }
                }
                for directory in [self.events, self.jobs, self.index] + self.shelves {
                    try FileSystem.syncDirectory(directory, label: "data directory")
                }
                // Sequence numbers keep increasing across restarts once the segments holding them are gone.
                if sequence > Self.storedSequence(in: self.state) { try Self.storeSequence(sequence, in: self.state) }
            } catch {
                return false
            }
            for sequence in segments { unlinkat(self.journal, JournalFormat.segmentName(sequence), 0) }
            fsync(self.journal)
            return true
        }

        /// `fsync` of one file. A file that is gone was replaced, moved or pruned by a later record,
        /// which a later checkpoint covers.
        private static func syncFile(_ name: String, in directory: Int32) throws {
            let fd = openat(directory, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            if fd < 0 {
                if errno == ENOENT { return }
                throw SystemCallError(operation: "open", path: name, errno: errno)
            }
            defer { Glibc.close(fd) }
            if fsync(fd) < 0 { throw SystemCallError(operation: "fsync", path: name, errno: errno) }
        }
    }
}

/// A file a journal record wrote: its folder and name.
struct WrittenFile: Hashable, Sendable {
    enum Folder: Hashable, Sendable {
        case events, jobs, index
        case ledger(LedgerEntry.Shelf)
    }

    var folder: Folder
    var name: String

    /// The files `record` wrote: the event body, the job state, the ledger entry, the index bucket.
    static func of(_ record: JournalRecord) -> [WrittenFile] {
        switch record {
        case .event(let name, _, let job, let ledger, let sequence):
            return [WrittenFile(folder: .events, name: name)] + (job.map { [WrittenFile(folder: .jobs, name: $0.name)] } ?? [])
                + (ledger == nil ? [] : [WrittenFile(folder: .ledger(.active), name: name)])
                + (sequence == 0 ? [] : [WrittenFile(folder: .index, name: EventIndex.bucketName(of: sequence))])
        case .job(let job):
            return [WrittenFile(folder: .jobs, name: job.name)]
        case .ledger(let name, let shelf, _):
            return [WrittenFile(folder: .ledger(shelf), name: name)]
        }
    }
}
