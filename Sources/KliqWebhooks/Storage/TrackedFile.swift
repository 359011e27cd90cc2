#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// `tracked/<jobId>.json`: one file per awaited job, `{"jobId": …, "trackedAt": RFC 3339}`. Written by
/// the store and, while `serve` owns the directory, by `kliq-webhooks jobs track`/`jobs wait`: each
/// file is made under a hidden name in `tracked/` itself and linked into place, so a reader sees whole
/// files only, and a second track of one job keeps the first time. (A file written by 0.5.1 holds the
/// bare job id; its time is the file's.)
package enum TrackedFile {
    /// Tracks `jobId` in the open `tracked/` directory; a job tracked already keeps its time.
    package static func track(_ jobId: String, in directory: Int32, at date: Date = Date()) throws {
        let name = StorageName.fileName(for: jobId)
        let body = JSONWriter.object([("jobId", JSONWriter.string(jobId)), ("trackedAt", JSONWriter.string(Timestamp(date: date).rfc3339))])
        let temporary = "." + FileSystem.temporaryName()
        try FileSystem.writeNewFile(body + [0x0A], named: temporary, in: directory, label: "tracked/\(temporary)")
        let linked = linkat(directory, temporary, directory, name, 0)
        let failure = linked < 0 && errno != EEXIST ? SystemCallError(operation: "link", path: "tracked/\(name)", errno: errno) : nil
        unlinkat(directory, temporary, 0)
        if let failure { throw failure }
        if linked == 0 { try FileSystem.syncDirectory(directory, label: "tracked/") }
    }

    /// The tracked jobs in the open `tracked/` directory, in id order, after `cursor`.
    package static func list(in directory: Int32, after cursor: String?, limit: Int) -> [TrackedJob] {
        let jobs = FileSystem.list(at: directory).filter { !$0.hasPrefix(".") }.compactMap { name -> TrackedJob? in
            guard let bytes = try? FileSystem.readFile(named: name, in: directory, label: "tracked/\(name)") else { return nil }
            if let value = try? JSONValue(parsing: bytes), let id = value["jobId"]?.stringValue {
                let at = value["trackedAt"]?.stringValue.flatMap(Timestamp.init(rfc3339:)).map(\.date)
                return TrackedJob(jobId: id, trackedAt: at ?? self.modified(name, in: directory))
            }
            let id = String(decoding: bytes, as: UTF8.self)
            return id.isEmpty ? nil : TrackedJob(jobId: id, trackedAt: self.modified(name, in: directory))
        }
        return Array(jobs.filter { job in cursor.map { job.jobId > $0 } ?? true }.sorted { $0.jobId < $1.jobId }.prefix(limit))
    }

    private static func modified(_ name: String, in directory: Int32) -> Date {
        var info = stat()
        guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return Date() }
        return Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))
    }
}
