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

/// Applying journal records to the files. Every record reaches the journal, flushed, before any of its
/// files are touched, so these writes need no flush of their own: each file is written to `tmp/` and
/// renamed or linked into place (readers only ever see whole files), and a crash before the next
/// checkpoint is repaired by replaying the journal at start-up.
extension FileEventStore.Directories {
    /// Applies a record that is durable in the journal. `replaying` is start-up: then files may
    /// already hold the record, in part or whole, or (after a power loss) be cut short, and applying
    /// repairs them.
    func apply(_ record: JournalRecord, replaying: Bool) throws -> Outcome {
        switch record {
        case .event(let name, let body, let job, let ledger, let sequence):
            if let ledger { try self.applyLedger(ledger, as: name, on: .active, replaying: replaying) }
            let outcome: Outcome
            if replaying {
                if try FileSystem.readFile(named: name, in: self.events, label: "events/\(name)") != body {
                    try self.place(body, as: name, in: self.events, label: "events")
                }
                outcome = .accepted
            } else {
                do {
                    outcome = try self.link(body, as: name)
                } catch {
                    if ledger != nil { self.unlinkLedger(name, from: .active) }
                    throw error
                }
                if outcome == .duplicate, ledger != nil { self.unlinkLedger(name, from: .active) }
            }
            if outcome == .accepted {
                do {
                    if let job { try self.applyJob(job) }
                    // Replaying into a directory whose index is still to be built: the build lists it.
                    if sequence > 0, !replaying || self.eventIndex.isComplete { try self.eventIndex.append(sequence: sequence, name: name) }
                } catch {
                    if !replaying {
                        unlinkat(self.events, name, 0)
                        if ledger != nil { self.unlinkLedger(name, from: .active) }
                    }
                    throw error
                }
            }
            return outcome
        case .job(let job):
            try self.applyJob(job)
            return .duplicate
        case .ledger(let name, let shelf, let bytes):
            try self.applyLedger(bytes, as: name, on: shelf, replaying: replaying)
            return .accepted
        }
    }

    /// Takes back what ``apply(_:replaying:)`` wrote for a record that is leaving the journal. A job
    /// state is not taken back: it is only ever replaced by a later one, which stays correct.
    func undo(_ record: JournalRecord) {
        if case .event(let name, _, _, let ledger, let sequence) = record {
            if sequence > 0 { self.eventIndex.withdraw(sequence: sequence) }
            unlinkat(self.events, name, 0)
            if ledger != nil { self.unlinkLedger(name, from: .active) }
        }
    }

    /// Writes the body to `tmp/` and links it to `events/<name>`. An existing name means a duplicate
    /// only when it holds a whole event with this id; an empty or partial file (left by a file system
    /// that lost unflushed data) is replaced, and the event is accepted again.
    private func link(_ body: [UInt8], as name: String) throws -> Outcome {
        let temporary = FileSystem.temporaryName()
        try FileSystem.writeNewFile(body, named: temporary, in: self.tmp, label: "tmp/\(temporary)", flush: false)
        defer { unlinkat(self.tmp, temporary, 0) }
        if linkat(self.tmp, temporary, self.events, name, 0) < 0 {
            guard errno == EEXIST else { throw SystemCallError(operation: "link", path: "events/\(name)", errno: errno) }
            let id = (try? Event(decoding: body))?.id ?? ""
            if try self.holdsWholeEvent(named: name, id: id) { return .duplicate }
            if renameat(self.tmp, temporary, self.events, name) < 0 {
                throw SystemCallError(operation: "rename", path: "events/\(name)", errno: errno)
            }
        }
        return .accepted
    }

    /// Whether `events/<name>` holds a whole stored event with id `id` (a JSON object that decodes
    /// as an event of that id), rather than an empty or cut-short file.
    func holdsWholeEvent(named name: String, id: String) throws -> Bool {
        guard let stored = try FileSystem.readFile(named: name, in: self.events, label: "events/\(name)") else { return false }
        return (try? Event(decoding: stored))?.id == id
    }

