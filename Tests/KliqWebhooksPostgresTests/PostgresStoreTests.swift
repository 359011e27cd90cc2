import Foundation
import KliqWebhooks
@testable import KliqWebhooksPostgres
import KliqWebhooksTesting
import ServiceLifecycle
import Synchronization
import Testing

/// The PostgreSQL store against a real server: the public conformance suite every store passes, then
/// what only a shared database has — several stores on one schema acting as one.
@Suite(.serialized)
struct PostgresStoreTests {
    @Test(arguments: EventStoreConformance.Check.allCases)
    func conformance(_ check: EventStoreConformance.Check) async throws {
        guard let url = TestPostgres.url() else { return }
        let stores = RunningStores()
        defer { stores.stopAll() }
        let schema = TestPostgres.schema()
        try await EventStoreConformance(
            makeStore: { try await stores.open(url, schema: schema) },
            reopen: { old in
                stores.stop(old as! PostgresEventStore)
                return try await stores.open(url, schema: schema)
            }
        ).run(check)
    }
}

/// What only a database several processes share has to get right: each test opens several stores —
/// each with its own connection pool, as separate replicas would — on one schema.
@Suite(.serialized)
struct PostgresReplicaTests {
    static let secret = "whsec_replicas"
    static let signer = Signer(secret: secret)

