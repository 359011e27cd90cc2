#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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

    private final class Queue: @unchecked Sendable {
        // Guarded by `mutex`; `cond` signals new work or shutdown.
        var jobs: [Job?] = []
        var head = 0
        var stopped = false
        var mutex = pthread_mutex_t()
        var cond = pthread_cond_t()
    }

    private let queue = Queue()

    init(threads: Int) {
        pthread_mutex_init(&self.queue.mutex, nil)
        pthread_cond_init(&self.queue.cond, nil)
        for _ in 0..<max(1, threads) {
            let queue = self.queue
            var thread = pthread_t()
            let box = Unmanaged.passRetained(Worker(queue: queue))
            let rc = pthread_create(&thread, nil, { raw in
                let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
                worker.loop()
                return nil
            }, box.toOpaque())
            precondition(rc == 0, "pthread_create failed: \(rc)")
            pthread_detach(thread)
        }
    }

    deinit {
        pthread_mutex_lock(&self.queue.mutex)
        self.queue.stopped = true
        pthread_cond_broadcast(&self.queue.cond)
        pthread_mutex_unlock(&self.queue.mutex)
    }

    /// Runs `work` on a pool thread and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            self.submit {
                let result = Result { try work() }
                return { continuation.resume(with: result) }
            }
        }
    }

    private func submit(_ job: @escaping Job) {
        pthread_mutex_lock(&self.queue.mutex)
        self.queue.jobs.append(job)
        pthread_cond_signal(&self.queue.cond)
        pthread_mutex_unlock(&self.queue.mutex)
    }

    private final class Worker: @unchecked Sendable {
        let queue: Queue
        init(queue: Queue) { self.queue = queue }

        func loop() {
            while true {
                pthread_mutex_lock(&self.queue.mutex)
                while self.queue.head == self.queue.jobs.count && !self.queue.stopped {
                    pthread_cond_wait(&self.queue.cond, &self.queue.mutex)
                }
                if self.queue.head == self.queue.jobs.count {
                    pthread_mutex_unlock(&self.queue.mutex)
                    return
                }
                var job = self.queue.jobs[self.queue.head]
                // Drop the queue's reference at once: a job's closure may own resources (a store's locks).
                self.queue.jobs[self.queue.head] = nil
                self.queue.head += 1
                if self.queue.head > 1024, self.queue.head * 2 > self.queue.jobs.count {
                    self.queue.jobs.removeFirst(self.queue.head)
                    self.queue.head = 0
                }
                pthread_mutex_unlock(&self.queue.mutex)
                let report = job?()
                job = nil
                report?()
            }
        }
    }
}
