#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

extension FileEventStore {
    /// The open directories of a data directory, and the ownership lock. Closed when released.
    final class Directories: Sendable {
        let root: Int32
        let events: Int32
        let jobs: Int32
        /// `tracked/`: one file per awaited job, holding its id.
        let tracked: Int32
        let quarantine: Int32
        let tmp: Int32
        let journal: Int32
        /// `index/`: accepted events by sequence number (see ``EventIndex``).
        let index: Int32
        let eventIndex: EventIndex
        /// The ownership lock; -1 once released.
        private let lock: Atomic<Int32>
        private let lockIdentity: FileIdentity
        /// `ledger/active`, `ledger/done`, `ledger/dead`.
        let ledger: [LedgerEntry.Shelf: Int32]

        init(path: String) throws {
            try Self.createParents(of: path)
            let root = try FileSystem.openDirectory(path)
            var opened = [root]
            var taken: (fd: Int32, identity: FileIdentity)?
            do {
                func sub(_ name: String) throws -> Int32 {
                    let fd = try FileSystem.openDirectory(name, in: root, label: "\(path)/\(name)")
                    opened.append(fd)
                    return fd
                }
                self.events = try sub("events")
                self.jobs = try sub("jobs")
                self.tracked = try sub("tracked")
                self.quarantine = try sub("quarantine")
                self.tmp = try sub("tmp")
                self.journal = try sub("journal")
                self.index = try sub("index")
                self.eventIndex = EventIndex(directory: self.index)
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
                let (lockFD, identity) = try lock.get()
                self.lock = Atomic(lockFD)
                self.lockIdentity = identity
                taken = (lockFD, identity)
                self.root = root
                // Leftovers of writes cut short by a crash; never linked into place, so never acknowledged.
                for name in FileSystem.list("\(path)/tmp") { unlinkat(self.tmp, name, 0) }
                // Names that were visible but perhaps not yet flushed when a previous process died are made
                // durable before any of them can be reported as a duplicate.
                let shelfDirs = shelves.map { ($0.value, "ledger/\($0.key.rawValue)/") }
                for (fd, label) in [(self.events, "events/"), (self.jobs, "jobs/"), (self.quarantine, "quarantine/"), (self.journal, "journal/"), (self.index, "index/"), (root, path)] + shelfDirs {
                    try FileSystem.syncDirectory(fd, label: label)
                }
            } catch {
                for fd in opened { closeDescriptor(fd) }
                if let taken { Self.release(taken.fd, taken.identity) }
                throw error
            }
        }

        /// Gives up ownership of the data directory at once, whoever still holds these descriptors (the
        /// journal thread may drop its last reference a moment after the store is gone). Idempotent.
        func releaseOwnership() {
            let fd = self.lock.exchange(-1, ordering: .acquiringAndReleasing)
            if fd >= 0 { Self.release(fd, self.lockIdentity) }
        }

        private static func release(_ fd: Int32, _ identity: FileIdentity) {
            ownedInThisProcess.withLock { owned in
                closeDescriptor(fd)
                owned.remove(identity)
            }
        }

        deinit {
            self.releaseOwnership()
            for fd in [self.events, self.jobs, self.tracked, self.quarantine, self.tmp, self.journal, self.index, self.root] + Array(self.ledger.values) {
                closeDescriptor(fd)
            }
        }

        /// Opens `state/lock` and takes an exclusive `flock` on it, recording this process's id.
        ///
        /// A process this one starts (`Process`, `posix_spawn`) holds copies of every descriptor until it
        /// execs, including a lock just released here: a lock that names this process but that no store
        /// here owns is such a copy and is retried for a moment. A second store on a directory this
        /// process already owns is refused at once.
        private static func takeOwnership(state: Int32, label: String) throws -> (fd: Int32, identity: FileIdentity) {
            let fd = openat(state, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            try FileSystem.check(fd, "open", label)
            var info = stat()
            if fstat(fd, &info) < 0 {
                let code = errno
                closeDescriptor(fd)
                throw SystemCallError(operation: "fstat", path: label, errno: code)
            }
            let identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            let me = "\(getpid())"
            var pause: UInt32 = 500  // µs, doubling up to 50 ms; about 2 s in all
            var waited: UInt32 = 0
            while true {
                enum Attempt { case taken, ownedHere, failed(Int32) }
                let attempt = ownedInThisProcess.withLock { owned -> Attempt in
                    if owned.contains(identity) { return .ownedHere }
                    if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                        owned.insert(identity)
                        return .taken
                    }
                    return .failed(errno)
                }
                switch attempt {
                case .taken:
                    let pid = Array("\(me)\n".utf8)
                    ftruncate(fd, 0)
                    _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
                    return (fd, identity)
                case .ownedHere:
                    closeDescriptor(fd)
                    throw WebhookError(
                        .storageUnavailable,
                        "the data directory is already open in this process; release the other FileEventStore before opening it again"
                    )
                case .failed(let code) where code == EWOULDBLOCK:
                    let owner = Self.recordedOwner(fd)
                    if owner == me && waited < 2_000_000 {
                        usleep(pause)
                        waited += pause
                        pause = min(pause * 2, 50_000)
                        continue
                    }
                    closeDescriptor(fd)
                    if owner == me {
                        throw WebhookError(
                            .storageUnavailable,
                            "the data directory is still locked by a process this one started while it owned the directory; wait for that process to exit"
                        )
                    }
                    throw WebhookError(
                        .storageUnavailable,
                        "the data directory is in use by process \(owner ?? "another process"); stop it or choose another --data-dir"
                    )
                case .failed(let code):
                    closeDescriptor(fd)
                    throw SystemCallError(operation: "flock", path: label, errno: code)
                }
            }
        }

        /// The process id the owner wrote into `state/lock`, if any.
        private static func recordedOwner(_ fd: Int32) -> String? {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, 31, 0) }
            return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingSuffixNewlines() : nil
        }

        /// `mkdir -p` for the parents of `path` (mode 0700), each made durable in its parent; the last
        /// component is created by the caller.
        private static func createParents(of path: String) throws {
            var prefix = path.hasPrefix("/") ? "/" : ""
            let components = path.split(separator: "/")
            for component in components.dropLast() {
                prefix += component
                if mkdir(prefix, 0o700) == 0 {
                    try FileSystem.syncParent(of: prefix)
                } else if errno != EEXIST {
                    throw SystemCallError(operation: "mkdir", path: prefix, errno: errno)
                }
                prefix += "/"
            }
        }
    }
}

/// A file by device and inode.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
}

/// The data directories this process owns, by the identity of their `state/lock`.
private let ownedInThisProcess = Mutex<Set<FileIdentity>>([])

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