    static func body(_ id: String, job: String?, minute: Int, status: String = "completed") -> [UInt8] {
        let data = job.map { #"{"jobId":"\#($0)","status":"\#(status)","model":"shelf-detection-v2","observationId":"obs_1"}"# } ?? #"{"visitId":"v_1"}"#
        let type = job == nil ? "visit.submitted" : "cv.job.\(status)"
        return Array(#"{"id":"\#(id)","type":"\#(type)","tenantId":"t_1","timestamp":"2026-04-28T12:\#(String(format: "%02d", minute)):00Z","data":\#(data)}"#.utf8)
    }

    static func event(_ id: String, job: String? = "job_r", minute: Int = 0, status: String = "completed") throws -> Event {
        let body = Self.body(id, job: job, minute: minute, status: status)
        return try Event(decoding: body, signature: Self.signer.signature(for: body))
    }

    @Test func exactlyOneAcceptedPerIdAcrossReplicas() async throws {
        guard let url = TestPostgres.url() else { return }
        let stores = RunningStores()
        defer { stores.stopAll() }
        let schema = TestPostgres.schema()
        var replicas: [PostgresEventStore] = []
        for _ in 0..<3 { replicas.append(try await stores.open(url, schema: schema)) }
        let ids = (0..<40).map { "evt_one_\($0)" }
        let outcomes = try await withThrowingTaskGroup(of: (String, Outcome).self) { group in
            for id in ids {
                for replica in replicas {
                    group.addTask { (id, try await replica.accept(try Self.event(id, job: "job_\(id)"), handlers: ["h"]).outcome) }
                }
            }
            return try await group.reduce(into: [String: [Outcome]]()) { $0[$1.0, default: []].append($1.1) }
        }
        for id in ids {
            #expect(outcomes[id]?.filter { $0 == .accepted }.count == 1, "\(id): \(outcomes[id] ?? [])")
        }
        #expect(try await replicas[0].pending(handlers: ["h"]) == 40, "one delivery per event, however many replicas accepted it")
        let listed = try await replicas[1].events(after: 0, matching: .all, limit: 100)
        #expect(listed.events.count == 40)
    }

    @Test func replicasStartingTogetherApplyEachSchemaVersionOnce() async throws {
        guard let url = TestPostgres.url() else { return }
        let stores = RunningStores()
        defer { stores.stopAll() }
        let schema = TestPostgres.schema()
        var replicas: [PostgresEventStore] = []
        for _ in 0..<4 { replicas.append(try await stores.open(url, schema: schema, migrate: false)) }
        let versions = try await withThrowingTaskGroup(of: Int.self) { group in
            for replica in replicas { group.addTask { try await replica.migrate() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(versions == Array(repeating: PostgresEventStore.latestSchemaVersion, count: 4))
        #expect(try await replicas[0].schemaVersion() == PostgresEventStore.latestSchemaVersion)
        let rows = try await replicas[0].all("SELECT count(*) FROM \(replicas[0].s)schema_migrations", [], "count")
        #expect(try rows.first?.decode(Int64.self) == Int64(PostgresEventStore.latestSchemaVersion))
    }

    /// Handlers on three receivers share one store's deliveries: each event is handled once, a job's
    /// events in their order, whichever replica accepted them and whichever claims them.
    @Test func deliveriesRunOnceAndInJobOrderAcrossReplicas() async throws {
        guard let url = TestPostgres.url() else { return }
        let stores = RunningStores()
        defer { stores.stopAll() }
        let schema = TestPostgres.schema()
        let seen = Mutex<[(replica: Int, id: String, job: String, minute: Int)]>([])
        var receivers: [Receiver] = []
        for index in 0..<3 {
            let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(Self.secret)]), store: try await stores.open(url, schema: schema),
                                    logger: quietLogger)
            receiver.onAny(name: "h") { event in
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...15)))
                let minute = Int(event.timestamp?.dropFirst(14).prefix(2) ?? "") ?? -1
                seen.withLock { $0.append((index, event.id, event.jobId ?? "", minute)) }
            }
            receivers.append(receiver)
        }
        let group = ServiceGroup(configuration: .init(services: receivers, logger: quietLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // 8 jobs × 6 events, each delivered to a different replica than the one before.
            for minute in 0..<6 {
                for job in 0..<8 {
                    let body = Self.body("evt_\(job)_\(minute)", job: "job_\(job)", minute: minute, status: minute == 5 ? "completed" : "processing")
                    let delivery = try await receivers[(job + minute) % 3].receive(body: body, signature: Self.signer.signature(for: body))
                    #expect(delivery.outcome == .accepted)
                }
            }
            let done = try await eventually { seen.withLock { $0.count } >= 48 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(done)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let records = seen.withLock { $0 }
        #expect(records.count == 48, "each event once: \(records.count) handled")
        #expect(Set(records.map(\.id)).count == 48)
        for job in 0..<8 {
            let minutes = records.filter { $0.job == "job_\(job)" }.map(\.minute)
            #expect(minutes == Array(0..<6), "job_\(job) handled in order \(minutes)")
        }
        #expect(Set(records.map(\.replica)).count > 1, "the work was shared between replicas")
    }

    /// A `waitForCompletion` on one replica returns when another stores the job's final state: through
    /// LISTEN/NOTIFY, well before its slow re-read (set to a minute here) would have found it.
    @Test func aWaiterOnOneReplicaIsReleasedByADeliveryToAnother() async throws {
        guard let url = TestPostgres.url() else { return }
        let stores = RunningStores()
        defer { stores.stopAll() }
        let schema = TestPostgres.schema()
        let a = Receiver(verifier: try SignatureVerifier(secrets: [Secret(Self.secret)]), store: try await stores.open(url, schema: schema), logger: quietLogger)
        let slow = try await stores.open(url, schema: schema, jobPollInterval: .seconds(60))
        let b = Receiver(verifier: try SignatureVerifier(secrets: [Secret(Self.secret)]), store: slow, logger: quietLogger)
        let group = ServiceGroup(configuration: .init(services: [a, b], logger: quietLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let started = ContinuousClock.now
            async let job = b.waitForCompletion(jobId: "job_wait", timeout: .seconds(30))
            try await Task.sleep(for: .milliseconds(500))
            let body = Self.body("evt_wait", job: "job_wait", minute: 1)
            #expect(try await a.receive(body: body, signature: Self.signer.signature(for: body)).outcome == .accepted)
            let finished = try await job
            #expect(finished.status == .completed)
            #expect(ContinuousClock.now - started < .seconds(10), "released by the announcement, not the minute-long re-read")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// The listening connection comes back after the database restarts (every connection cut): a
    /// waiter is then still released by another replica's write through NOTIFY, not the slow re-read.
    @Test func announcementsResumeAfterTheDatabaseRestarts() async throws {
        guard TestPostgres.url() != nil, let cluster = TestPostgres.ownCluster() else { return }
        let stores = RunningStores()
        defer { stores.stopAll() }
        let a = Receiver(verifier: try SignatureVerifier(secrets: [Secret(Self.secret)]), store: try await stores.open(cluster.url, schema: "kliq"),
                         logger: quietLogger)
        let b = Receiver(verifier: try SignatureVerifier(secrets: [Secret(Self.secret)]),
                         store: try await stores.open(cluster.url, schema: "kliq", jobPollInterval: .seconds(60)), logger: quietLogger)
        let group = ServiceGroup(configuration: .init(services: [a, b], logger: quietLogger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(500))
            #expect(TestPostgres.restart(cluster.directory))
            // The listener notices the lost connection and listens again (after a second's pause).
            try await Task.sleep(for: .seconds(3))
            let started = ContinuousClock.now
            async let job = b.waitForCompletion(jobId: "job_after_restart", timeout: .seconds(30))
            try await Task.sleep(for: .milliseconds(300))
            let body = Self.body("evt_after_restart", job: "job_after_restart", minute: 2)
            var outcome: Outcome?
            for _ in 0..<50 where outcome == nil {  // the first accept may meet a connection the restart cut
                outcome = try? await a.receive(body: body, signature: Self.signer.signature(for: body)).outcome
                if outcome == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(outcome == .accepted)
            #expect(try await job.status == .completed)
            #expect(ContinuousClock.now - started < .seconds(15), "released by the announcement, not the minute-long re-read")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func anUnreachableDatabaseFailsFastAndNeverShowsThePassword() async throws {
        let password = "hunter2-unreachable-secret"
        let stores = RunningStores()
        defer { stores.stopAll() }
        // A port nothing listens on.
        let store = try await stores.open("postgres://kliq:\(password)@127.0.0.1:1/kliq?sslmode=disable", schema: "kliq", migrate: false,
                                          operationTimeout: .seconds(2))
        let started = ContinuousClock.now
        do {
            _ = try await store.accept(try Self.event("evt_down"), handlers: [])
            Issue.record("accepted without a database")
        } catch let error as WebhookError {
            #expect(error.code == .storageUnavailable)
            #expect(!error.message.contains(password) && !"\(error)".contains(password))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        await #expect(throws: WebhookError.self) { try await store.checkHealth() }
    }

    @Test func databaseURLsAreReadAndNeverShowThePassword() throws {
        let url = try PostgresURL("postgres://kliq:s3cr%40t@db.internal:6543/receiver?sslmode=require")
        #expect(url.configuration.host == "db.internal" && url.configuration.port == 6543)
        #expect(url.configuration.username == "kliq" && url.configuration.password == "s3cr@t" && url.configuration.database == "receiver")
        #expect(url.redacted == "postgres://kliq:***@db.internal:6543/receiver?sslmode=require")
        #expect(!"\(url)".contains("s3cr"))
        #expect(try PostgresURL("postgresql://u@h/d").configuration.port == 5432)
        for bad in ["mysql://u:pw-secret@h/d", "postgres://u:pw-secret@h", "postgres://u:pw-secret@h/d?sslmode=maybe", "postgres://:pw-secret@h/d",
                    "postgres://u:pw-secret@h/d?user=x"] {
            do {
                _ = try PostgresURL(bad)
                Issue.record("\(bad) was read")
            } catch {
                #expect(error.code == .invalidConfiguration)
                #expect(!error.message.contains("pw-secret"), "\(error.message)")
            }
        }
        #expect(throws: WebhookError.self) { try PostgresEventStore(url: "postgres://u@h/d", schema: "bad-name; DROP", logger: quietLogger) }
    }
}

func eventually(timeout: Duration = .seconds(20), _ condition: () async -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}
