import Logging
import ServiceLifecycle

extension Receiver {
    /// Dispatches accepted events to their handlers until graceful shutdown.
    ///
    /// First it recovers what the ledger says is unfinished (pending, or retrying) from before a crash or
    /// restart. On graceful shutdown it starts nothing new, lets running handlers finish for up to
    /// ``Configuration/shutdownGracePeriod``, then returns; whatever is unfinished stays pending on disk
    /// and is dispatched again at the next start. Run it after (so: shut it down after) the HTTP server.
    public func run() async throws {
        await self.recover()
        let scheduler = self.scheduler
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { outer in
                outer.addTask { await self.dispatchLoop() }
                outer.addTask {
                    // Timers of parked lanes, and the grace period once shutdown has begun.
                    while !scheduler.isShuttingDown {
                        scheduler.promoteDueTimers()
                        try? await Task.sleep(for: .milliseconds(50))
                        if Task.isCancelled { return }
                    }
                    try? await Task.sleep(for: self.configuration.shutdownGracePeriod)
                }
                await outer.next()
                outer.cancelAll()
            }
        } onGracefulShutdown: {
            scheduler.beginShutdown()
        }
        self.logger.info("handlers stopped")
    }

    private func dispatchLoop() async {
        await withDiscardingTaskGroup { group in
            for await _ in self.scheduler.wakeups {
                if self.scheduler.beginRefillIfDue() {
                    group.addTask { await self.refill() }
                }
                while let lane = self.scheduler.claimReadyLane() {
                    group.addTask { await self.work(lane: lane) }
                }
            }
        }
    }

    /// Waits until every accepted event so far, and whatever an earlier process left unfinished in the
    /// ledger, has been through its handlers: each handler succeeded or is dead (retries included). Only
    /// ``run()`` makes progress, so wait while the receiver runs.
    public func waitUntilIdle() async {
        await self.scheduler.waitUntilIdle()
    }

    /// Loads the unfinished ledger entries (as many as the memory bound allows) and schedules them.
    func recover() async {
        self.scheduler.beginRecovery()
        let (held, left) = await self.refill()
        if held + left > 0 {
            self.logger.notice("recovered unfinished handler deliveries", metadata: [
                "kliq.count": "\(held + left)", "kliq.waiting_on_disk": "\(left)",
            ])
        }
    }

    /// Reads the active ledger back into the scheduler, oldest first, until its memory bound (a refill
    /// the scheduler has begun). - Returns: how many events it now holds and how many it left on disk.
    @discardableResult
    func refill() async -> (held: Int, left: Int) {
        var seen = Set<String>()
        var held = 0
        var left = 0
        do {
            var entries = try await self.store.ledgerEntries(on: .active)
            while true {
                let loaded = try await self.load(entries, seen: &seen)
                held += loaded.held
                left += loaded.left
                // Events spilled while the ledger was read, which the read may have missed: by id.
                let missed = self.scheduler.finishRefill(seen: seen, complete: left == 0, remaining: left)
                if missed.isEmpty { break }
                entries = []
                for id in missed {
                    if let entry = try await self.store.ledgerEntry(eventId: id), entry.shelf == .active { entries.append(entry) }
                }
                entries.sort(by: LedgerEntry.acceptedBefore)
                seen.formUnion(missed)
            }
        } catch {
            self.logger.error("could not read the handler ledger; waiting events are read again later", metadata: ["kliq.error": "\(error)"])
            try? await Task.sleep(for: .seconds(1))
            _ = self.scheduler.finishRefill(seen: seen, complete: false, remaining: 0)
        }
        return (held, left)
    }

    /// Hands `entries` (in acceptance order) to the scheduler until the first it has no room for: what
    /// follows stays on disk too, so a job's events keep their order. - Returns: how many it holds now,
    /// and how many were left.
    private func load(_ entries: [LedgerEntry], seen: inout Set<String>) async throws -> (held: Int, left: Int) {
        var held = 0
        for (index, entry) in entries.enumerated() {
            guard let event = try await self.dispatchable(entry) else { continue }
            switch self.scheduler.submit(.init(event: event, entry: entry), refilling: true) {
            case .held: held += 1
            case .skipped: break
            case .spilled: return (held, entries.count - index)
            }
            seen.insert(entry.eventId)
        }
        return (held, 0)
    }

    /// Works through one lane: runs the head's due handlers, records the outcome, moves on in order.
    private func work(lane: String) async {
        while !Task.isCancelled, let item = self.scheduler.head(of: lane) {
            let now = Timestamp.now()
            let registered = item.entry.handlers.filter { !$0.value.isSettled && self.handlers.handler(named: $0.key) != nil }
            if registered.isEmpty && !item.entry.isSettled {
                self.logger.warning("ledger entry names handlers that are not registered; it stays active",
                                    metadata: ["kliq.event_id": .wire(item.event.id), "kliq.handlers": "\(item.entry.handlers.keys.sorted())"])
                self.scheduler.update(item, done: true)
                continue
            }
            let due = registered.filter { $0.value.status == .pending || ($0.value.nextAttemptAt.flatMap(Timestamp.init(rfc3339:)) ?? now) <= now }
            if due.isEmpty {
                guard let next = registered.compactMap({ $0.value.nextAttemptAt.flatMap(Timestamp.init(rfc3339:)) }).min() else {
                    self.scheduler.update(item, done: true)
                    continue
                }
                let wait = Duration.nanoseconds((next.seconds - now.seconds) * 1_000_000_000 + (next.nanoseconds - now.nanoseconds))
                self.scheduler.park(lane, until: .now + wait)
                return
            }
            var updated = item
            updated.entry = await self.runHandlers(due.keys.sorted(), for: item)
            self.scheduler.update(updated, done: updated.entry.isSettled)
        }
        self.scheduler.release(lane)
    }

    /// Runs `names` for the item's event concurrently and returns the entry with their outcomes recorded.
    private func runHandlers(_ names: [String], for item: Item) async -> LedgerEntry {
        let event = item.event
        let results = await withTaskGroup(of: (String, (any Error)?).self) { group in
            for name in names {
                guard let handler = self.handlers.handler(named: name) else { continue }
                let attempt = (item.entry.handlers[name]?.attempts ?? 0) + 1
                group.addTask {
                    do {
                        try await handler.run(event, HandlerContext(handler: name, attempt: attempt))
                        return (name, nil)
                    } catch {
                        return (name, error)
                    }
                }
            }
            return await group.reduce(into: [(String, (any Error)?)]()) { $0.append($1) }
        }
        var entry = item.entry
        var failures: [HandlerFailure] = []
        let now = Timestamp.now()
        // Cut short by the end of the shutdown grace period: what did not succeed stays as it was
        // (pending), to run again at the next start, and is not counted as a failed attempt.
        let interrupted = Task.isCancelled
        for (name, error) in results {
            guard let error else {
                entry.recordSuccess(of: name)
                ReceiverMetrics.handlerRun(name, succeeded: true)
                continue
            }
            if interrupted { continue }
            ReceiverMetrics.handlerRun(name, succeeded: false)
            let state = entry.handlers[name] ?? .init()
            let attempt = state.attempts + 1
            let next = self.configuration.retry.delay(afterAttempt: attempt - state.budgetStart).map { now.adding($0) }
            entry.recordFailure(of: name, error: String(describing: error), at: now, next: next)
            if next == nil { ReceiverMetrics.handlerDead(name) } else { ReceiverMetrics.handlerRetry(name) }
            failures.append(HandlerFailure(event: event, error: error, handler: name, attempt: attempt, nextAttemptAt: next?.rfc3339))
        }
        entry.revision += 1
        do {
            try await self.store.updateLedger(entry)
        } catch {
            // Not recorded: after a restart these handlers run again (at least once still holds).
            self.logger.error("could not record handler outcomes", metadata: ["kliq.event_id": .wire(event.id), "kliq.error": "\(error)"])
        }
        var logger = self.logger
        logger[metadataKey: "kliq.event_id"] = .wire(event.id)
        logger.debug("handlers ran", metadata: ["kliq.handlers": "\(names.count)", "kliq.failed": "\(failures.count)"])
        let errorHandlers = self.handlers.errorHandlers
        for failure in failures {
            logger.log(level: failure.nextAttemptAt == nil ? .error : .warning,
                       failure.nextAttemptAt == nil ? "handler failed; delivery is dead" : "handler failed; will retry", metadata: failure.metadata)
            for handler in errorHandlers { await handler(failure) }
        }
        return entry
    }

    typealias Item = Scheduler.Item

    /// The stored event of `entry`, read back for its handlers, with the signature it arrived with —
    /// or, for an entry that kept none (written by 0.5.1), a signature under the first configured
    /// secret, so a forwarded body always verifies at its destination.
    func dispatchable(_ entry: LedgerEntry) async throws -> Event? {
        guard var event = try await self.store.event(id: entry.eventId) else { return nil }
        event.signature = entry.signature ?? self.verifier.sign(event.rawBody)
        return event
    }

    /// Re-drives an event's dead (or, naming a handler, any unsucceeded) deliveries: they become pending
    /// with a fresh retry budget and are dispatched again. Attempt numbers keep counting.
    /// - Parameters:
    ///   - eventId: the event.
    ///   - handler: only this handler; with a name, even a succeeded delivery runs again.
    /// - Returns: whether anything was re-driven.
    @discardableResult
    public func redeliver(eventId: String, handler: String? = nil) async throws -> Bool {
        guard let entry = try await self.store.redrive(eventId: eventId, handler: handler),
            let event = try await self.dispatchable(entry)
        else { return false }
        self.scheduler.submit(.init(event: event, entry: entry))
        return true
    }

    /// Re-drives every dead delivery. - Returns: how many events were re-driven.
    @discardableResult
    public func redeliverDead() async throws -> Int {
        var count = 0
        for entry in try await self.store.ledgerEntries(on: .dead) where try await self.redeliver(eventId: entry.eventId) {
            count += 1
        }
        return count
    }
}

extension EventStore {
    /// Makes an event's dead (or the named handler's) deliveries pending again and records it.
    /// - Returns: the updated entry, or `nil` when there was nothing to re-drive.
    public func redrive(eventId: String, handler: String? = nil) async throws -> LedgerEntry? {
        guard var entry = try await self.ledgerEntry(eventId: eventId), entry.redrive(handler: handler) else { return nil }
        entry.revision += 1
        try await self.updateLedger(entry)
        return entry
    }
}
