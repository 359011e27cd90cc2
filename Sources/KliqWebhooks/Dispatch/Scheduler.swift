import Synchronization

/// Accepted events waiting for their handlers, in lanes: one lane per job (or per event, for events
/// without a job). Within a lane events go one after another in timestamp order; lanes run concurrently,
/// at most `limit` at a time.
///
/// Memory is bounded: once the events held come to `capacity` bytes, further ones are left where the
/// store already keeps them (the active ledger) — *spilled* — and every later one too, so that a job's
/// events are never taken out of order. When what is held has drained to half, the receiver reads the
/// active ledger back (a *refill*), oldest first, until the bound is reached again.
final class Scheduler: Sendable {
    struct Item: Sendable {
        var event: Event
        var entry: LedgerEntry

        var lane: String { self.event.jobId.map { "job:" + $0 } ?? "event:" + self.event.id }

        /// What holding it costs, roughly: the body and the bookkeeping around it.
        var cost: Int { self.event.rawBody.count + 512 }

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
        /// Items in all lanes; with `onDisk`, the `kliq_webhooks_ledger_pending` gauge.
        var pending = 0
        /// The cost of the items in all lanes.
        var bytes = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        /// Events may be waiting in the active ledger that are not held here: true until the receiver's
        /// first refill (its recovery at start-up) has read the ledger.
        var spilled = true
        /// About how many events wait only on disk (for the gauge).
        var onDisk = 0
        var refilling = false
        /// While refilling: events finished meanwhile, which the ledger read may still show as active.
        var finishedDuringRefill: Set<String> = []
        /// While refilling: events spilled meanwhile, which the ledger read may have missed.
        var spilledDuringRefill: Set<String> = []

        var gauge: Int { self.pending + self.onDisk }
    }

    let limit: Int
    /// The bound, in bytes of held events, beyond which events wait on disk.
    let capacity: Int
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let state = Mutex(State())

    init(limit: Int, capacity: Int) {
        self.limit = max(1, limit)
        self.capacity = max(1, capacity)
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        ReceiverMetrics.pending(0)
    }

    /// What ``submit(_:refilling:)`` did with an item.
    enum Admission: Equatable {
        /// Held, to be dispatched.
        case held
        /// Left in the active ledger, to be read back by a refill.
        case spilled
        /// (Refill only.) Finished, or already held: skipped.
        case skipped
    }

    /// Adds an item to its lane (replacing one for the same event) and wakes the run loop — or, over the
    /// bound (or while earlier events wait on disk), leaves it in the ledger. An item that is alone is
    /// always held, however large. `refilling`: the item was read back from the ledger by a refill.
    @discardableResult
    func submit(_ item: Item, refilling: Bool = false) -> Admission {
        let (admission, gauge) = self.state.withLock { state -> (Admission, Int) in
            var lane = state.lanes[item.lane] ?? []
            let held = lane.firstIndex { $0.event.id == item.event.id }
            if held == nil {
                if refilling && state.finishedDuringRefill.contains(item.event.id) { return (.skipped, state.gauge) }
                let full = state.pending > 0 && state.bytes + item.cost > self.capacity
                if full || (state.spilled && !refilling) {
                    state.spilled = true
                    if !refilling {
                        state.onDisk += 1
                        if state.refilling { state.spilledDuringRefill.insert(item.event.id) }
                    }
                    return (.spilled, state.gauge)
                }
            } else if refilling {
                return (.skipped, state.gauge)
            }
            if let held {
                state.bytes -= lane[held].cost
                lane.remove(at: held)
            } else {
                state.pending += 1
            }
            state.bytes += item.cost
            let index = lane.firstIndex { item.precedes($0) } ?? lane.endIndex
            lane.insert(item, at: index)
            state.lanes[item.lane] = lane
            state.timers[item.lane] = nil
            if !state.running.contains(item.lane), !state.ready.contains(item.lane) { state.ready.append(item.lane) }
            return (.held, state.gauge)
        }
        ReceiverMetrics.pending(gauge)
        self.wake.yield()
        return admission
    }

