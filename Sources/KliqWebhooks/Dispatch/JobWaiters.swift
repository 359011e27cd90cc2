import Synchronization

/// Callers of `waitForCompletion`, by job id, waiting for a finished state to be stored.
final class JobWaiters: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Job, any Error>
    }

    private struct State {
        var waiters: [String: [Int: Waiter]] = [:]
        var cancelled: Set<Int> = []
        var nextToken = 0
    }

    private let state = Mutex(State())

    /// Whether anyone waits for `jobId` (so the store need not be read otherwise).
    func isWaiting(for jobId: String) -> Bool {
        self.state.withLock { $0.waiters[jobId] != nil }
    }

    func makeToken() -> Int {
        self.state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
    }

    /// Suspends until ``resume(_:)`` is called with a finished state for `jobId`, or the task is cancelled.
    func wait(for jobId: String, token: Int) async throws -> Job {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let alreadyCancelled = self.state.withLock { state in
                    if state.cancelled.remove(token) != nil { return true }
                    state.waiters[jobId, default: [:]][token] = Waiter(continuation: continuation)
                    return false
                }
                if alreadyCancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> Waiter? in
                guard let waiter = state.waiters[jobId]?.removeValue(forKey: token) else {
                    state.cancelled.insert(token)
                    return nil
                }
                if state.waiters[jobId]?.isEmpty == true { state.waiters[jobId] = nil }
                return waiter
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Hands a finished job to everyone waiting for it.
    func resume(_ job: Job) {
        let waiters = self.state.withLock { $0.waiters.removeValue(forKey: job.id) } ?? [:]
        for waiter in waiters.values { waiter.continuation.resume(returning: job) }
    }

    /// Forgets a token whose wait ended another way (it may never have been registered).
    func discard(_ token: Int) {
        self.state.withLock { _ = $0.cancelled.remove(token) }
    }
}
