import Logging
import ServiceLifecycle
import Synchronization

extension Receiver {
    /// Accepted events waiting for their handlers, and a count of those not yet finished.
    final class HandlerQueue: Sendable {
        struct Item: Sendable {
            var event: Event
            var logger: Logger
        }

        let stream: AsyncStream<Item>
        private let continuation: AsyncStream<Item>.Continuation
        private let state = Mutex<(pending: Int, idle: [CheckedContinuation<Void, Never>])>((0, []))

        init() {
            (self.stream, self.continuation) = AsyncStream.makeStream(of: Item.self)
        }

        func enqueue(_ event: Event, logger: Logger) {
            self.state.withLock { $0.pending += 1 }
            if case .terminated = self.continuation.yield(Item(event: event, logger: logger)) {
                logger.warning("receiver is shut down: stored event not dispatched")
                self.finishedOne()
            }
        }

        func finish() { self.continuation.finish() }

        func finishedOne() {
            let waiting = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.pending -= 1
                guard state.pending == 0 else { return [] }
                defer { state.idle = [] }
                return state.idle
            }
            for continuation in waiting { continuation.resume() }
        }

        func waitUntilIdle() async {
            await withCheckedContinuation { continuation in
                let idle = self.state.withLock { state in
                    if state.pending == 0 { return true }
                    state.idle.append(continuation)
                    return false
                }
                if idle { continuation.resume() }
            }
        }
    }

    /// Dispatches accepted events to their handlers until graceful shutdown, then finishes every event
    /// already accepted and returns. Run it in a `ServiceGroup` after (so: shut down after) the HTTP server.
    public func run() async throws {
        let limit = max(1, self.configuration.maxConcurrentDispatches)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for await item in self.queue.stream {
                    if running >= limit {
                        await group.next()
                        running -= 1
                    }
                    group.addTask { await self.dispatch(item.event, logger: item.logger) }
                    running += 1
                }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.queue.finish()
        }
    }

    /// Waits until every accepted event so far has been through its handlers.
    public func waitUntilIdle() async {
        await self.queue.waitUntilIdle()
    }

    /// Runs every handler for `event` concurrently; a failure is reported, never propagated to siblings.
    func dispatch(_ event: Event, logger: Logger) async {
        defer { self.queue.finishedOne() }
        let entries = self.handlers.handlers(for: event.type)
        guard !entries.isEmpty else { return }
        let failures = await withTaskGroup(of: HandlerFailure?.self) { group in
            for entry in entries {
                group.addTask {
                    do {
                        try await entry.run(event)
                        return nil
                    } catch {
                        return HandlerFailure(event: event, error: error, handler: entry.name)
                    }
                }
            }
            var failures: [HandlerFailure] = []
            for await failure in group { if let failure { failures.append(failure) } }
            return failures
        }
        logger.debug("handlers ran", metadata: ["kliq.handlers": "\(entries.count)", "kliq.failed": "\(failures.count)"])
        guard !failures.isEmpty else { return }
        let errorHandlers = self.handlers.errorHandlers
        for failure in failures {
            logger.error("handler failed", metadata: failure.metadata)
            for handler in errorHandlers { await handler(failure) }
        }
    }
}