    /// Whether a refill is due (events wait on disk, what is held has drained to half); when it is,
    /// marks one as running. The caller reads the ledger back and ends with ``finishRefill(seen:complete:)``.
    func beginRefillIfDue() -> Bool {
        self.state.withLock { state in
            guard state.spilled, !state.refilling, !state.shuttingDown, state.bytes <= self.capacity / 2 else { return false }
            Self.beginRefill(&state)
            return true
        }
    }

    /// Starts the first refill, at start-up, for what an earlier process left in the ledger.
    func beginRecovery() {
        self.state.withLock { state in
            state.spilled = true
            Self.beginRefill(&state)
        }
    }

    private static func beginRefill(_ state: inout State) {
        state.refilling = true
        state.finishedDuringRefill = []
        state.spilledDuringRefill = []
    }

    /// Ends a refill, or asks for more. `seen`: the events the refill has held or skipped. `complete`:
    /// it read the whole ledger without reaching the bound (`false` also when it could not read it).
    /// - Returns: events spilled while it ran that it has not seen; the refill loads those and calls
    ///   again. Empty when the refill is over — and, if it was complete, nothing waits on disk any more,
    ///   so later events are held again.
    func finishRefill(seen: Set<String>, complete: Bool, remaining: Int = 0) -> Set<String> {
        let (missed, waiters, gauge) = self.state.withLock { state -> (Set<String>, [CheckedContinuation<Void, Never>], Int) in
            let missed = state.spilledDuringRefill.subtracting(seen)
            if complete && !missed.isEmpty && !state.shuttingDown { return (missed, [], state.gauge) }
            state.refilling = false
            state.finishedDuringRefill = []
            state.spilledDuringRefill = []
            if complete && missed.isEmpty {
                state.spilled = false
                state.onDisk = 0
            } else {
                state.onDisk = remaining + missed.count
            }
            return ([], Self.idleWaiters(&state), state.gauge)
        }
        guard missed.isEmpty else { return missed }
        ReceiverMetrics.pending(gauge)
        for waiter in waiters { waiter.resume() }
        self.wake.yield()
        return []
    }

    /// The cost of what is held (for tests).
    var heldBytes: Int { self.state.withLock { $0.bytes } }

    /// The `kliq_webhooks_ledger_pending` gauge's value: held, plus about how many wait on disk (for tests).
    var pendingGauge: Int { self.state.withLock { $0.gauge } }

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
        let gauge = self.state.withLock { state -> Int? in
            guard var lane = state.lanes[item.lane], let index = lane.firstIndex(where: { $0.event.id == item.event.id }) else { return nil }
            state.bytes -= lane[index].cost
            if done {
                lane.remove(at: index)
                state.pending -= 1
                if state.refilling { state.finishedDuringRefill.insert(item.event.id) }
            } else {
                lane[index] = item
                state.bytes += item.cost
            }
            state.lanes[item.lane] = lane.isEmpty ? nil : lane
            return done ? state.gauge : nil
        }
        if let gauge {
            ReceiverMetrics.pending(gauge)
            self.wake.yield()  // perhaps a refill is due
        }
    }

    /// Called by a lane's worker when its lane is empty (or the receiver is shutting down).
    func release(_ lane: String) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running.remove(lane)
            if state.shuttingDown, let dropped = state.lanes.removeValue(forKey: lane) { Self.drop(dropped, &state) }
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
                Self.drop(state.lanes.removeValue(forKey: lane) ?? [], &state)
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

    /// At shutdown: what was held stays in the ledger for the next start.
    private static func drop(_ items: [Item], _ state: inout State) {
        state.pending -= items.count
        state.bytes -= items.reduce(0) { $0 + $1.cost }
    }

    private static func isIdle(_ state: State) -> Bool {
        state.lanes.isEmpty && state.running.isEmpty && !state.spilled && !state.refilling
    }

    private static func idleWaiters(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        guard Self.isIdle(state) else { return [] }
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
                if Self.isIdle(state) { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}
