import DequeModule
import Dispatch
import Foundation
import Synchronization

/// A fixed set of threads for blocking file-system calls (`fsync`, `link`, `write`).
///
/// Swift's cooperative pool has one thread per core; a blocking `fsync` there stalls every request.
/// Work submitted here runs on threads of its own and resumes the caller when done.
final class BlockingPool: Sendable {
    /// Does the work and returns how to report it. The job (and whatever its closure owns, such as a
    /// store and with it a data directory's ownership lock) is released before the report resumes the
    /// caller, so a caller that lets go of a store right after an await really has let go of it.
    private typealias Job = @Sendable () -> @Sendable () -> Void

    /// The queue and its signal, shared with the worker threads (which outlive nothing: they stop when
    /// the pool is released).
    private final class Shared: Sendable {
        let jobs = Mutex((queue: Deque<Job>(), stopped: false))
        /// One signal per job, and one per thread at shutdown.
        let available = DispatchSemaphore(value: 0)

        /// The next job, or `nil` once the pool is released and nothing is left.
        func next() -> Job?? {
            self.available.wait()
            return self.jobs.withLock { jobs in
                if let job = jobs.queue.popFirst() { return .some(job) }
                return jobs.stopped ? .none : .some(nil)
            }
        }
    }

    private let shared = Shared()
    private let threads: Int

    init(threads: Int) {
        self.threads = max(1, threads)
        for index in 0..<self.threads {
            let shared = self.shared
            let thread = Thread {
                while true {
                    // One binding only, so setting it to nil really drops the job before the caller resumes.
                    guard var job = shared.next() else { return }
                    let report = job?()
                    job = nil
                    report?()
                }
            }
            thread.name = "kliq-io-\(index)"
            thread.start()
        }
    }

    deinit {
        self.shared.jobs.withLock { $0.stopped = true }
        for _ in 0..<self.threads { self.shared.available.signal() }
    }

    /// Runs `work` on one of the pool's threads and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            self.shared.jobs.withLock {
                $0.queue.append {
                    let result = Result { try work() }
                    return { continuation.resume(with: result) }
                }
            }
            self.shared.available.signal()
        }
    }
}
