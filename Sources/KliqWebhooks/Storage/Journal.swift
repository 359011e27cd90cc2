#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One write the file store makes durable through its journal (`journal/`), before it is applied to
/// `events/`, `jobs/` and `ledger/`.
///
/// Each is self-contained and idempotent to apply again, so start-up can replay a journal whatever
/// part of it had already reached the files.
enum JournalRecord: Sendable {
    /// A newly claimed event: its body, and in the same step its job state and handler ledger entry,
    /// under its sequence number (0 in records written by 0.5.1, which had none).
    case event(name: String, body: [UInt8], job: JobWrite?, ledger: [UInt8]?, sequence: UInt64 = 0)
    /// A job state alone (a duplicate delivery repairing a state written by an older version).
    case job(JobWrite)
    /// A handler-ledger transition: the entry as it now is, on its shelf.
    case ledger(name: String, shelf: LedgerEntry.Shelf, bytes: [UInt8])

    /// A `jobs/<name>` document and the order that decides whether it replaces the stored one.
    struct JobWrite: Sendable {
        var name: String
        var bytes: [UInt8]
        var order: JobRecord.Order
    }

    /// Bytes this record occupies in a segment.
    var encodedSize: Int {
        switch self {
        case .event(let name, let body, let job, let ledger, _):
            return 8 + 1 + 4 * 6 + 8 + name.utf8.count + body.count + (job?.name.utf8.count ?? 0) + (job?.bytes.count ?? 0) + (ledger?.count ?? 0)
        case .job(let job):
            return 8 + 1 + 4 * 2 + job.name.utf8.count + job.bytes.count
        case .ledger(let name, _, let bytes):
            return 8 + 1 + 1 + 4 * 2 + name.utf8.count + bytes.count
        }
    }
}

/// The journal's on-disk format: segments `journal/<16-digit sequence>.log`, each starting with
/// ``magic`` and followed by records `u32 length | u32 CRC-32 of payload | payload` (little-endian).
/// A payload is a kind byte and length-prefixed fields. A record that is cut short or fails its
/// checksum ends its segment: it was being written when the process or machine stopped, so it was
/// never acknowledged.
enum JournalFormat {
    static let magic = Array("KLIQJNL1".utf8)

    static func segmentName(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".log"
    }

    /// The sequence number of a segment file name; `nil` for any other name.
    static func sequence(ofSegment name: String) -> UInt64? {
        guard name.hasSuffix(".log"), name.utf8.count == 20 else { return nil }
        return UInt64(name.dropLast(4))
    }

