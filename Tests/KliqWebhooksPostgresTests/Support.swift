import KliqWebhooksPostgres
import Logging
import Synchronization

let quietLogger = Logger(label: "kliq-test") { _ in SwiftLogNoOpLogHandler() }

/// Stores opened by a test, each with its client running, stopped by ``stopAll()``.
final class RunningStores: Sendable {
    private let tasks = Mutex<[ObjectIdentifier: Task<Void, Never>]>([:])

    func open(_ url: String, schema: String, migrate: Bool = true, operationTimeout: Duration = .seconds(10),
              jobPollInterval: Duration = .seconds(5)) async throws -> PostgresEventStore {
        let store = try PostgresEventStore(configuration: try PostgresURL(url).configuration, schema: schema, operationTimeout: operationTimeout,
                                           jobPollInterval: jobPollInterval, logger: quietLogger)
        let task = Task { _ = try? await store.run() }
        self.tasks.withLock { $0[ObjectIdentifier(store)] = task }
        try? await Task.sleep(for: .milliseconds(10))
        if migrate { try await store.migrate() }
        return store
    }

    func stop(_ store: PostgresEventStore) {
        self.tasks.withLock { $0.removeValue(forKey: ObjectIdentifier(store)) }?.cancel()
    }

    func stopAll() {
        for task in self.tasks.withLock({ tasks in defer { tasks = [:] }; return tasks.values }) { task.cancel() }
    }
}
