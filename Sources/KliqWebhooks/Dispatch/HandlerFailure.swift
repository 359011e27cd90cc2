import Logging

/// A handler that threw, handed to every `onError` handler.
public struct HandlerFailure: Sendable {
    /// The event the handler was given.
    public var event: Event
    /// What the handler threw.
    public var error: any Error
    /// Which handler, by its ledger name.
    public var handler: String
    /// Which attempt failed (1-based).
    public var attempt: Int
    /// When it will be tried again; `nil` when this was the last allowed attempt (the delivery is now dead).
    public var nextAttemptAt: String?

    /// Log metadata for the failure: event id and type, handler, attempt, error.
    public var metadata: Logger.Metadata {
        [
            "kliq.event_id": .wire(self.event.id),
            "kliq.event_type": .wire(self.event.type.rawValue),
            "kliq.handler": .string(self.handler),
            "kliq.attempt": "\(self.attempt)",
            "kliq.next_attempt_at": .string(self.nextAttemptAt ?? "never (dead)"),
            "kliq.error": .wire(String(describing: self.error)),
        ]
    }
}