    static func append(_ record: JournalRecord, to buffer: inout [UInt8]) {
        let start = buffer.count
        buffer.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])
        func field(_ bytes: some Collection<UInt8>) {
            appendUInt32(UInt32(bytes.count), to: &buffer)
            buffer.append(contentsOf: bytes)
        }
        switch record {
        case .event(let name, let body, let job, let ledger, let sequence):
            buffer.append(4)
            field((0..<8).map { UInt8(truncatingIfNeeded: sequence >> (8 * $0)) })
            field(name.utf8)
            field(body)
            field((job?.name ?? "").utf8)
            field(job?.bytes ?? [])
            field(ledger ?? [])
        case .job(let job):
            buffer.append(2)
            field(job.name.utf8)
            field(job.bytes)
        case .ledger(let name, let shelf, let bytes):
            buffer.append(3)
            buffer.append(UInt8(LedgerEntry.Shelf.allCases.firstIndex(of: shelf)!))
            field(name.utf8)
            field(bytes)
        }
        let length = buffer.count - start - 8
        let crc = buffer.withUnsafeBufferPointer { CRC32.checksum(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: $0[(start + 8)...]))) }
        write(UInt32(length), at: start, in: &buffer)
        write(crc, at: start + 4, in: &buffer)
    }

    /// Whether `segment` starts like a segment this version writes. A file cut short before its
    /// header was complete (a crash while creating it) counts: it holds nothing.
    static func isReadable(_ segment: [UInt8]) -> Bool {
        let head = segment.prefix(magic.count)
        return head.elementsEqual(magic.prefix(head.count)) || head.allSatisfy { $0 == 0 }
    }

    /// The records of one segment, and the offset where its valid part ends.
    static func decode(_ segment: [UInt8]) -> (records: [JournalRecord], validLength: Int) {
        guard segment.count >= magic.count, Array(segment[0..<magic.count]) == magic else { return ([], 0) }
        var records: [JournalRecord] = []
        var offset = magic.count
        while segment.count - offset >= 8 {
            let length = Int(readUInt32(segment, at: offset))
            let crc = readUInt32(segment, at: offset + 4)
            let start = offset + 8
            guard length > 0, length <= segment.count - start else { break }
            let matches = segment.withUnsafeBufferPointer { CRC32.checksum(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: $0[start..<(start + length)]))) == crc }
            guard matches, let record = record(segment[start..<(start + length)]) else { break }
            records.append(record)
            offset = start + length
        }
        return (records, offset)
    }

    private static func record(_ payload: ArraySlice<UInt8>) -> JournalRecord? {
        var cursor = payload.startIndex
        func byte() -> UInt8? {
            guard cursor < payload.endIndex else { return nil }
            defer { cursor += 1 }
            return payload[cursor]
        }
        func field() -> [UInt8]? {
            guard payload.endIndex - cursor >= 4 else { return nil }
            let count = Int(readUInt32(payload, at: cursor))
            cursor += 4
            guard payload.endIndex - cursor >= count else { return nil }
            defer { cursor += count }
            return Array(payload[cursor..<(cursor + count)])
        }
        func job(_ name: [UInt8], _ bytes: [UInt8]) -> JournalRecord.JobWrite? {
            guard let order = JobRecord.order(ofStored: bytes) else { return nil }
            return .init(name: String(decoding: name, as: UTF8.self), bytes: bytes, order: order)
        }
        switch byte() {
        case 1, 4:
            // 4: with the sequence number first; 1: as 0.5.1 wrote it, without one.
            var sequence: UInt64 = 0
            if payload[payload.startIndex] == 4 {
                guard let bytes = field(), bytes.count == 8 else { return nil }
                sequence = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            guard let name = field(), let body = field(), let jobName = field(), let jobBytes = field(), let ledger = field(),
                cursor == payload.endIndex
            else { return nil }
            return .event(
                name: String(decoding: name, as: UTF8.self), body: body,
                job: jobName.isEmpty ? nil : job(jobName, jobBytes), ledger: ledger.isEmpty ? nil : ledger, sequence: sequence
            )
        case 2:
            guard let name = field(), let bytes = field(), cursor == payload.endIndex, let write = job(name, bytes) else { return nil }
            return .job(write)
        case 3:
            guard let shelfIndex = byte(), Int(shelfIndex) < LedgerEntry.Shelf.allCases.count,
                let name = field(), let bytes = field(), cursor == payload.endIndex
            else { return nil }
            return .ledger(name: String(decoding: name, as: UTF8.self), shelf: LedgerEntry.Shelf.allCases[Int(shelfIndex)], bytes: bytes)
        default:
            return nil
        }
    }

    private static func appendUInt32(_ value: UInt32, to buffer: inout [UInt8]) {
        buffer.append(UInt8(truncatingIfNeeded: value))
        buffer.append(UInt8(truncatingIfNeeded: value >> 8))
        buffer.append(UInt8(truncatingIfNeeded: value >> 16))
        buffer.append(UInt8(truncatingIfNeeded: value >> 24))
    }

    private static func write(_ value: UInt32, at offset: Int, in buffer: inout [UInt8]) {
        for k in 0..<4 { buffer[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }

    private static func readUInt32<C: RandomAccessCollection<UInt8>>(_ bytes: C, at offset: C.Index) -> UInt32 where C.Index == Int {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }
}

/// CRC-32 (IEEE 802.3, the one zlib and PNG use), table-driven, eight bytes per step.
enum CRC32 {
    private static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            tables[0][n] = c
        }
        for n in 0..<256 {
            for k in 1..<8 { tables[k][n] = (tables[k - 1][n] >> 8) ^ tables[0][Int(tables[k - 1][n] & 0xFF)] }
        }
        return tables
    }()
    private static let flat: [UInt32] = tables.flatMap { $0 }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        flat.withUnsafeBufferPointer { t in
            var index = 0
            let count = bytes.count
            while count - index >= 8 {
                let lo = crc ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
                crc = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(bytes[index + 4])] ^ t[2 * 256 + Int(bytes[index + 5])]
                    ^ t[1 * 256 + Int(bytes[index + 6])] ^ t[Int(bytes[index + 7])]
                index += 8
            }
            while index < count {
                crc = t[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        return crc ^ 0xFFFF_FFFF
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
