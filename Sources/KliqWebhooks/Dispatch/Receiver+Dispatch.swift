import Logging
import ServiceLifecycle
import Tracing

extension Receiver {
    /// Dispatches accepted events to their handlers until graceful shutdown.
    ///
    /// A loop over the store's due deliveries: it claims what is due for this receiver's handlers — as
    /// many events as ``Configuration/maxConcurrentDispatches`` leaves room for, with bodies up to
    /// ``Configuration/maxQueuedBytes`` — runs each event's due handlers, and settles the outcomes. The
    /// store keeps each job's events in order and hands a crashed or restarted process's unfinished
    /// deliveries out again; nothing waits in memory that is not being run. It wakes when an event is
    /// accepted or re-driven, when a handler finishes, and four times a second for retries falling due.
    ///
    /// On graceful shutdown it claims nothing new, lets running handlers finish for up to
    /// ``Configuration/shutdownGracePeriod``, then cancels them: what did not succeed stays pending for
    /// the next start. Run it after (so: shut it down after) the HTTP server.
    public func run() async throws {
        let pending = try? await self.store.pending(handlers: self.handlers.allNames)
        if let pending, pending > 0 {
            self.logger.notice("unfinished handler deliveries to run", metadata: ["kliq.count": "\(pending)"])
        }
        let dispatch = self.dispatch
        // Cancelled (the service group gives up, e.g. because the HTTP server could not bind): stop as on
        // a graceful shutdown, without the grace — the waits below do not end by cancellation alone.
        await withTaskCancellationHandler {
            await self.dispatchUntilShutdown(dispatch)
        } onCancel: {
            dispatch.beginShutdown()
        }
        self.logger.info("handlers stopped")
    }

