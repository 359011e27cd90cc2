#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FileEventStore {
    /// The open directories of a data directory, and the ownership lock. Closed when released.
    final class Directories: Sendable {
        let root: Int32
        let events: Int32
        let jobs: Int32
        let quarantine: Int32
        let tmp: Int32
        let journal: Int32
        let lock: Int32
        /// `ledger/active`, `ledger/done`, `ledger/dead`.
        let ledger: [LedgerEntry.Shelf: Int32]

        init(path: String) throws {
            try Self.createParents(of: path)
            let root = try FileSystem.openDirectory(path)
            var opened = [root]
            do {
                func sub(_ name: String) throws -> Int32 {
                    let fd = try FileSystem.openDirectory(name, in: root, label: "\(path)/\(name)")
                    opened.append(fd)
                    return fd
                }
                self.events = try sub("events")
                self.jobs = try sub("jobs")
                self.quarantine = try sub("quarantine")
                self.tmp = try sub("tmp")
                self.journal = try sub("journal")
                let ledgerRoot = try FileSystem.openDirectory("ledger", in: root, label: "\(path)/ledger")
                defer { closeDescriptor(ledgerRoot) }
                var shelves: [LedgerEntry.Shelf: Int32] = [:]
                for shelf in LedgerEntry.Shelf.allCases {
                    let fd = try FileSystem.openDirectory(shelf.rawValue, in: ledgerRoot, label: "\(path)/ledger/\(shelf.rawValue)")
                    opened.append(fd)
                    shelves[shelf] = fd
                }
                self.ledger = shelves
                let state = try FileSystem.openDirectory("state", in: root, label: "\(path)/state")
                let lock = Result { try Self.takeOwnership(state: state, label: "\(path)/state/lock") }
                closeDescriptor(state)
                self.lock = try lock.get()
                opened.append(self.lock)
                self.root = root
                // Leftovers of writes cut short by a crash; never linked into place, so never acknowledged.
                for name in FileSystem.list("\(path)/tmp") { unlinkat(self.tmp, name, 0) }
                // Names that were visible but perhaps not yet flushed when a previous process died are made
                // durable before any of them can be reported as a duplicate.
                let shelfDirs = shelves.map { ($0.value, "ledger/\($0.key.rawValue)/") }
                for (fd, label) in [(self.events, "events/"), (self.jobs, "jobs/"), (self.quarantine, "quarantine/"), (self.journal, "journal/"), (root, path)] + shelfDirs {
                    try FileSystem.syncDirectory(fd, label: label)
                }
            } catch {
                for fd in opened { closeDescriptor(fd) }
                throw error
            }
        }

        deinit {
            for fd in [self.lock, self.events, self.jobs, self.quarantine, self.tmp, self.journal, self.root] + Array(self.ledger.values) { closeDescriptor(fd) }
        }

        /// Opens `state/lock` and takes an exclusive `flock` on it, recording this process's id.
        private static func takeOwnership(state: Int32, label: String) throws -> Int32 {
            let fd = openat(state, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            try FileSystem.check(fd, "open", label)
            if flock(fd, LOCK_EX | LOCK_NB) < 0 {
                let code = errno
                var buffer = [UInt8](repeating: 0, count: 32)
                let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 31, 0) }
                closeDescriptor(fd)
                let owner = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingSuffixNewlines() : "another process"
                if code == EWOULDBLOCK {
                    throw WebhookError(
                        .storageUnavailable,
                        "the data directory is in use by process \(owner); stop it or choose another --data-dir"
                    )
                }
                throw SystemCallError(operation: "flock", path: label, errno: code)
            }
            let pid = Array("\(getpid())\n".utf8)
            ftruncate(fd, 0)
            _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
            return fd
        }

        /// `mkdir -p` for the parents of `path` (mode 0700); the last component is created by the caller.
        private static func createParents(of path: String) throws {
            var prefix = path.hasPrefix("/") ? "/" : ""
            let components = path.split(separator: "/")
            for component in components.dropLast() {
                prefix += component
                if mkdir(prefix, 0o700) < 0, errno != EEXIST {
                    throw SystemCallError(operation: "mkdir", path: prefix, errno: errno)
                }
                prefix += "/"
            }
        }
    }
}

extension String {
    fileprivate func trimmingSuffixNewlines() -> String {
        var text = self
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }
}

/// `close(2)`; named apart from ``FileEventStore/close()``, which nested types would otherwise find first.
private func closeDescriptor(_ fd: Int32) {
    close(fd)
}
