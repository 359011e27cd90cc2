import Synchronization

/// The handlers registered on a ``Receiver``: by event type, for any event, and for failures.
final class HandlerRegistry: Sendable {
    typealias Handler = @Sendable (Event) async throws -> Void
    typealias ErrorHandler = @Sendable (HandlerFailure) async -> Void

    struct Entry: Sendable {
        var name: String
        var run: Handler
    }

    private struct Table {
        var typed: [EventType: [Entry]] = [:]
        var any: [Entry] = []
        var errors: [ErrorHandler] = []
    }

    private let table = Mutex(Table())

    func add(_ type: EventType, _ handler: @escaping Handler) {
        self.table.withLock { table in
            let count = (table.typed[type]?.count ?? 0) + 1
            table.typed[type, default: []].append(Entry(name: "on(\(type))#\(count)", run: handler))
        }
    }

    func addAny(_ handler: @escaping Handler) {
        self.table.withLock { table in
            table.any.append(Entry(name: "onAny#\(table.any.count + 1)", run: handler))
        }
    }

    func addError(_ handler: @escaping ErrorHandler) {
        self.table.withLock { $0.errors.append(handler) }
    }

    /// The handlers for `type`: those registered for it, then the `onAny` ones.
    func handlers(for type: EventType) -> [Entry] {
        self.table.withLock { ($0.typed[type] ?? []) + $0.any }
    }

    var errorHandlers: [ErrorHandler] { self.table.withLock { $0.errors } }
}
