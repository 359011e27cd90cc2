#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

extension FileEventStore {
    /// Removes `events/` files accepted (written) before `cutoff` whose ledger entry is absent or done,
    /// with that `ledger/done/` entry, and quarantined bodies kept since before `cutoff`. Events with
    /// active or dead handler deliveries are kept (they are still to be delivered or re-driven); `jobs/`
    /// keeps every job's latest state.
    public func prune(acceptedBefore cutoff: Date) async throws -> Int {
        let limit = cutoff.timeIntervalSince1970
        return try await self.io {
            func older(_ name: String, in directory: Int32) -> Bool {
                var info = stat()
                guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
                return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9 < limit
            }
            func exists(_ name: String, on shelf: LedgerEntry.Shelf) -> Bool {
                faccessat(self.dirs.ledger[shelf]!, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0
            }
            var removed = 0
            for name in FileSystem.list(self.directory + "/events") where name.hasSuffix(".json") && older(name, in: self.dirs.events) {
                if exists(name, on: .active) || exists(name, on: .dead) { continue }
                // No per-id lock: a commit of an id this old is a replay, refused by the replay window
                // (``RetentionService`` requires one) before it reaches the store.
                if unlinkat(self.dirs.events, name, 0) != 0 {
                    guard errno == ENOENT else { throw SystemCallError(operation: "unlink", path: "events/\(name)", errno: errno) }
                    continue
                }
                _ = unlinkat(self.dirs.ledger[.done]!, name, 0)  // may have none
                removed += 1
            }
            var quarantined = 0
            for name in FileSystem.list(self.directory + "/quarantine") where older(name, in: self.dirs.quarantine) {
                if unlinkat(self.dirs.quarantine, name, 0) == 0 { quarantined += 1 }
            }
            if removed > 0 {
                try FileSystem.syncDirectory(self.dirs.events, label: "events/")
                try FileSystem.syncDirectory(self.dirs.ledger[.done]!, label: "ledger/done/")
            }
            if quarantined > 0 { try FileSystem.syncDirectory(self.dirs.quarantine, label: "quarantine/") }
            return removed
        }
    }
}
