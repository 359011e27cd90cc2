import Synchronization

/// Accepted events waiting for their handlers, in lanes: one lane per job (or per event, for events
/// without a job). Within a lane events go one after another in timestamp order; lanes run concurrently,
/// at most `limit` at a time.
final class Scheduler: Sendable {
    struct Item: Sendable {
        var event: Event
        var entry: LedgerEntry

        var lane: String { self.event.jobId.map { "job:" + $0 } ?? "event:" + self.event.id }

        /// Events of one job are handled in timestamp order; undated ones after dated ones.
        func precedes(_ other: Item) -> Bool {
            switch (self.event.instant, other.event.instant) {
            case (.some(let a), .some(let b)) where a != b: a < b
            case (.some, nil): true
            case (nil, .some): false
            default: self.event.id.utf8.lexicographicallyPrecedes(other.event.id.utf8)
            }
        }
    }

    private struct State {
        var lanes: [String: [Item]] = [:]
        var running: Set<String> = []
        var ready: [String] = []
        var timers: [String: ContinuousClock.Instant] = [:]
        var shuttingDown = false
        /// Items in all lanes: the `kliq_webhooks_ledger_pending` gauge.
        var pending = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let limit: Int
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = max(1, limit)
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        ReceiverMetrics.pending(0)
    }

    /// Adds an item to its lane (replacing one for the same event) and wakes the run loop.
    func submit(_ item: Item) {
        let pending = self.state.withLock { state in
            var lane = state.lanes[item.lane] ?? []
            let before = lane.count
            lane.removeAll { $0.event.id == item.event.id }
            state.pending += 1 - (before - lane.count)
            let index = lane.firstIndex { item.precedes($0) } ?? lane.endIndex
            lane.insert(item, at: index)
            state.lanes[item.lane] = lane
            state.timers[item.lane] = nil
            if !state.running.contains(item.lane), !state.ready.contains(item.lane) { state.ready.append(item.lane) }
            return state.pending
        }
        ReceiverMetrics.pending(pending)
        self.wake.yield()
    }

    /// A lane to work on, when one is ready and fewer than `limit` are running.
    func claimReadyLane() -> String? {
        self.state.withLock { state in
            guard state.running.count < self.limit, !state.ready.isEmpty else { return nil }
            let lane = state.ready.removeFirst()
            state.running.insert(lane)
            return lane
        }
    }

    func head(of lane: String) -> Item? {
        self.state.withLock { $0.lanes[lane]?.first }
    }

    /// Replaces the head of `lane` with its updated state, or removes it when `done`.
    func update(_ item: Item, done: Bool) {
        let pending = self.state.withLock { state -> Int? in
            guard var lane = state.lanes[item.lane], let index = lane.firstIndex(where: { $0.event.id == item.event.id }) else { return nil }
            if done {
                lane.remove(at: index)
                state.pending -= 1
            } else {
                lane[index] = item
            }
            state.lanes[item.lane] = lane.isEmpty ? nil : lane
            return done ? state.pending : nil
        }
        if let pending { ReceiverMetrics.pending(pending) }
    }

    /// Called by a lane's worker when its lane is empty (or the receiver is shutting down).
    func release(_ lane: String) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running.remove(lane)
            if state.shuttingDown, let dropped = state.lanes.removeValue(forKey: lane) { state.pending -= dropped.count }
            if state.lanes[lane] != nil, !state.ready.contains(lane) { state.ready.append(lane) }
            return Self.idleWaiters(&state)
        }
        for waiter in waiters { waiter.resume() }
        self.wake.yield()
    }

    /// Called by a lane's worker when its head is not due yet: the slot is freed until `instant`.
    func park(_ lane: String, until instant: ContinuousClock.Instant) {
        self.state.withLock { state in
            state.running.remove(lane)
            if state.shuttingDown {
                state.pending -= state.lanes.removeValue(forKey: lane)?.count ?? 0
            } else {
                state.timers[lane] = instant
            }
        }
        self.wake.yield()
    }

    /// Moves lanes whose timer has passed back to ready; returns whether any did.
    @discardableResult
    func promoteDueTimers(now: ContinuousClock.Instant = .now) -> Bool {
        let promoted = self.state.withLock { state -> Bool in
            let due = state.timers.filter { $0.value <= now }.map(\.key)
            for lane in due {
                state.timers[lane] = nil
                if !state.running.contains(lane), !state.ready.contains(lane) { state.ready.append(lane) }
            }
            return !due.isEmpty
        }
        if promoted { self.wake.yield() }
        return promoted
    }

    private static func idleWaiters(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        guard state.lanes.isEmpty, state.running.isEmpty else { return [] }
        defer { state.idleWaiters = [] }
        return state.idleWaiters
    }

    func beginShutdown() {
        self.state.withLock { $0.shuttingDown = true }
        self.wake.finish()
    }

    var isShuttingDown: Bool { self.state.withLock { $0.shuttingDown } }

    func waitUntilIdle() async {
        await withCheckedContinuation { continuation in
            let idle = self.state.withLock { state in
                if state.lanes.isEmpty && state.running.isEmpty { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}
