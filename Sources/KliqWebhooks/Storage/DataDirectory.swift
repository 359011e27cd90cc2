#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A request to re-drive dead (or named) handler deliveries, for the process that owns a data directory.
package struct RedriveRequest: Sendable, Codable, Hashable {
    /// One event, or `nil` for every dead one.
    package var eventId: String?
    /// One handler, or `nil` for every dead delivery of the event(s).
    package var handler: String?

    package init(eventId: String?, handler: String?) {
        self.eventId = eventId
        self.handler = handler
    }
}

/// Read-only access to a data directory that may be owned by a running `serve`, plus its `inbox/` of
/// re-drive requests. Reading takes no lock: every file is renamed into place whole, so a reader sees the
/// old or the new version, and a file that vanishes between listing and reading is skipped.
package struct DataDirectory: Sendable {
    package let path: String

    package init(path: String) {
        self.path = path
    }

    /// The process that owns the directory, if one does (it holds the `flock` on `state/lock`).
    package var owner: Int32? {
        let fd = open(self.path + "/state/lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 31, 0) }
        return Int32(String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).filter(\.isNumber)) ?? -1
    }

    package var exists: Bool {
        var info = stat()
        return stat(self.path + "/events", &info) == 0
    }

    package func ledgerEntries(on shelf: LedgerEntry.Shelf) -> [LedgerEntry] {
        FileSystem.list("\(self.path)/ledger/\(shelf.rawValue)").filter { $0.hasSuffix(".json") }
            .compactMap { self.read("ledger/\(shelf.rawValue)/\($0)").flatMap(Self.decode) }
            .sorted(by: LedgerEntry.acceptedBefore)
    }

    package func ledgerEntry(eventId: String) -> LedgerEntry? {
        let name = StorageName.fileName(for: eventId)
        return LedgerEntry.Shelf.allCases.compactMap { self.read("ledger/\($0.rawValue)/\(name)").flatMap(Self.decode) }
            .max { $0.revision < $1.revision }
    }

    package func eventBody(id: String) -> [UInt8]? {
        self.read("events/" + StorageName.fileName(for: id))
    }

    package func jobDocument(id: String) -> [UInt8]? {
        self.read("jobs/" + StorageName.fileName(for: id))
    }

    /// A page of accepted events by sequence number (see ``EventStore/events(after:matching:limit:)``);
    /// `nil` when the directory has no complete `index/` yet (written by 0.5.1 and not opened since).
    package func acceptedEvents(after: UInt64, matching filter: EventFilter, limit: Int) throws -> EventPage? {
        guard let index = try? FileSystem.openDirectory(self.path + "/index", create: false) else { return nil }
        defer { close(index) }
        guard faccessat(index, EventIndex.marker, F_OK, 0) == 0 else { return nil }
        let events = try FileSystem.openDirectory(self.path + "/events", create: false)
        defer { close(events) }
        return try EventIndex.page(index: index, events: events, after: after, matching: filter, limit: limit)
    }

    /// Every stored job document.
    package func jobDocuments() -> [[UInt8]] {
        FileSystem.list(self.path + "/jobs").filter { $0.hasSuffix(".json") }.compactMap { self.read("jobs/" + $0) }
    }

    /// Drops `request` into `inbox/` for the owning process; returns the file name it was given.
    package func submit(_ request: RedriveRequest) throws -> String {
        let inbox = try FileSystem.openDirectory(self.path + "/inbox")
        defer { close(inbox) }
        let name = "redrive-" + FileSystem.temporaryName().dropLast(4) + ".json"
        let temporary = "." + name + ".part"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeNewFile(Array(try encoder.encode(request)) + [0x0A], named: temporary, in: inbox, label: "inbox/\(temporary)")
        try FileSystem.check(renameat(inbox, temporary, inbox, name), "rename", "inbox/\(name)")
        try FileSystem.syncDirectory(inbox, label: "inbox/")
        return name
    }

    /// Drops a job state `kliq-webhooks jobs reconcile` polled (the event's body) into `inbox/`, for the
    /// owning `serve` to store and dispatch; returns the file name it was given.
    package func submitPolled(_ body: [UInt8]) throws -> String {
        let inbox = try FileSystem.openDirectory(self.path + "/inbox")
        defer { close(inbox) }
        let name = "polled-" + FileSystem.temporaryName().dropLast(4) + ".json"
        let temporary = "." + name + ".part"
        try FileSystem.writeNewFile(body, named: temporary, in: inbox, label: "inbox/\(temporary)")
        try FileSystem.check(renameat(inbox, temporary, inbox, name), "rename", "inbox/\(name)")
        try FileSystem.syncDirectory(inbox, label: "inbox/")
        return name
    }

    /// The polled job states waiting in the inbox (for the owning process), with their file names. Each
    /// is removed by ``done(_:)`` once stored, so one that could not be stored stays for later.
    package func polledStates() -> [(name: String, body: [UInt8])] {
        FileSystem.list(self.path + "/inbox").filter { $0.hasPrefix("polled-") && $0.hasSuffix(".json") }.compactMap { name in
            self.read("inbox/" + name).map { (name, $0) }
        }
    }

    /// Removes a polled state taken from the inbox.
    package func done(_ name: String) { unlink(self.path + "/inbox/" + name) }

    /// Tracks `jobId` in `tracked/` (as ``EventStore/track(jobId:)`` does), also while `serve` owns the directory.
    package func track(_ jobId: String) throws {
        let fd = try FileSystem.openDirectory(self.path + "/tracked")
        defer { close(fd) }
        try TrackedFile.track(jobId, in: fd)
    }

    /// The tracked jobs, in id order.
    package func trackedJobs() -> [TrackedJob] {
        guard let fd = try? FileSystem.openDirectory(self.path + "/tracked", create: false) else { return [] }
        defer { close(fd) }
        return TrackedFile.list(in: fd, after: nil, limit: .max)
    }

    /// Whether a submitted request is still waiting in the inbox.
    package func isWaiting(_ name: String) -> Bool {
        access(self.path + "/inbox/" + name, F_OK) == 0
    }

    /// Takes every request from the inbox (for the owning process): reads and removes them, oldest first.
    package func takeRequests() -> [RedriveRequest] {
        let names = FileSystem.list(self.path + "/inbox").filter { $0.hasPrefix("redrive-") && $0.hasSuffix(".json") }
        var requests: [(Int, RedriveRequest)] = []
        for name in names {
            let path = self.path + "/inbox/" + name
            var info = stat()
            let time = stat(path, &info) == 0 ? Int(info.st_mtim.tv_sec) : 0
            if let bytes = self.read("inbox/" + name), let request = try? JSONDecoder().decode(RedriveRequest.self, from: Data(bytes)) {
                requests.append((time, request))
            }
            unlink(path)
        }
        return requests.sorted { $0.0 < $1.0 }.map(\.1)
    }

    private func read(_ relative: String) -> [UInt8]? {
        let parts = relative.split(separator: "/")
        guard let dir = try? FileSystem.openDirectory(self.path + "/" + parts.dropLast().joined(separator: "/"), create: false) else { return nil }
        defer { close(dir) }
        return (try? FileSystem.readFile(named: String(parts.last!), in: dir, label: relative)) ?? nil
    }

    private static func decode(_ bytes: [UInt8]) -> LedgerEntry? {
        try? JSONDecoder().decode(LedgerEntry.self, from: Data(bytes))
    }
}
