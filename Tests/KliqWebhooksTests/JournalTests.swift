#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Synchronization
import Testing

/// The write-ahead journal behind the file store's group commit: its format, its replay at start-up,
/// and what a failed write leaves behind.
struct JournalTests {
    let dir = TemporaryDirectory()

    /// Check values from Python's `zlib.crc32` (the first three are the classic CRC-32 check strings).
    @Test(arguments: [
        ("", 0x0000_0000), ("a", 0xE8B7_BE43), ("123456789", 0xCBF4_3926),
        ("The quick brown fox jumps over the lazy dog", 0x414F_A339),
    ] as [(String, UInt32)])
    func crc32MatchesZlib(_ text: String, _ expected: UInt32) {
        #expect(CRC32.checksum(Array(text.utf8)) == expected)
    }

    @Test func crc32MatchesZlibAcrossTheEightByteSteps() {
        // bytes(range(256)) * 4 in Python: zlib.crc32 == 0xb70b4c26; exercises the 8-byte loop and the tail.
        let bytes = (0..<4).flatMap { _ in (0...255).map(UInt8.init) }
        #expect(CRC32.checksum(bytes) == 0xB70B_4C26)
        #expect(CRC32.checksum(Array(bytes.prefix(13))) != CRC32.checksum(Array(bytes.prefix(12))))
    }

    static func job(_ eventId: String, status: String = "completed", at time: String = "2026-04-28T12:00:00Z") throws -> JournalRecord.JobWrite {
        let event = try Event(decoding: envelope(id: eventId, jobId: "job_j", status: status, timestamp: time))
        let record = try #require(JobRecord(event: event))
        return .init(name: StorageName.fileName(for: record.jobId), bytes: record.bytes, order: record.order)
    }

    static func segment(_ records: [JournalRecord]) -> [UInt8] {
        var bytes = JournalFormat.magic
        for record in records { JournalFormat.append(record, to: &bytes) }
        return bytes
    }

