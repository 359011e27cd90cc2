import Logging

/// A handler that threw, handed to every `onError` handler.
public struct HandlerFailure: Sendable {
    /// The event the handler was given.
    public var event: Event
    /// What the handler threw.
    public var error: any Error
    /// Which handler: its registration, e.g. `on(cv.job.completed)#2` or `onAny#1`.
    public var handler: String

    /// Log metadata for the failure: event id and type, handler, error.
    public var metadata: Logger.Metadata {
        [
            "kliq.event_id": .string(self.event.id),
            "kliq.event_type": .string(self.event.type.rawValue),
            "kliq.handler": .string(self.handler),
            "kliq.error": .string(String(describing: self.error)),
        ]
    }
}
