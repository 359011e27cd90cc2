import HeapModule

/// The deliveries a store hands out: every event with an unsettled delivery, in per-job lanes, with
/// its lease — the claiming rules of ``EventStore`` in one place, shared by the in-memory and file
/// stores. A value type with no locking of its own: each store keeps one inside its single owner (an
/// actor, or state under one `Mutex`).
///
/// Claims do not scan every lane: a lane is looked at when something in it changed (an insert, a
/// settle, a release, a re-drive) or when a timer it set runs out (a retry falling due, a lease running
/// out), and the ready ones wait on a heap, oldest first. So a claim costs about the number of lanes
/// that changed since the last one plus a heap operation per claimed event, whatever the backlog.
struct DeliveryIndex: Sendable {
    /// An event's place in its job's order: its timestamp (undated after dated), then its sequence.
    struct Order: Comparable, Sendable {
        var instant: Timestamp?
        var sequence: UInt64

        static func < (a: Order, b: Order) -> Bool {
            switch (a.instant, b.instant) {
            case (.some(let x), .some(let y)) where x != y: return x < y
            case (.some, .none): return true
            case (.none, .some): return false
            default: return a.sequence < b.sequence
            }
        }
    }

    struct Lease: Sendable {
        var owner: String
        var token: UInt64
        var until: Timestamp
    }

    struct Item: Sendable {
        var entry: LedgerEntry
        var lane: String
        var order: Order
        var lease: Lease?
        /// Body size, when the store knows it (claims add bodies up to a byte budget).
        var bytes: Int
        /// The event itself, kept while the cache has room (see ``cacheLimit``), so a claim need not
        /// read it back from disk.
        var event: Event?
    }

    private struct Timer: Comparable, Sendable {
        var at: Timestamp
        var lane: String
        static func < (a: Timer, b: Timer) -> Bool { (a.at, a.lane) < (b.at, b.lane) }
        static func == (a: Timer, b: Timer) -> Bool { a.at == b.at && a.lane == b.lane }
    }

    private struct Ready: Comparable, Sendable {
        var sequence: UInt64
        var lane: String
        static func < (a: Ready, b: Ready) -> Bool { (a.sequence, a.lane) < (b.sequence, b.lane) }
    }

    private(set) var items: [String: Item] = [:]
    /// Event ids of each lane, in order.
    private var lanes: [String: [String]] = [:]
    /// Lanes to look at in the next claim.
    private var candidates: Set<String> = []
    private var timers = Heap<Timer>()
    /// Lanes whose head was claimable when last looked at, oldest head first.
    private var ready = Heap<Ready>()
    private var readyLanes: Set<String> = []
    private var lastHandlers: Set<String> = []
    private var nextToken: UInt64 = 0
    /// Bytes of bodies cached in items, at most ``cacheLimit``.
    private(set) var cachedBytes = 0
    /// How many bytes of bodies items may keep (0: none).
    let cacheLimit: Int

    init(cacheLimit: Int = 0) {
        self.cacheLimit = cacheLimit
    }

    /// Events with an unsettled delivery for one of `handlers`.
    func pending(handlers: Set<String>) -> Int {
        self.items.values.count { item in item.entry.handlers.contains { !$0.value.isSettled && handlers.contains($0.key) } }
    }

    static func lane(of entry: LedgerEntry) -> String {
        entry.jobId.map { "job:" + $0 } ?? "event:" + entry.eventId
    }

    /// Adds (or replaces) an event whose entry is active; an entry on another shelf is removed.
    mutating func put(_ entry: LedgerEntry, sequence: UInt64, bytes: Int, event: Event? = nil) {
        guard entry.shelf == .active else {
            self.remove(entry.eventId)
            return
        }
        let lane = Self.lane(of: entry)
        if var item = self.items[entry.eventId] {
            item.entry = entry
            item.lease = nil
            self.items[entry.eventId] = item
        } else {
            let order = Order(instant: entry.timestamp.flatMap(Timestamp.init(rfc3339:)), sequence: sequence)
            var cached: Event?
            if let event, self.cachedBytes + bytes <= self.cacheLimit {
                cached = event
                self.cachedBytes += bytes
            }
            self.items[entry.eventId] = Item(entry: entry, lane: lane, order: order, lease: nil, bytes: bytes, event: cached)
            var ids = self.lanes[lane] ?? []
            // Usually the newest: appended; a late, earlier-dated event is inserted in its place.
            var index = ids.count
            while index > 0, let previous = self.items[ids[index - 1]], order < previous.order { index -= 1 }
            ids.insert(entry.eventId, at: index)
            self.lanes[lane] = ids
        }
        self.candidates.insert(lane)
    }