    private func dispatchUntilShutdown(_ dispatch: DispatchState) async {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { outer in
                outer.addTask { await self.dispatchLoop() }
                outer.addTask {
                    await dispatch.waitForShutdown()
                    try? await Task.sleep(for: self.configuration.shutdownGracePeriod)
                }
                // Retries fall due without anyone waking the loop: a tick four times a second.
                outer.addTask {
                    while (try? await Task.sleep(for: .milliseconds(250))) != nil { dispatch.wake() }
                }
                // Leases of running handlers are renewed at a third of their length, all in one place.
                outer.addTask {
                    let lease = self.configuration.lease
                    while (try? await Task.sleep(for: lease / 3)) != nil {
                        for claim in dispatch.claims { _ = try? await self.store.renew(claim, lease: lease) }
                    }
                }
                // Job states stored by other processes sharing the store wake this one's waiters.
                if let shared = self.store as? any SharedEventStore {
                    outer.addTask {
                        for await jobId in shared.jobChanges() where self.waiters.isWaiting(for: jobId) {
                            await self.wakeWaiters(jobId: jobId)
                        }
                        // Ended by cancellation; never the first child to end otherwise.
                        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                    }
                }
                // The loop (all handlers done) or the grace period, whichever ends first; the tick and
                // the renewals run until then.
                await outer.next()
                outer.cancelAll()
            }
        } onGracefulShutdown: {
            dispatch.beginShutdown()
        }
    }

    /// Waits until every delivery due for this receiver's handlers — of events accepted so far, and
    /// whatever an earlier process left unfinished — has been run to an end: each handler succeeded or
    /// is dead (retries included). Only ``run()`` makes progress, so wait while the receiver runs.
    public func waitUntilIdle() async {
        while true {
            let running = self.dispatch.running
            if running == 0, (try? await self.store.pending(handlers: self.handlers.allNames)) == 0, self.dispatch.running == 0 { return }
            await self.dispatch.waitForWake()
        }
    }

    private func dispatchLoop() async {
        let lease = self.configuration.lease
        await withDiscardingTaskGroup { group in
            var gaugeAt = ContinuousClock.now - .seconds(1)
            while !self.dispatch.isShuttingDown {
                let generation = self.dispatch.generation
                let (slots, bytes) = self.dispatch.room(limit: self.configuration.maxConcurrentDispatches, bytes: self.configuration.maxQueuedBytes)
                var claimed: [Claim] = []
                if slots > 0 {
                    do {
                        claimed = try await self.store.claim(handlers: self.handlers.allNames, owner: self.owner, limit: slots,
                                                             maxBytes: max(1, bytes), lease: lease)
                    } catch {
                        self.logger.error("could not claim due handler deliveries; trying again in 1 s", metadata: ["kliq.error": "\(error)"])
                        try? await Task.sleep(for: .seconds(1))
                        continue
                    }
                }
                for claim in claimed {
                    self.dispatch.started(claim)
                    group.addTask {
                        await self.work(claim)
                        self.dispatch.finished(claim)
                    }
                }
                if ContinuousClock.now - gaugeAt >= .seconds(1) {
                    gaugeAt = .now
                    ReceiverMetrics.pending((try? await self.store.pending(handlers: self.handlers.allNames)) ?? 0)
                }
                if claimed.count < slots || slots == 0 {
                    await self.dispatch.waitForWake(since: generation)
                }
            }
        }
    }

    /// Runs one claimed event's due handlers concurrently, keeps its lease alive meanwhile, and settles.
    private func work(_ claimed: Claim) async {
        var signed = claimed
        // Stored by 0.5.1, which kept no signature: signed with the first secret, so a forward verifies.
        if signed.event.signature == nil { signed.event.signature = self.verifier.sign(signed.event.rawBody) }
        let claim = signed
        let now = Timestamp.now()
        let due = claim.deliveries.handlers.filter { name, state in
            guard !state.isSettled, self.handlers.handler(named: name) != nil else { return false }
            return state.status == .pending || (state.nextAttemptAt.flatMap(Timestamp.init(rfc3339:)) ?? now) <= now
        }.keys.sorted()
        guard !due.isEmpty else {
            await self.store.release(claim)
            return
        }
        await self.settle(claim, await self.runHandlers(due, for: claim))
    }

    private func runHandlers(_ names: [String], for claim: Claim) async -> [(String, (any Error)?)] {
        await withTaskGroup(of: (String, (any Error)?).self) { group in
            for name in names {
                guard let handler = self.handlers.handler(named: name) else { continue }
                let attempt = (claim.deliveries.handlers[name]?.attempts ?? 0) + 1
                group.addTask {
                    do {
                        try await self.configuration.tracer.withSpan("kliq.handler") { span in
                            span.attributes["kliq.handler"] = name
                            span.attributes["kliq.attempt"] = attempt
                            span.attributes["kliq.event_id"] = claim.event.id
                            span.attributes["kliq.event_type"] = claim.event.type.rawValue
                            if let jobId = claim.event.jobId { span.attributes["kliq.job_id"] = jobId }
                            try await handler.run(claim.event, HandlerContext(handler: name, attempt: attempt))
                        }
                        return (name, nil)
                    } catch {
                        return (name, error)
                    }
                }
            }
            return await group.reduce(into: [(String, (any Error)?)]()) { $0.append($1) }
        }
    }

    /// Records the outcomes with the store, then reports failures (metrics, the log, `onError`).
    /// (`claim` may carry a signature the store's copy has not: the lease is identified by owner and token.)
    private func settle(_ claim: Claim, _ results: [(String, (any Error)?)]) async {
        let event = claim.event
        var outcomes: [String: DeliveryOutcome] = [:]
        var failures: [HandlerFailure] = []
        let now = Timestamp.now()
        // Cut short by the end of the shutdown grace period: what did not succeed stays as it was
        // (pending), to run again at the next start, and is not counted as a failed attempt.
        let interrupted = Task.isCancelled
        for (name, error) in results {
            guard let error else {
                outcomes[name] = .succeeded
                ReceiverMetrics.handlerRun(name, succeeded: true)
                continue
            }
            if interrupted { continue }
            ReceiverMetrics.handlerRun(name, succeeded: false)
            let state = claim.deliveries.handlers[name] ?? .init()
            let attempt = state.attempts + 1
            let next = self.configuration.retry.delay(afterAttempt: attempt - state.budgetStart).map { now.adding($0) }
            outcomes[name] = .failed(error: String(describing: error), nextAttemptAt: next?.date)
            if next == nil { ReceiverMetrics.handlerDead(name) } else { ReceiverMetrics.handlerRetry(name) }
            failures.append(HandlerFailure(event: event, error: error, handler: name, attempt: attempt, nextAttemptAt: next?.rfc3339))
        }
        var logger = self.logger
        logger[metadataKey: "kliq.event_id"] = .wire(event.id)
        if outcomes.isEmpty {
            await self.store.release(claim)
        } else {
            do {
                if try await !self.store.settle(claim, outcomes: outcomes) {
                    logger.warning("handler outcomes not recorded: the lease ran out and another dispatcher took the event over")
                }
            } catch {
                // Not recorded: these handlers run again once the lease runs out (at least once still holds).
                logger.error("could not record handler outcomes", metadata: ["kliq.error": "\(error)"])
                await self.store.release(claim)
            }
        }
        logger.debug("handlers ran", metadata: ["kliq.handlers": "\(results.count)", "kliq.failed": "\(failures.count)"])
        let errorHandlers = self.handlers.errorHandlers
        for failure in failures {
            logger.log(level: failure.nextAttemptAt == nil ? .error : .warning,
                       failure.nextAttemptAt == nil ? "handler failed; delivery is dead" : "handler failed; will retry", metadata: failure.metadata)
            for handler in errorHandlers { await handler(failure) }
        }
    }

    /// Re-drives an event's dead (or, naming a handler, any unsucceeded) deliveries: they become pending
    /// with a fresh retry budget and are dispatched again. Attempt numbers keep counting.
    /// - Parameters:
    ///   - eventId: the event.
    ///   - handler: only this handler; with a name, even a succeeded delivery runs again.
    /// - Returns: whether anything was re-driven.
    @discardableResult
    public func redeliver(eventId: String, handler: String? = nil) async throws -> Bool {
        let count = try await self.store.redrive(.event(eventId, handler: handler))
        self.dispatch.wake()
        return count > 0
    }

    /// Re-drives every dead delivery. - Returns: how many events were re-driven.
    @discardableResult
    public func redeliverDead() async throws -> Int {
        let count = try await self.store.redrive(.allDead)
        self.dispatch.wake()
        return count
    }
}
