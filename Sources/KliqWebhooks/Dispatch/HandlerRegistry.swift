import Synchronization

/// What a handler is told besides the event.
public struct HandlerContext: Sendable {
    /// The handler's name in the ledger.
    public var handler: String
    /// 1 on the first attempt; higher when retrying, after a restart, or when re-driven. A handler that
    /// must not act twice can use `(event.id, attempt > 1)` to check whether it already did.
    public var attempt: Int
}

/// The handlers registered on a ``Receiver``: by event type, for any event, and for failures.
final class HandlerRegistry: Sendable {
    typealias Handler = @Sendable (Event, HandlerContext) async throws -> Void
    typealias ErrorHandler = @Sendable (HandlerFailure) async -> Void

    struct Entry: Sendable {
        var name: String
        /// `nil`: every type.
        var types: Set<EventType>?
        var run: Handler
    }

    private struct Table {
        var entries: [Entry] = []
        var errors: [ErrorHandler] = []
    }

    private let table = Mutex(Table())

    /// Adds a handler; `name` defaults to `on(<types>)#<n>` / `onAny#<n>` (stable while registration order is).
    func add(_ types: Set<EventType>?, name: String?, _ handler: @escaping Handler) {
        self.table.withLock { table in
            let count = table.entries.filter { $0.types == types }.count + 1
            let label = types.map { $0.map(\.rawValue).sorted().joined(separator: "|") }
            let name = name ?? (label.map { "on(\($0))#\(count)" } ?? "onAny#\(count)")
            precondition(!table.entries.contains { $0.name == name }, "a handler named \(name) is already registered")
            table.entries.append(Entry(name: name, types: types, run: handler))
        }
    }

    func addError(_ handler: @escaping ErrorHandler) {
        self.table.withLock { $0.errors.append(handler) }
    }

    /// The names of the handlers an event of `type` goes to, in registration order.
    func names(for type: EventType) -> [String] {
        self.table.withLock { table in table.entries.filter { $0.types?.contains(type) ?? true }.map(\.name) }
    }

    func handler(named name: String) -> Entry? {
        self.table.withLock { $0.entries.first { $0.name == name } }
    }

    /// The names of every registered handler.
    var allNames: Set<String> { self.table.withLock { Set($0.entries.map(\.name)) } }

    var errorHandlers: [ErrorHandler] { self.table.withLock { $0.errors } }
}
