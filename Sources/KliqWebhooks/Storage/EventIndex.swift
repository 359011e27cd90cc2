#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// `index/`: the file store's list of accepted events by sequence number, which
/// ``EventStore/events(after:matching:limit:)`` pages through without reading `events/` as a whole.
///
/// One file per 4,096 sequence numbers, `index/<first sequence, 16 digits>.log`, with a line per event:
/// `<sequence> <accepted at, ms since 1970> <file name in events/>`. The journal thread appends a line
/// as it applies an accepted record, so a file may hold lines slightly out of order (sequence numbers
/// are handed out before the journal write) and, after a replay, twice; readers sort and de-duplicate.
/// A record taken back out of the journal appends `-<sequence>`, which withdraws that line. A line a
/// crash cut short is ignored: the journal segment that wrote it is deleted only after a checkpoint has
/// made the index durable, so replay writes it again.
///
/// `index/complete` marks an index that covers every stored event. A data directory without it (new, or
/// written by 0.5.1, which kept no index) gets one built at start-up from `events/`, oldest file first,
/// numbered after the highest sequence number already handed out.
final class EventIndex: Sendable {
    static let bucketSize: UInt64 = 4096
    static let marker = "complete"

    let directory: Int32
    /// The bucket file the journal thread appends to, kept open.
    private let appending = Mutex<(bucket: UInt64, fd: Int32)?>(nil)

    init(directory: Int32) {
        self.directory = directory
    }

    deinit {
        if let open = self.appending.withLock({ $0 }) { close(open.fd) }
    }

    /// The bucket file name holding `sequence`.
    static func bucketName(of sequence: UInt64) -> String {
        let first = sequence / Self.bucketSize * Self.bucketSize
        let digits = String(first)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".log"
    }

    /// Whether the index covers every stored event (see ``EventIndex``).
    var isComplete: Bool { faccessat(self.directory, Self.marker, F_OK, 0) == 0 }

    /// Appends the line of an accepted event, accepted now (journal thread, or start-up replay).
    func append(sequence: UInt64, name: String) throws {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let milliseconds = Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
        try self.write(Array("\(sequence) \(milliseconds) \(name)\n".utf8), bucketOf: sequence)
    }

    /// Withdraws the line of `sequence`: its record left the journal. Best effort: were it lost, the
    /// event's name would be listed twice if the same id is accepted again.
    func withdraw(sequence: UInt64) {
        try? self.write(Array("-\(sequence)\n".utf8), bucketOf: sequence)
    }

