import Foundation
import KliqWebhooks
@testable import KliqWebhooksPostgres
import KliqWebhooksTesting
import Testing

/// The PostgreSQL store against a real server: the public conformance suite every store passes, then
/// what only a shared database has — several stores on one schema acting as one.
@Suite(.serialized)
struct PostgresStoreTests {
    @Test(arguments: EventStoreConformance.Check.allCases)
    func conformance(_ check: EventStoreConformance.Check) async throws {
        guard let url = TestDatabase.url() else { return }
        let stores = RunningStores()
        defer { stores.stopAll() }
        let schema = TestDatabase.schema()
        try await EventStoreConformance(
            makeStore: { try await stores.open(url, schema: schema) },
            reopen: { old in
                stores.stop(old as! PostgresEventStore)
                return try await stores.open(url, schema: schema)
            }
        ).run(check)
    }
}
