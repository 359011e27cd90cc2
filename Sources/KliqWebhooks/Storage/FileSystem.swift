#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKliqSystem

#if canImport(Glibc)
typealias DirectoryStream = OpaquePointer
#else
typealias DirectoryStream = UnsafeMutablePointer<DIR>
#endif

/// A failed system call: which operation, on what, and `errno`.
struct SystemCallError: Error, Sendable, CustomStringConvertible {
    var operation: String
    var path: String
    var errno: Int32

    var description: String { "\(self.operation) \(self.path): \(String(cString: strerror(self.errno))) (errno \(self.errno))" }

    /// As the store reports it: `storage_unavailable`, naming the call and the file.
    var storageError: WebhookError {
        WebhookError(.storageUnavailable, "cannot write to the data directory: \(self)", underlying: self)
    }
}

/// Thin wrappers over the POSIX calls the file store needs. Every path below a directory descriptor is a
/// single validated file name, opened with `O_NOFOLLOW`, so nothing leaves the data directory.
enum FileSystem {
    static func check(_ result: Int32, _ operation: String, _ path: String) throws(SystemCallError) {
        if result < 0 { throw SystemCallError(operation: operation, path: path, errno: errno) }
    }

    /// Creates `path` (mode 0700) unless it exists, then opens it as a directory. A directory it
    /// creates is made durable in its parent (a power cut cannot take the new name back).
    static func openDirectory(_ path: String, create: Bool = true) throws(SystemCallError) -> Int32 {
        if create {
            if mkdir(path, 0o700) == 0 {
                try syncParent(of: path)
            } else if errno != EEXIST {
                throw SystemCallError(operation: "mkdir", path: path, errno: errno)
            }
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        try check(fd, "open directory", path)
        return fd
    }

    /// Creates the sub-directory `name` of `parent` (mode 0700) unless it exists, then opens it. A
    /// directory it creates is made durable in `parent`.
    static func openDirectory(_ name: String, in parent: Int32, label: String) throws(SystemCallError) -> Int32 {
        if mkdirat(parent, name, 0o700) == 0 {
            try check(fsync(parent), "fsync directory", label)
        } else if errno != EEXIST {
            throw SystemCallError(operation: "mkdir", path: label, errno: errno)
        }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
        try check(fd, "open directory", label)
        return fd
    }

    /// Writes `bytes` to a new file `name` in `directory` (mode 0600) and, unless `flush` is false (the
    /// journal already holds them), flushes it to disk.
    static func writeNewFile(_ bytes: [UInt8], named name: String, in directory: Int32, label: String, flush: Bool = true) throws(SystemCallError) {
        let fd = openat(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        try check(fd, "create", label)
        var failure: SystemCallError?
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = SystemCallError(operation: "write", path: label, errno: errno)
                    return
                }
                offset += written
            }
        }
        if failure == nil, flush, fsync(fd) < 0 { failure = SystemCallError(operation: "fsync", path: label, errno: errno) }
        close(fd)
        if let failure {
            unlinkat(directory, name, 0)
            throw failure
        }
    }

    /// Reads the whole file `name` in `directory`; `nil` when it does not exist.
    static func readFile(named name: String, in directory: Int32, label: String) throws(SystemCallError) -> [UInt8]? {
        let fd = openat(directory, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SystemCallError(operation: "open", path: label, errno: errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(operation: "read", path: label, errno: errno)
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    /// The size of file `name` in `directory`; 0 when it cannot be read.
    static func size(of name: String, in directory: Int32) -> Int {
        var info = stat()
        guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return 0 }
        return Int(info.st_size)
    }

    /// Flushes the entries of the directory holding `path` (its name there) to disk.
    static func syncParent(of path: String) throws(SystemCallError) {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        let parent = trimmed.lastIndex(of: "/").map { $0 == trimmed.startIndex ? "/" : String(trimmed[..<$0]) } ?? "."
        let fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try check(fd, "open directory", parent)
        defer { close(fd) }
        try check(fsync(fd), "fsync directory", parent)
    }

    /// Flushes a directory's entries (new names, renames, unlinks) to disk.
    static func syncDirectory(_ fd: Int32, label: String) throws(SystemCallError) {
        try check(fsync(fd), "fsync directory", label)
    }

    /// Flushes every file and directory of the file system holding `fd` (one call, however many files).
    static func syncFileSystem(_ fd: Int32, label: String) throws(SystemCallError) {
        try check(ckliq_syncfs(fd), "syncfs", label)
    }

    /// The names in a directory (no `.`/`..`).
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        return names(in: dir)
    }

    /// The names in the open directory `fd` (no `.`/`..`).
    static func list(at fd: Int32) -> [String] {
        let copy = dup(fd)
        guard copy >= 0 else { return [] }
        guard let dir = fdopendir(copy) else {
            close(copy)
            return []
        }
        rewinddir(dir)
        return names(in: dir)
    }

    /// Reads every entry of `dir`, then closes it.
    private static func names(in dir: DirectoryStream) -> [String] {
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A fresh, unpredictable temporary file name.
    static func temporaryName() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 36) + String(UInt64.random(in: 0...UInt64.max), radix: 36) + ".tmp"
    }
}
