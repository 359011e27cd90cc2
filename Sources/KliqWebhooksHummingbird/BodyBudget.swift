import Synchronization

/// A budget of bytes for request bodies being read at once, shared by every request of a server, so a
/// flood of large uploads waits its turn instead of growing memory. A body reserves what its
/// `Content-Length` declares (or the body limit, when it declares nothing) before it is read, and gives
/// it back once the delivery is answered. Waiting requests are served first come, first served; a
/// request waiting longer than its request time-out gets `408` from the connection guard.
final class BodyBudget: Sendable {
    private struct Waiter {
        var bytes: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var available: Int
        var waiters: [Waiter] = []
    }

    let capacity: Int
    private let state: Mutex<State>

    init(capacity: Int) {
        self.capacity = capacity
        self.state = Mutex(State(available: capacity))
    }

    /// Waits until `bytes` (at most the capacity) are free, then takes them.
    func reserve(_ bytes: Int) async -> Int {
        let bytes = min(bytes, self.capacity)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = self.state.withLock { state -> Bool in
                if state.waiters.isEmpty, state.available >= bytes {
                    state.available -= bytes
                    return true
                }
                state.waiters.append(Waiter(bytes: bytes, continuation: continuation))
                return false
            }
            if granted { continuation.resume() }
        }
        return bytes
    }

    /// Gives back what ``reserve(_:)`` returned and wakes the waiters that now fit, in order.
    func release(_ bytes: Int) {
        let ready = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.available += bytes
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = state.waiters.first, first.bytes <= state.available {
                state.available -= first.bytes
                ready.append(state.waiters.removeFirst().continuation)
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    var available: Int { self.state.withLock { $0.available } }
}
