import Synchronization

/// What the dispatch loop shares with intake and with those waiting on it, under one `Mutex`: how much
/// is running, a wake-up signal (a counter, so a wake-up that comes between a claim and the wait for
/// the next one is never lost), and shutdown.
final class DispatchState: Sendable {
    private struct State {
        var running = 0
        var bytes = 0
        var shuttingDown = false
        /// Bumped by every wake-up.
        var generation: UInt64 = 0
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Claims being run, by event id.
        var claims: [String: Claim] = [:]
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Handler runs in progress.
    var running: Int { self.state.withLock { $0.running } }
    /// Bytes of body held by the handler runs in progress.
    var bytes: Int { self.state.withLock { $0.bytes } }
    var isShuttingDown: Bool { self.state.withLock { $0.shuttingDown } }
    var generation: UInt64 { self.state.withLock { $0.generation } }

    /// Free slots and bytes of body left under the limits.
    func room(limit: Int, bytes: Int) -> (slots: Int, bytes: Int) {
        self.state.withLock { (max(0, limit - $0.running), bytes - $0.bytes) }
    }

    func started(_ claim: Claim) {
        self.state.withLock {
            $0.running += 1
            $0.bytes += claim.event.rawBody.count
            $0.claims[claim.event.id] = claim
        }
    }

    func finished(_ claim: Claim) {
        self.state.withLock {
            $0.running -= 1
            $0.bytes -= claim.event.rawBody.count
            $0.claims[claim.event.id] = nil
        }
        self.wake()
    }

    /// Something may be due now: an event accepted or re-driven, a handler finished.
    func wake() {
        let waiters = self.state.withLock { state in
            state.generation &+= 1
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns after the next wake-up, or at once if there was one since `generation`. (``Receiver/run()``
    /// wakes everyone four times a second, for retries falling due.)
    func waitForWake(since generation: UInt64? = nil) async {
        await withCheckedContinuation { continuation in
            let now = self.state.withLock { state -> Bool in
                if let generation, state.generation != generation { return true }
                if state.shuttingDown { return true }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Claims being run, for the lease renewals.
    var claims: [Claim] { self.state.withLock { Array($0.claims.values) } }

    func beginShutdown() {
        let waiters = self.state.withLock { state in
            state.shuttingDown = true
            defer { state.shutdownWaiters = [] }
            return state.shutdownWaiters
        }
        for waiter in waiters { waiter.resume() }
        self.wake()
    }

    func waitForShutdown() async {
        await withCheckedContinuation { continuation in
            let now = self.state.withLock { state -> Bool in
                if state.shuttingDown { return true }
                state.shutdownWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
