#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import Synchronization

/// Group commit for the file store: one thread appends every record that arrived since its last
/// flush to the journal with a single write and a single `fdatasync`, applies them to the files, and
/// only then resumes each caller. One disk flush covers a whole batch, however many deliveries arrived
/// meanwhile; under no load a batch is one record and a commit costs one flush.
///
/// Segments are checkpointed in the background: when the current one is large or old, a new one is
/// started, the files the older segments produced are made durable (see ``Checkpointer``), and the
/// older segments are deleted. Start-up replays
/// whatever segments are left, so its cost depends on the un-checkpointed tail, never on history.
///
/// A failed write or flush is rolled back (the segment is truncated to where the batch began) and
/// every caller of the batch gets the error; a record whose files cannot be applied is taken back out
/// of the journal, so a failed commit leaves nothing behind. If the journal itself cannot be put right,
/// the committer refuses all further work until the process restarts (start-up repairs it).
///
/// Sendable, checked by hand: what callers and the checkpoint thread share is in `shared` (a `Mutex`
/// and semaphores); every other stored property is either immutable or touched only by the committer
/// thread (`segment`, `sequence`, `size`, `openedAt`, `retired`, `encoded`), which starts in `init`
/// after they are set and is the only code that reads or writes them afterwards.
final class GroupCommitter: @unchecked Sendable {
    /// How the committer applies records to the files and takes one back.
    struct Hooks: Sendable {
        var apply: @Sendable (JournalRecord) throws -> Outcome
        var undo: @Sendable (JournalRecord) -> Void
    }

    private struct Pending {
        var record: JournalRecord
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    /// What callers, the committer thread and the checkpoint thread share.
    private struct State {
        var queue: [Pending] = []
        var stopped = false
        var finished = false
        var checkpointOnStop = false
        var broken: WebhookError?
        var checkpointRunning = false
        /// Segments a background checkpoint deleted; `retired` belongs to the committer thread, so the
        /// checkpoint thread hands them over here.
        var forgotten: Set<UInt64> = []
    }

    private final class Shared: Sendable {
        let state = Mutex(State())
        /// Signalled for each submitted record and for `stop`: the committer thread's wake-up.
        let work = DispatchSemaphore(value: 0)
        /// Signalled when the committer thread has finished (each waiter passes it on).
        let finished = DispatchSemaphore(value: 0)
        /// Signalled when a background checkpoint ends.
        let checkpointEnded = DispatchSemaphore(value: 0)
    }

    private let shared = Shared()

    /// Journal flushes so far, and the records they made durable (records / flushes is the batch size).
    let flushes = Atomic<Int>(0)
    let records = Atomic<Int>(0)

    // Owned by the committer thread.
    private let journal: Int32
    private let hooks: Hooks
    private let checkpointer: Checkpointer
    private let segmentLimit: Int
    private let interval: Double
    private let maxBatchBytes = 16 << 20
    private var segment: Int32 = -1
    private var sequence: UInt64
    private var size = 0
    private var openedAt = 0.0
    private var retired: [UInt64] = []
    /// The files each segment's records wrote, kept by the committer thread as it applies them (names
    /// only: a checkpoint never reads a segment back).
    private var written: [UInt64: Set<WrittenFile>] = [:]
    private var encoded: [UInt8] = []

    /// Starts the committer on a fresh segment `firstSequence` in the open `journal/` directory of the
    /// data directory `root`. `replayed` are segments an earlier process left, already applied to the
    /// files: they are checkpointed in the background at once.
    init(journal: Int32, checkpointer: Checkpointer, firstSequence: UInt64, replayed: [UInt64], replayedFiles: Set<WrittenFile>,
         segmentLimit: Int, checkpointInterval: Double, hooks: Hooks) throws {
        self.journal = journal
        self.hooks = hooks
        self.checkpointer = checkpointer
        self.retired = replayed
        if let first = replayed.first { self.written[first] = replayedFiles }
        self.segmentLimit = segmentLimit
        self.interval = checkpointInterval
        self.sequence = firstSequence
        try self.openSegment()
        // Unowned: the owner's `stop` waits for this thread, so it never outlives the committer. (While
        // `loop` runs it holds the committer strongly; the store hands back its ownership lock itself.)
        if !replayed.isEmpty {
            self.shared.state.withLock { $0.checkpointRunning = true }
            self.startCheckpoint(replayed)
        }
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "kliq-journal"
        thread.start()
    }