    @Test func recordsRoundTripAndReportTheirSize() throws {
        let records: [JournalRecord] = [
            .event(name: "evt_1.json", body: envelope(id: "evt_1"), job: try Self.job("evt_1"), ledger: Array("{}".utf8), sequence: 1 << 40 | 7),
            .event(name: "evt_2.json", body: envelope(id: "evt_2"), job: nil, ledger: nil),
            .job(try Self.job("evt_3")),
            .ledger(name: "evt_1.json", shelf: .done, bytes: Array(#"{"revision":1}"#.utf8)),
        ]
        let bytes = Self.segment(records)
        #expect(bytes.count == JournalFormat.magic.count + records.map(\.encodedSize).reduce(0, +))
        let decoded = JournalFormat.decode(bytes)
        #expect(decoded.validLength == bytes.count)
        #expect(decoded.records.count == 4)
        guard case .event(let name, let body, let job, let ledger, let sequence) = decoded.records[0] else { Issue.record("not an event"); return }
        #expect(name == "evt_1.json" && body == envelope(id: "evt_1") && ledger == Array("{}".utf8) && sequence == 1 << 40 | 7)
        let expectedOrder = try Self.job("evt_1").order
        #expect(job?.name == "job_j.json" && job?.order == expectedOrder)
        guard case .event(_, _, nil, nil, 0) = decoded.records[1] else { Issue.record("optional parts not kept empty"); return }
        let expectedJob = try Self.job("evt_3").bytes
        guard case .job(let alone) = decoded.records[2], alone.bytes == expectedJob else { Issue.record("job"); return }
        guard case .ledger("evt_1.json", .done, let entry) = decoded.records[3], entry == Array(#"{"revision":1}"#.utf8) else {
            Issue.record("ledger")
            return
        }
    }

    /// A record cut short at any byte, or with any byte flipped, ends the segment there: the records
    /// before it are kept, nothing after it is believed.
    @Test func aTornOrDamagedTailEndsTheSegmentAtTheLastWholeRecord() throws {
        let first: JournalRecord = .event(name: "evt_a.json", body: envelope(id: "evt_a"), job: try Self.job("evt_a"), ledger: nil)
        let second: JournalRecord = .event(name: "evt_b.json", body: envelope(id: "evt_b"), job: nil, ledger: nil)
        let whole = Self.segment([first, second])
        let boundary = Self.segment([first]).count
        for cut in boundary..<whole.count {
            let decoded = JournalFormat.decode(Array(whole.prefix(cut)))
            #expect(decoded.records.count == 1 && decoded.validLength == boundary, "cut at \(cut)")
        }
        for flip in boundary..<whole.count {
            var damaged = whole
            damaged[flip] ^= 0x20
            #expect(JournalFormat.decode(damaged).records.count == 1, "byte \(flip) flipped")
        }
        #expect(JournalFormat.decode(Array("NOTAJRNL".utf8) + whole.dropFirst(8)).records.isEmpty)
        #expect(JournalFormat.decode(whole).records.count == 2)
    }

    /// As if the process died after flushing the journal but before touching the files, or the machine
    /// lost power and the files it had written came back empty: opening the store replays the journal.
    @Test func startUpReplaysTheJournalAndRepairsWhatItFinds() async throws {
        try FileManager.default.createDirectory(atPath: self.dir.file("journal"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: self.dir.file("events"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: self.dir.file("jobs"), withIntermediateDirectories: true)
        let ledgerActive = #"{"acceptedAt":"2026-04-28T12:00:00Z","eventId":"evt_new","eventType":"cv.job.completed","handlers":{"h":{"attempts":0,"budgetStart":0,"failures":[],"status":"pending"}},"revision":0}"#
        let records: [JournalRecord] = [
            .event(name: "evt_new.json", body: envelope(id: "evt_new", timestamp: "2026-04-28T12:00:00Z"), job: try Self.job("evt_new"),
                   ledger: Array((ledgerActive + "\n").utf8)),
            .event(name: "evt_empty.json", body: envelope(id: "evt_empty", timestamp: "2026-04-28T11:00:00Z"), job: nil, ledger: nil),
        ]
        // A second, older-sequence segment: replayed first, so the later job state still wins.
        let older: [JournalRecord] = [.job(try Self.job("evt_old", at: "2026-04-28T10:00:00Z"))]
        try Data(Self.segment(older)).write(to: URL(fileURLWithPath: self.dir.file("journal/0000000000000006.log")))
        try Data(Self.segment(records) + [0x13, 0x00]).write(to: URL(fileURLWithPath: self.dir.file("journal/0000000000000007.log")))
        // evt_empty came back empty after a power loss; the job file is torn.
        #expect(FileManager.default.createFile(atPath: self.dir.file("events/evt_empty.json"), contents: Data()))
        #expect(FileManager.default.createFile(atPath: self.dir.file("jobs/job_j.json"), contents: Data(#"{"id":"job_j","sta"#.utf8)))

        let store = try FileEventStore(directory: self.dir.path)
        #expect(self.dir.contents("events/evt_new.json") == envelope(id: "evt_new", timestamp: "2026-04-28T12:00:00Z"))
        #expect(self.dir.contents("events/evt_empty.json") == envelope(id: "evt_empty", timestamp: "2026-04-28T11:00:00Z"))
        let newJob = try Self.job("evt_new").bytes
        #expect(self.dir.contents("jobs/job_j.json") == newJob)
        #expect(self.dir.names("ledger/active") == ["evt_new.json"])
        // Replayed; made durable and deleted by a background checkpoint; the new segment is numbered after them.
        #expect(try await eventually { self.dir.names("journal") == ["0000000000000008.log"] })
        _ = store
    }

    /// Where the journal that could repair it is gone (a directory written by 0.5.1, whose checkpoint
    /// trusted `syncfs`), an empty or cut-short events file is not proof of an accepted event: the same
    /// delivery is accepted again, stored whole, and only then answered `duplicate`.
    @Test(arguments: [[], Array(#"{"id":"evt_lost","type":"cv.jo"#.utf8), Array(#"{"id":"evt_other","type":"x"}"#.utf8)])
    func anEmptyOrCutShortEventFileIsNeverADuplicate(leftover: [UInt8]) async throws {
        try FileManager.default.createDirectory(atPath: self.dir.file("events"), withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: self.dir.file("events/evt_lost.json"), contents: Data(leftover)))
        let store = try FileEventStore(directory: self.dir.path)
        let body = envelope(id: "evt_lost")
        #expect(try await store.commit(try Event(decoding: body)) == .accepted)
        #expect(self.dir.contents("events/evt_lost.json") == body)
        #expect(try await store.commit(try Event(decoding: body)) == .duplicate)
        #expect(try await store.job(id: "job_1")?.eventId == "evt_lost")
    }

    /// A segment this version cannot read stops start-up with a clear error and is kept; a segment cut
    /// short while its header was written holds nothing and is simply replaced.
    /// Checkpoints trust `syncfs` only on file systems where it flushes everything and reports errors;
    /// anywhere else (here: procfs, standing in for FUSE or NFS) they `fsync` each file themselves.
    @Test func checkpointsTrustSyncfsOnlyWhereItFlushes() throws {
        let temporary = open(self.dir.path, O_RDONLY | O_DIRECTORY)
        defer { close(temporary) }
        #expect(GroupCommitter.Checkpointer.syncfsIsTrusted(temporary), "the test directory's file system (ext4 or tmpfs here)")
        let proc = open("/proc", O_RDONLY | O_DIRECTORY)
        defer { close(proc) }
        #expect(!GroupCommitter.Checkpointer.syncfsIsTrusted(proc))
    }

    /// An active ledger entry this version cannot read stops start-up with an error naming it, and is
    /// kept: its deliveries are never silently dropped.
    @Test func anUnreadableLedgerEntryIsKeptAndRefusedClearly() async throws {
        try FileManager.default.createDirectory(atPath: self.dir.file("ledger/active"), withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: self.dir.file("ledger/active/evt_x.json"), contents: Data(#"{"eventId":"evt_x""#.utf8)))
        #expect {
            _ = try FileEventStore(directory: self.dir.path)
        } throws: { error in
            let error = error as? WebhookError
            return error?.code == .storageUnavailable && error?.message.contains("ledger/active/evt_x.json") == true
        }
        #expect(self.dir.names("ledger/active") == ["evt_x.json"])
    }

    @Test func anUnreadableSegmentIsKeptAndRefusedClearly() async throws {
        try FileManager.default.createDirectory(atPath: self.dir.file("journal"), withIntermediateDirectories: true)
        let foreign = Array("KLIQJNL9".utf8) + [1, 2, 3]
        try Data(foreign).write(to: URL(fileURLWithPath: self.dir.file("journal/0000000000000003.log")))
        #expect {
            _ = try FileEventStore(directory: self.dir.path)
        } throws: { error in
            let error = error as? WebhookError
            return error?.code == .storageUnavailable && error?.message.contains("journal/0000000000000003.log") == true
        }
        #expect(self.dir.contents("journal/0000000000000003.log") == foreign)

        try Data(Array("KLIQ".utf8)).write(to: URL(fileURLWithPath: self.dir.file("journal/0000000000000003.log")))
        let store = try FileEventStore(directory: self.dir.path)
        #expect(try await eventually { self.dir.names("journal") == ["0000000000000004.log"] })
        withExtendedLifetime(store) {}
    }

    /// The checkpoint of a replayed journal runs in the background on descriptors of its own: releasing
    /// the store does not wait for it, and the directory can be opened again at once — even when the
    /// journal thread lets go of its last reference a moment after the store is gone (which, before
    /// the store handed its lock back itself, failed within a few rounds on a busy machine).
    @Test func releasingAStoreNeverWaitsForItsCheckpointNorKeepsTheDirectory() async throws {
        let rounds = 60
        for round in 0..<rounds {
            let store = try FileEventStore(directory: self.dir.path)
            for k in 0..<4 { _ = try await store.commit(Event(decoding: envelope(id: "evt_r\(round)_\(k)"))) }
            // A read on the I/O threads last: nor may they hold the store a moment longer.
            #expect(try await store.event(id: "evt_r\(round)_0") != nil)
        }
        let reopened = try FileEventStore(directory: self.dir.path)
        for round in 0..<rounds { #expect(try await reopened.event(id: "evt_r\(round)_3") != nil) }
        #expect(try await eventually { self.dir.names("journal").count == 1 })
    }

    /// Replaying a commit never drags a handler-ledger entry back to an earlier revision.
    @Test func replayKeepsALaterLedgerRevision() async throws {
        let ran = Mutex(0)
        do {
            let store = try FileEventStore(directory: self.dir.path)
            let receiver = try makeReceiver(store: store)
            receiver.onAny(name: "h") { _ in ran.withLock { $0 += 1 } }
            try await withRunningReceiver(receiver) {
                try await receiver.deliver(fixtures.load("observation.created"), signedWith: signer)
            }
            #expect(try await store.deliveries(eventId: "evt_obs_created_0001")?.shelf == .done)
        }
        // Released without a checkpoint: the journal still holds the commit (active, revision 0) and
        // the transition to done, and the next start replays both over files that already have them.
        let segment = try #require(self.dir.names("journal").first)
        #expect(JournalFormat.decode(try #require(self.dir.contents("journal/\(segment)"))).records.count >= 2)
        let reopened = try FileEventStore(directory: self.dir.path)
        #expect(try await reopened.deliveries(eventId: "evt_obs_created_0001")?.shelf == .done)
        #expect(self.dir.names("ledger/active").isEmpty)
        #expect(try await reopened.allDeliveries(on: .active).isEmpty)
        #expect(ran.withLock { $0 } == 1)
    }

    /// Many concurrent commits share flushes: fewer flushes than records, every record durable and applied.
    @Test func concurrentCommitsShareJournalFlushes() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        let count = 400
        let outcomes = try await withThrowingTaskGroup(of: Outcome.self) { group in
            for k in 0..<count {
                group.addTask { try await store.commit(Event(decoding: envelope(id: "evt_g\(k)", jobId: "job_g\(k % 7)"))) }
            }
            return try await group.reduce(into: [Outcome]()) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { $0 == .accepted })
        #expect(self.dir.names("events").count == count)
        let flushes = store.committer.flushes.load(ordering: .relaxed)
        #expect(store.committer.records.load(ordering: .relaxed) == count)
        #expect(flushes < count, "\(flushes) flushes for \(count) commits")
        #expect(self.dir.names("tmp").isEmpty)
    }

    /// A full segment is checkpointed in the background: the journal stays small and nothing is lost.
    @Test func fullSegmentsAreCheckpointedAndDeleted() async throws {
        do {
            let store = try FileEventStore(directory: self.dir.path, configuration: .init(checkpointBytes: 16 << 10))
            for k in 0..<60 { _ = try await store.commit(Event(decoding: envelope(id: "evt_c\(k)"))) }
            #expect(try await eventually { self.dir.names("journal").count <= 2 && self.dir.names("journal") != ["0000000000000001.log"] })
            let sequences = self.dir.names("journal").compactMap(JournalFormat.sequence(ofSegment:))
            #expect(sequences.allSatisfy { $0 > 1 }, "\(sequences)")
            await store.close()
            #expect(self.dir.names("journal").isEmpty)
            await #expect(throws: WebhookError.self) { try await store.commit(Event(decoding: envelope(id: "evt_after_close"))) }
        }
        let reopened = try FileEventStore(directory: self.dir.path)
        #expect(try await reopened.event(id: "evt_c59") != nil)
        #expect(try await reopened.commit(Event(decoding: envelope(id: "evt_c0"))) == .duplicate)
    }

    /// A record whose files cannot be written is taken back out of the journal: the commit fails, a
    /// restart does not resurrect it, and the other commits of its batch are unharmed.
    @Test func aCommitWhoseFilesFailLeavesNothingInTheJournal() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        // A directory where the job file must go: the rename over it fails.
        try FileManager.default.createDirectory(atPath: self.dir.file("jobs/job_blocked.json"), withIntermediateDirectories: false)
        async let blocked: Outcome = store.commit(Event(decoding: envelope(id: "evt_blocked", jobId: "job_blocked")))
        async let fine = store.commit(Event(decoding: envelope(id: "evt_fine", jobId: "job_fine")))
        #expect(try await fine == .accepted)
        do {
            _ = try await blocked
            Issue.record("a commit whose job file cannot be written was accepted")
        } catch let error as WebhookError {
            #expect(error.code == .storageUnavailable)
        }
        #expect(!self.dir.names("events").contains("evt_blocked.json"))
        #expect(self.dir.names("events").contains("evt_fine.json"))
        let journal = try self.dir.names("journal").flatMap { try JournalFormat.decode(#require(self.dir.contents("journal/\($0)"))).records }
        let names = journal.compactMap { record -> String? in if case .event(let name, _, _, _, _) = record { name } else { nil } }
        #expect(names == ["evt_fine.json"])

        try FileManager.default.removeItem(atPath: self.dir.file("jobs/job_blocked.json"))
        #expect(try await store.commit(Event(decoding: envelope(id: "evt_blocked", jobId: "job_blocked"))) == .accepted)
    }
}
