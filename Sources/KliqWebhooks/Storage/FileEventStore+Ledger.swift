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

extension FileEventStore {
    public func updateLedger(_ entry: LedgerEntry) async throws {
        let name = StorageName.fileName(for: entry.eventId)
        let bytes = try Self.encode(entry)
        // Through the journal, like a commit: the new shelf is written first, then the old copies are
        // taken away; if both are ever seen, the higher revision wins when they are read.
        _ = try await self.committer.submit(.ledger(name: name, shelf: entry.shelf, bytes: bytes))
    }

    public func ledgerEntry(eventId: String) async throws -> LedgerEntry? {
        let name = StorageName.fileName(for: eventId)
        return try await self.io {
            try LedgerEntry.Shelf.allCases.compactMap { try self.readLedger(name, from: $0) }.max { $0.revision < $1.revision }
        }
    }

    public func ledgerEntries(on shelf: LedgerEntry.Shelf) async throws -> [LedgerEntry] {
        var (entries, orphans) = try await self.io {
            var entries: [LedgerEntry] = []
            var orphans: [(name: String, entry: LedgerEntry)] = []
            for name in FileSystem.list(self.directory + "/ledger/" + shelf.rawValue) where name.hasSuffix(".json") {
                guard let entry = try self.readLedger(name, from: shelf) else { continue }
                if shelf == .active {
                    // An entry without its event: a commit still in flight (its entry is written first),
                    // or one that was never acknowledged. Which, is decided below under the id's lock.
                    if faccessat(self.dirs.events, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0 {
                        orphans.append((name, entry))
                        continue
                    }
                    // Superseded by a later copy on another shelf (a crash between the two writes of an update).
                    let newer = try [LedgerEntry.Shelf.done, .dead].compactMap { try self.readLedger(name, from: $0) }
                        .contains { $0.revision > entry.revision }
                    if newer {
                        try self.removeLedger(name, from: .active)
                        continue
                    }
                }
                entries.append(entry)
            }
            return (entries, orphans)
        }
        for (name, entry) in orphans {
            // No commit of this id is in flight while its lock is held: an event still missing was never
            // stored, so its entry was never acknowledged and goes; one stored meanwhile counts.
            let stored = try await self.eventLocks.withLock(name) {
                try await self.io {
                    if faccessat(self.dirs.events, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 { return true }
                    try self.removeLedger(name, from: .active)
                    return false
                }
            }
            if stored, let current = try await self.ledgerEntry(eventId: entry.eventId), current.shelf == .active { entries.append(current) }
        }
        return entries.sorted(by: LedgerEntry.acceptedBefore)
    }

    static func encode(_ entry: LedgerEntry) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(entry)) + [0x0A]
    }

    func removeLedger(_ name: String, from shelf: LedgerEntry.Shelf) throws {
        let dir = self.dirs.ledger[shelf]!
        if unlinkat(dir, name, 0) == 0 {
            try FileSystem.syncDirectory(dir, label: "ledger/\(shelf.rawValue)/")
        } else if errno != ENOENT {
            throw SystemCallError(operation: "unlink", path: "ledger/\(shelf.rawValue)/\(name)", errno: errno)
        }
    }

    func readLedger(_ name: String, from shelf: LedgerEntry.Shelf) throws -> LedgerEntry? {
        guard let bytes = try FileSystem.readFile(named: name, in: self.dirs.ledger[shelf]!, label: "ledger/\(shelf.rawValue)/\(name)") else {
            return nil
        }
        return try JSONDecoder().decode(LedgerEntry.self, from: Data(bytes))
    }
}