    private func write(_ line: [UInt8], bucketOf sequence: UInt64) throws {
        let bucket = sequence / Self.bucketSize
        try self.appending.withLock { open in
            if open?.bucket != bucket {
                if let previous = open { close(previous.fd) }
                open = nil
                let name = Self.bucketName(of: sequence)
                let fd = openat(self.directory, name, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
                try FileSystem.check(fd, "open", "index/\(name)")
                // A line cut short by a crash is ended, so the next one starts on its own line.
                var last: UInt8 = 0x0A
                let size = lseek(fd, 0, SEEK_END)
                if size > 0, pread(fd, &last, 1, size - 1) == 1, last != 0x0A { _ = Glibc.write(fd, [0x0A], 1) }
                open = (bucket, fd)
            }
            let fd = open!.fd
            let count = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
            if count != line.count {
                throw SystemCallError(operation: "write", path: "index/\(Self.bucketName(of: sequence))", errno: count < 0 ? errno : EIO)
            }
        }
    }

    /// One line, as read back.
    struct Entry {
        var sequence: UInt64
        var milliseconds: Int64
        var name: String
    }

    /// The entries of one bucket file, by sequence, each once, withdrawn ones left out.
    static func entries(of bytes: [UInt8]) -> [Entry] {
        var entries: [UInt64: Entry] = [:]
        var withdrawn: Set<UInt64> = []
        for line in bytes.split(separator: 0x0A) {
            let fields = line.split(separator: 0x20)
            if fields.count == 1, fields[0].first == UInt8(ascii: "-"), let sequence = UInt64(String(decoding: fields[0].dropFirst(), as: UTF8.self)) {
                withdrawn.insert(sequence)
                continue
            }
            guard fields.count == 3, let sequence = UInt64(String(decoding: fields[0], as: UTF8.self)),
                let milliseconds = Int64(String(decoding: fields[1], as: UTF8.self)), fields[2].count > 5
            else { continue }
            entries[sequence] = Entry(sequence: sequence, milliseconds: milliseconds, name: String(decoding: fields[2], as: UTF8.self))
        }
        return entries.values.filter { !withdrawn.contains($0.sequence) }.sorted { $0.sequence < $1.sequence }
    }

    /// A page of ``EventStore/events(after:matching:limit:)``, reading at most `scanLimit` event files
    /// (by default 1,000, or four times `limit`).
    static func page(index: Int32, events: Int32, after: UInt64, matching filter: EventFilter, limit: Int, scanLimit: Int? = nil) throws -> EventPage {
        let limit = max(limit, 1)
        let scanLimit = scanLimit ?? max(4 * limit, 1000)
        let first = after / Self.bucketSize * Self.bucketSize
        let buckets = FileSystem.list(at: index).filter { $0.hasSuffix(".log") && $0 >= Self.bucketName(of: first) }.sorted()
        var page: [EventSummary] = []
        var examined = 0
        for bucket in buckets {
            guard let bytes = try FileSystem.readFile(named: bucket, in: index, label: "index/\(bucket)") else { continue }
            for entry in Self.entries(of: bytes) where entry.sequence > after {
                // Everything before this entry has been looked at (and `examined` > 0, so the cursor moves).
                if examined >= scanLimit { return EventPage(events: page, next: entry.sequence - 1) }
                examined += 1
                guard let body = try FileSystem.readFile(named: entry.name, in: events, label: "events/\(entry.name)"),
                    let event = try? Event(decoding: body), StorageName.fileName(for: event.id) == entry.name
                else { continue }  // pruned since
                let summary = EventSummary(
                    sequence: entry.sequence, id: event.id, type: event.type, jobId: event.jobId,
                    acceptedAt: Date(timeIntervalSince1970: Double(entry.milliseconds) / 1000))
                guard filter.matches(summary) else { continue }
                if page.count == limit { return EventPage(events: page, next: page.last!.sequence) }
                page.append(summary)
            }
        }
        return EventPage(events: page, next: nil)
    }

    /// Builds the index of a data directory that has none (see ``EventIndex``): every file in `events/`,
    /// oldest first, numbered after `highest`. Returns the highest sequence number it gave, which the
    /// caller must keep handing out after (it is also written to `state/sequence` before the index is
    /// marked complete).
    func build(events: Int32, state: Int32, after highest: UInt64) throws -> UInt64 {
        for name in FileSystem.list(at: self.directory) { unlinkat(self.directory, name, 0) }
        var files: [(seconds: Int, nanoseconds: Int, name: String)] = []
        for name in FileSystem.list(at: events) where name.hasSuffix(".json") {
            var info = stat()
            guard fstatat(events, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            files.append((Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), name))
        }
        files.sort { ($0.seconds, $0.nanoseconds, $0.name) < ($1.seconds, $1.nanoseconds, $1.name) }
        var sequence = highest
        var lines: [UInt8] = []
        func flush() throws {
            guard !lines.isEmpty else { return }
            let name = Self.bucketName(of: sequence)
            try FileSystem.writeNewFile(lines, named: name, in: self.directory, label: "index/\(name)")
            lines.removeAll(keepingCapacity: true)
        }
        for file in files {
            if (sequence + 1) % Self.bucketSize == 0 { try flush() }
            sequence += 1
            lines += Array("\(sequence) \(file.seconds * 1000 + file.nanoseconds / 1_000_000) \(file.name)\n".utf8)
        }
        try flush()
        if sequence > highest { try GroupCommitter.Checkpointer.storeSequence(sequence, in: state) }
        try FileSystem.writeNewFile([], named: Self.marker, in: self.directory, label: "index/\(Self.marker)")
        try FileSystem.syncDirectory(self.directory, label: "index/")
        return sequence
    }
}