    /// Replaces `jobs/<name>` when `job` is later than what is stored (or what is stored is unreadable).
    private func applyJob(_ job: JournalRecord.JobWrite) throws {
        if let stored = try FileSystem.readFile(named: job.name, in: self.jobs, label: "jobs/\(job.name)"),
            let order = JobRecord.order(ofStored: stored), order >= job.order
        {
            return
        }
        try self.place(job.bytes, as: job.name, in: self.jobs, label: "jobs")
    }

    /// Puts a ledger entry on `shelf` and takes its older copies off the other shelves. Replaying, an
    /// entry is skipped when a copy with a higher revision exists (the transitions after it were applied).
    private func applyLedger(_ bytes: [UInt8], as name: String, on shelf: LedgerEntry.Shelf, replaying: Bool) throws {
        if replaying, let revision = (try? JSONDecoder().decode(LedgerEntry.self, from: Data(bytes)))?.revision,
            self.hasNewerLedgerCopy(of: name, than: revision)
        {
            return
        }
        try self.place(bytes, as: name, in: self.ledger[shelf]!, label: "ledger/\(shelf.rawValue)")
        for other in LedgerEntry.Shelf.allCases where other != shelf { self.unlinkLedger(name, from: other) }
    }

    private func unlinkLedger(_ name: String, from shelf: LedgerEntry.Shelf) {
        unlinkat(self.ledger[shelf]!, name, 0)
    }

    /// The ledger entry `name` on `shelf`, if there is one. - Throws: when it cannot be read or decoded.
    func readLedger(_ name: String, from shelf: LedgerEntry.Shelf) throws -> LedgerEntry? {
        guard let bytes = try FileSystem.readFile(named: name, in: self.ledger[shelf]!, label: "ledger/\(shelf.rawValue)/\(name)") else {
            return nil
        }
        return try JSONDecoder().decode(LedgerEntry.self, from: Data(bytes))
    }

    /// Whether a readable copy of ledger entry `name`, on any shelf, has a revision above `revision`:
    /// where a crash left two copies, the higher revision is the truth.
    func hasNewerLedgerCopy(of name: String, than revision: Int) -> Bool {
        LedgerEntry.Shelf.allCases.contains { shelf in ((try? self.readLedger(name, from: shelf))?.revision ?? -1) > revision }
    }

    /// Writes `bytes` to `tmp/` and renames it over `name` in `directory`; flushed first when `flush`.
    func place(_ bytes: [UInt8], as name: String, in directory: Int32, label: String, flush: Bool = false) throws {
        let temporary = FileSystem.temporaryName()
        try FileSystem.writeNewFile(bytes, named: temporary, in: self.tmp, label: "tmp/\(temporary)", flush: flush)
        if renameat(self.tmp, temporary, directory, name) < 0 {
            let error = SystemCallError(operation: "rename", path: "\(label)/\(name)", errno: errno)
            unlinkat(self.tmp, temporary, 0)
            throw error
        }
    }

    /// Replays every journal segment left by an earlier process into the files. Returns the sequence
    /// number for the next segment, and the replayed segments: they stay until a checkpoint has made
    /// the files durable (the committer starts one at once, in the background), so start-up never
    /// waits for a flush of the file system.
    func replayJournal() throws -> (next: UInt64, replayed: [UInt64], highestSequence: UInt64, files: Set<WrittenFile>) {
        let segments = FileSystem.list(at: self.journal).compactMap { name in JournalFormat.sequence(ofSegment: name).map { ($0, name) } }
            .sorted { $0.0 < $1.0 }
        guard let last = segments.last else { return (1, [], 0, []) }
        var highest: UInt64 = 0
        var files = Set<WrittenFile>()
        for (_, name) in segments {
            guard let bytes = try FileSystem.readFile(named: name, in: self.journal, label: "journal/\(name)") else { continue }
            // Never delete what this version cannot read (a segment from a newer version, say).
            guard JournalFormat.isReadable(bytes) else {
                throw WebhookError(
                    .storageUnavailable,
                    "journal/\(name) is not a journal segment this version can read; start the version that wrote it, which replays it"
                )
            }
            for record in JournalFormat.decode(bytes).records {
                if case .event(_, _, _, _, let sequence) = record { highest = max(highest, sequence) }
                files.formUnion(WrittenFile.of(record))
                _ = try self.apply(record, replaying: true)
            }
        }
        return (last.0 + 1, segments.map(\.0), highest, files)
    }
}