    mutating func remove(_ eventId: String) {
        guard let item = self.items.removeValue(forKey: eventId) else { return }
        if item.event != nil { self.cachedBytes -= item.bytes }
        self.lanes[item.lane]?.removeAll { $0 == eventId }
        if self.lanes[item.lane]?.isEmpty == true { self.lanes[item.lane] = nil }
        self.candidates.insert(item.lane)
    }

    /// Whether `claim`'s lease is the current one on its event.
    func holds(_ eventId: String, owner: String, token: UInt64) -> Bool {
        guard let lease = self.items[eventId]?.lease else { return false }
        return lease.owner == owner && lease.token == token
    }

    /// Extends a lease held by `owner`/`token`.
    mutating func renew(_ eventId: String, owner: String, token: UInt64, until: Timestamp) -> Bool {
        guard self.holds(eventId, owner: owner, token: token) else { return false }
        self.items[eventId]!.lease!.until = until
        return true
    }

    /// Ends a lease held by `owner`/`token` without changing the entry.
    mutating func release(_ eventId: String, owner: String, token: UInt64) {
        guard self.holds(eventId, owner: owner, token: token) else { return }
        self.items[eventId]!.lease = nil
        self.candidates.insert(self.items[eventId]!.lane)
    }

    /// Leases the oldest claimable events (see ``EventStore``) to `owner` until `until`: at most `limit`,
    /// with bodies adding up to at most `maxBytes` (one is always allowed).
    /// - Returns: the claimed items, oldest first, each with its new lease.
    mutating func claim(handlers: Set<String>, owner: String, limit: Int, maxBytes: Int, now: Timestamp, until: Timestamp) -> [Item] {
        if handlers != self.lastHandlers {
            self.lastHandlers = handlers
            self.candidates.formUnion(self.lanes.keys)
        }
        while let timer = self.timers.min, timer.at <= now {
            self.timers.removeMin()
            if self.lanes[timer.lane] != nil { self.candidates.insert(timer.lane) }
        }
        // Each changed lane is looked at once: ready ones join the heap, oldest head first.
        for lane in self.candidates {
            switch self.head(of: lane, handlers: handlers, now: now) {
            case .ready(let id):
                if self.readyLanes.insert(lane).inserted { self.ready.insert(Ready(sequence: self.items[id]!.order.sequence, lane: lane)) }
            case .waitUntil(let time): self.timers.insert(Timer(at: time, lane: lane))
            case .nothing: break
            }
        }
        self.candidates.removeAll()
        var claimed: [Item] = []
        var bytes = 0
        while claimed.count < limit, let top = self.ready.min {
            // The lane may have changed since it joined the heap: look again.
            guard case .ready(let id) = self.head(of: top.lane, handlers: handlers, now: now) else {
                self.ready.removeMin()
                self.readyLanes.remove(top.lane)
                self.candidates.insert(top.lane)
                continue
            }
            let size = self.items[id]!.bytes
            if !claimed.isEmpty, bytes + size > maxBytes { break }
            self.ready.removeMin()
            self.readyLanes.remove(top.lane)
            bytes += size
            self.nextToken += 1
            self.items[id]!.lease = Lease(owner: owner, token: self.nextToken, until: until)
            self.timers.insert(Timer(at: until, lane: top.lane))
            claimed.append(self.items[id]!)
        }
        return claimed
    }

    private enum Head {
        case ready(String)
        case waitUntil(Timestamp)
        case nothing
    }

    /// The first event of `lane` with an unsettled delivery for `handlers`, and whether it can be claimed now.
    private func head(of lane: String, handlers: Set<String>, now: Timestamp) -> Head {
        for id in self.lanes[lane] ?? [] {
            guard let item = self.items[id] else { continue }
            let mine = item.entry.handlers.filter { !$0.value.isSettled && handlers.contains($0.key) }
            if mine.isEmpty { continue }
            if let lease = item.lease, lease.until > now { return .waitUntil(lease.until) }
            var next: Timestamp?
            for state in mine.values {
                let due = state.status == .pending ? now : (state.nextAttemptAt.flatMap(Timestamp.init(rfc3339:)) ?? now)
                if due <= now { return .ready(id) }
                next = next.map { min($0, due) } ?? due
            }
            return next.map { .waitUntil($0) } ?? .nothing
        }
        return .nothing
    }
}
