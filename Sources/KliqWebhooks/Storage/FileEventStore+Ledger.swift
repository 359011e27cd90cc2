#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension FileEventStore {
    public func claim(handlers: Set<String>, owner: String, limit: Int, maxBytes: Int, lease: Duration) async throws -> [Claim] {
        let now = Timestamp.now()
        let items = self.index.withLock { $0.claim(handlers: handlers, owner: owner, limit: limit, maxBytes: maxBytes, now: now, until: now.adding(lease)) }
        var claims: [Claim] = []
        do {
            for item in items {
                guard let lease = item.lease else { continue }
                let cached = item.event
                guard var event = try await cached == nil ? self.event(id: item.entry.eventId) : cached else {
                    // Pruned or removed by hand: nothing left to deliver.
                    self.index.withLock { $0.remove(item.entry.eventId) }
                    continue
                }
                event.signature = item.entry.signature
                claims.append(Claim(event: event, deliveries: item.entry, owner: lease.owner, token: lease.token))
            }
        } catch {
            // Hand back what this call leased, so nothing waits for a lease to run out.
            self.index.withLock { index in
                for item in items { if let lease = item.lease { index.release(item.entry.eventId, owner: lease.owner, token: lease.token) } }
            }
            throw error
        }
        return claims
    }

    public func renew(_ claim: Claim, lease: Duration) async throws -> Bool {
        let until = Timestamp.now().adding(lease)
        return self.index.withLock { $0.renew(claim.event.id, owner: claim.owner, token: claim.token, until: until) }
    }

    public func settle(_ claim: Claim, outcomes: [String: DeliveryOutcome]) async throws -> Bool {
        let id = claim.event.id
        guard var entry = self.index.withLock({ $0.holds(id, owner: claim.owner, token: claim.token) ? $0.items[id]?.entry : nil }) else {
            return false
        }
        entry.record(outcomes, at: Timestamp.now())
        try await self.updateLedger(entry)
        self.index.withLock { index in
            if index.holds(id, owner: claim.owner, token: claim.token) {
                index.put(entry, sequence: entry.sequence ?? 0, bytes: claim.event.rawBody.count)
            }
        }
        return true
    }

    public func release(_ claim: Claim) async {
        self.index.withLock { $0.release(claim.event.id, owner: claim.owner, token: claim.token) }
    }

    public func pending(handlers: Set<String>) async throws -> Int {
        self.index.withLock { $0.pending(handlers: handlers) }
    }

    public func redrive(_ filter: RedriveFilter) async throws -> Int {
        let entries: [LedgerEntry]
        if let eventId = filter.eventId {
            entries = try await self.deliveries(eventId: eventId).map { [$0] } ?? []
        } else {
            // One pass over the shelf (paging through it would read it again for every page).
            entries = try await self.readShelf(.dead)
        }
        var count = 0
        for var entry in entries where entry.redrive(handler: filter.handler) {
            entry.revision += 1
            try await self.updateLedger(entry)
            let name = StorageName.fileName(for: entry.eventId)
            let bytes = try await self.io { [dirs] in FileSystem.size(of: name, in: dirs.events) }
            self.index.withLock { $0.put(entry, sequence: entry.sequence ?? 0, bytes: bytes) }
            count += 1
        }
        return count
    }

    /// Durably records a ledger transition, through the journal like an accept: the new shelf is
    /// written first, then the old copies are taken away; if both are ever seen, the higher revision wins.
    func updateLedger(_ entry: LedgerEntry) async throws {
        let name = StorageName.fileName(for: entry.eventId)
        let bytes = try Self.encode(entry)
        _ = try await self.committer.submit(.ledger(name: name, shelf: entry.shelf, bytes: bytes))
    }

    public func deliveries(eventId: String) async throws -> LedgerEntry? {
        let name = StorageName.fileName(for: eventId)
        return try await self.io {
            try LedgerEntry.Shelf.allCases.compactMap { try self.dirs.readLedger(name, from: $0) }.max { $0.revision < $1.revision }
        }
    }

    public func deliveries(on shelf: LedgerEntry.Shelf, after cursor: String?, limit: Int) async throws -> [LedgerEntry] {
        let entries = try await self.readShelf(shelf).filter { entry in cursor.map { entry.eventId > $0 } ?? true }
        return Array(entries.sorted { $0.eventId < $1.eventId }.prefix(limit))
    }

    /// Every entry on `shelf` (in no order), read in one pass; an older copy left beside a newer one on
    /// another shelf (a crash between the two writes of a transition) is not counted.
    private func readShelf(_ shelf: LedgerEntry.Shelf) async throws -> [LedgerEntry] {
        try await self.io {
            try FileSystem.list(at: self.dirs.ledger[shelf]!).filter { $0.hasSuffix(".json") }.compactMap { name in
                guard let entry = try self.dirs.readLedger(name, from: shelf), !self.dirs.hasNewerLedgerCopy(of: name, than: entry.revision) else {
                    return nil
                }
                return entry
            }
        }
    }

    static func encode(_ entry: LedgerEntry) throws -> [UInt8] {
        try entry.encodedJSON() + [0x0A]
    }

}

extension FileEventStore.Directories {
    /// The events with unsettled deliveries, read from `ledger/active/` at start-up (before anything
    /// else can touch the directory). An entry without its event was never acknowledged (the process
    /// died between the two writes of an accept) and goes; a copy superseded by a later one on another
    /// shelf goes too.
    func loadActiveDeliveries(cacheLimit: Int) throws -> DeliveryIndex {
        let active = self.ledger[.active]!
        var entries: [LedgerEntry] = []
        for name in FileSystem.list(at: active) where name.hasSuffix(".json") {
            let read = Result { try self.readLedger(name, from: .active) }
            guard case .success(let found) = read else {
                throw WebhookError(
                    .storageUnavailable,
                    "ledger/active/\(name) is not a ledger entry this version can read; move it out of the data directory (its event stays in events/) and start again"
                )
            }
            guard let entry = found else { continue }
            if self.hasNewerLedgerCopy(of: name, than: entry.revision) || faccessat(self.events, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0 {
                unlinkat(active, name, 0)
                continue
            }
            entries.append(entry)
        }
        try FileSystem.syncDirectory(active, label: "ledger/active/")
        var index = DeliveryIndex(cacheLimit: cacheLimit)
        // 0.5.1's entries have no sequence number: in acceptance order they come first.
        for entry in entries.sorted(by: LedgerEntry.acceptedBefore) {
            index.put(entry, sequence: entry.sequence ?? 0, bytes: FileSystem.size(of: StorageName.fileName(for: entry.eventId), in: self.events))
        }
        return index
    }
}