    /// Makes `record` durable and applies it; returns what applying it decided.
    func submit(_ record: JournalRecord) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let refusal = self.shared.state.withLock { state -> WebhookError? in
                if let broken = state.broken ?? (state.stopped ? WebhookError(.storageUnavailable, "the store is closed") : nil) { return broken }
                state.queue.append(Pending(record: record, continuation: continuation))
                return nil
            }
            if let refusal {
                continuation.resume(throwing: refusal)
            } else {
                self.shared.work.signal()
            }
        }
    }

    /// Throws when the journal could not be repaired after a failure (for readiness).
    func checkHealth() throws {
        if let broken = self.shared.state.withLock({ $0.broken }) { throw broken }
    }

    /// Finishes queued work and stops the thread; with `checkpoint`, also checkpoints everything (after
    /// any running checkpoint) so the next start has nothing to replay — that blocks on `syncfs`, so
    /// call it off the cooperative pool. Idempotent.
    func stop(checkpoint: Bool) {
        let finished = self.shared.state.withLock { state in
            state.stopped = true
            state.checkpointOnStop = state.checkpointOnStop || checkpoint
            return state.finished
        }
        guard !finished else { return }
        self.shared.work.signal()
        self.shared.finished.wait()
        self.shared.finished.signal()
    }

    private func loop() {
        while true {
            if self.shared.state.withLock({ $0.queue.isEmpty && !$0.stopped }) {
                _ = self.shared.work.wait(timeout: .now() + .milliseconds(Int(max(1, self.interval / 4) * 1000)))
            }
            let (batch, stop, checkpoint) = self.shared.state.withLock { state -> ([Pending], Bool, Bool) in
                var taken = 0
                var bytes = 0
                while taken < state.queue.count && (taken == 0 || bytes < self.maxBatchBytes) {
                    bytes += state.queue[taken].record.encodedSize
                    taken += 1
                }
                let batch = Array(state.queue[0..<taken])
                state.queue.removeFirst(taken)
                return (batch, state.stopped && state.queue.isEmpty && batch.isEmpty, state.checkpointOnStop)
            }

            if !batch.isEmpty { self.commit(batch) }
            if stop {
                self.finish(checkpoint: checkpoint)
                self.shared.state.withLock { $0.finished = true }
                self.shared.finished.signal()
                return
            }
            self.maybeRotate()
        }
    }

    /// Writes, flushes and applies one batch, then resumes its callers.
    private func commit(_ batch: [Pending]) {
        let start = self.size
        self.encoded.removeAll(keepingCapacity: true)
        for pending in batch { JournalFormat.append(pending.record, to: &self.encoded) }
        if let error = self.writeAndFlush(self.encoded, at: start) {
            self.rollBack(to: start, after: error)
            for pending in batch { pending.continuation.resume(throwing: error) }
            return
        }
        self.size = start + self.encoded.count
        self.flushes.add(1, ordering: .relaxed)
        self.records.add(batch.count, ordering: .relaxed)
        var results: [Result<Outcome, any Error>] = []
        results.reserveCapacity(batch.count)
        for pending in batch { results.append(Result { try self.hooks.apply(pending.record) }) }
        let failed = results.indices.filter { if case .failure = results[$0] { return true } else { return false } }
        if !failed.isEmpty {
            // Take the failed records back out: rewrite the batch without them.
            for index in failed { self.hooks.undo(batch[index].record) }
            self.encoded.removeAll(keepingCapacity: true)
            for index in results.indices where !failed.contains(index) { JournalFormat.append(batch[index].record, to: &self.encoded) }
            if ftruncate(self.segment, off_t(start)) < 0 {
                self.fail(SystemCallError(operation: "truncate", path: "journal/\(JournalFormat.segmentName(self.sequence))", errno: errno))
                let broken = self.shared.state.withLock { $0.broken! }
                for index in results.indices where !failed.contains(index) { results[index] = .failure(broken) }
            } else if let error = self.writeAndFlush(self.encoded, at: start) {
                self.rollBack(to: start, after: error)
                for index in results.indices where !failed.contains(index) {
                    self.hooks.undo(batch[index].record)
                    results[index] = .failure(error)
                }
            } else {
                self.size = start + self.encoded.count
            }
        }
        for (pending, result) in zip(batch, results) {
            if case .success = result { self.written[self.sequence, default: []].formUnion(WrittenFile.of(pending.record)) }
            pending.continuation.resume(with: result.mapError { Self.storageError($0) })
        }
    }

    private func writeAndFlush(_ bytes: [UInt8], at offset: Int) -> WebhookError? {
        let label = "journal/\(JournalFormat.segmentName(self.sequence))"
        var written = 0
        let failure: SystemCallError? = bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let count = pwrite(self.segment, buffer.baseAddress! + written, buffer.count - written, off_t(offset + written))
                if count < 0 {
                    if errno == EINTR { continue }
                    return SystemCallError(operation: "write", path: label, errno: errno)
                }
                written += count
            }
            return nil
        }
        if let failure { return failure.storageError }
        if fdatasync(self.segment) < 0 { return SystemCallError(operation: "fdatasync", path: label, errno: errno).storageError }
        return nil
    }

    /// Cuts the segment back to `offset` after a failed write; if even that fails, stops taking work.
    private func rollBack(to offset: Int, after error: WebhookError) {
        if ftruncate(self.segment, off_t(offset)) < 0 || fdatasync(self.segment) < 0 {
            self.fail(SystemCallError(operation: "truncate", path: "journal/\(JournalFormat.segmentName(self.sequence))", errno: errno))
        }
    }

    private func fail(_ error: SystemCallError) {
        let broken = WebhookError(
            .storageUnavailable,
            "the journal could not be repaired after a failed write (\(error)); restart the service, which replays it",
            underlying: error
        )
        self.shared.state.withLock { $0.broken = broken }
    }

    static func storageError(_ error: any Error) -> any Error {
        (error as? SystemCallError)?.storageError ?? error
    }

    // MARK: Segments and checkpoints

    private func openSegment() throws {
        let name = JournalFormat.segmentName(self.sequence)
        let fd = openat(self.journal, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        try FileSystem.check(fd, "create", "journal/\(name)")
        let written = JournalFormat.magic.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
        if written != JournalFormat.magic.count || fdatasync(fd) < 0 || fsync(self.journal) < 0 {
            let error = SystemCallError(operation: "write", path: "journal/\(name)", errno: errno)
            closeDescriptor(fd)
            unlinkat(self.journal, name, 0)
            throw error
        }
        self.segment = fd
        self.size = JournalFormat.magic.count
        self.openedAt = Self.now()
    }

    /// Starts a new segment and checkpoints the old ones in the background, when the current one is
    /// large or old enough and no checkpoint is running.
    private func maybeRotate() {
        guard self.size > JournalFormat.magic.count,
            self.size >= self.segmentLimit || Self.now() - self.openedAt >= self.interval
        else { return }
        let (busy, forgotten) = self.shared.state.withLock { state -> (Bool, Set<UInt64>) in
            let busy = state.checkpointRunning
            if !busy { state.checkpointRunning = true }
            defer { state.forgotten = [] }
            return (busy, state.forgotten)
        }
        self.retired.removeAll { forgotten.contains($0) }
        for sequence in forgotten { self.written[sequence] = nil }
        guard !busy else { return }
        let old = (self.segment, self.sequence)
        self.sequence += 1
        do {
            try self.openSegment()
        } catch {
            // Keep appending to the old segment; try again after the next batch.
            self.sequence -= 1
            self.shared.state.withLock { $0.checkpointRunning = false }
            return
        }
        closeDescriptor(old.0)
        self.retired.append(old.1)
        self.startCheckpoint(self.retired)
    }

    /// Checkpoints `segments` on a thread of its own (`checkpointRunning` is already set).
    private func startCheckpoint(_ segments: [UInt64]) {
        let files = segments.reduce(into: Set<WrittenFile>()) { $0.formUnion(self.written[$1] ?? []) }
        let checkpointer = self.checkpointer
        // The shared state, not the committer: releasing the store never waits for a checkpoint.
        let shared = self.shared
        Thread.detachNewThread {
            let done = checkpointer.run(segments, files: files)
            shared.state.withLock { state in
                if done { state.forgotten.formUnion(segments) }
                state.checkpointRunning = false
            }
            shared.checkpointEnded.signal()
        }
    }


    /// Closes the segment; with `checkpoint`, waits for a running checkpoint, then checkpoints the rest.
    private func finish(checkpoint: Bool) {
        closeDescriptor(self.segment)
        guard checkpoint else { return }
        while self.shared.state.withLock({ $0.checkpointRunning }) { _ = self.shared.checkpointEnded.wait(timeout: .now() + .milliseconds(100)) }
        let forgotten = self.shared.state.withLock { $0.forgotten }
        let segments = self.retired.filter { !forgotten.contains($0) } + [self.sequence]
        _ = self.checkpointer.run(segments, files: segments.reduce(into: Set<WrittenFile>()) { $0.formUnion(self.written[$1] ?? []) })
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// `close(2)`; named apart from ``GroupCommitter/close()``.
private func closeDescriptor(_ fd: Int32) {
    close(fd)
}
