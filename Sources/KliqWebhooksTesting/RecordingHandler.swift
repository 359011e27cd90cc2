import KliqWebhooks
import Synchronization

/// A handler that records the events it was given, to assert on in tests.
///
/// ```swift
/// let recorder = RecordingHandler()
/// receiver.on(.cvJobCompleted, recorder.handler)
/// ```
public final class RecordingHandler: Sendable {
    private let seen = Mutex<[Event]>([])

    public init() {}

    /// The closure to register.
    public var handler: @Sendable (Event) async throws -> Void {
        { [self] event in self.seen.withLock { $0.append(event) } }
    }

    /// The events received so far, in order.
    public var events: [Event] { self.seen.withLock { $0 } }

    /// The ids of the events received so far, in order.
    public var eventIds: [String] { self.events.map(\.id) }
}
