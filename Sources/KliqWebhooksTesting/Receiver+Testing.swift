import KliqWebhooks
import Logging
import ServiceLifecycle

extension Receiver {
    /// Delivers `fixture` in process, signed with `signer`, and returns the outcome — no socket.
    /// - Throws: ``WebhookError`` exactly as an HTTP delivery would be refused.
    @discardableResult
    public func deliver(_ fixture: Fixture, signedWith signer: Signer) async throws(WebhookError) -> Delivery {
        try await self.deliver(fixture.body, signedWith: signer)
    }

    /// Delivers `body` in process, signed with `signer`, and returns the outcome.
    @discardableResult
    public func deliver(_ body: [UInt8], signedWith signer: Signer) async throws(WebhookError) -> Delivery {
        try await self.receive(body: body, signature: signer.signature(for: body))
    }
}

/// Runs `receiver` (so its handlers run) for the duration of `body`, then waits until every accepted
/// event has been through its handlers and shuts the receiver down gracefully.
///
/// ```swift
/// try await withRunningReceiver(receiver) {
///     try await receiver.deliver(fixture, signedWith: signer)
/// }
/// #expect(recorder.events.count == 1)
/// ```
@discardableResult
public func withRunningReceiver<T: Sendable>(
    _ receiver: Receiver,
    _ body: () async throws -> T
) async throws -> T {
    try await withRunningServices([receiver]) {
        let value = try await body()
        await receiver.waitUntilIdle()
        return value
    }
}

/// Runs `services` (a receiver and what runs beside it, e.g. the polling fallback's reconciler) in a
/// `ServiceGroup` while `body` runs, then shuts them down gracefully and waits for them to end.
@discardableResult
public func withRunningServices<T: Sendable>(
    _ services: [any Service],
    _ body: () async throws -> T
) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: services, logger: Logger(label: "kliq.testing")))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let value = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return value
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
    }
}
