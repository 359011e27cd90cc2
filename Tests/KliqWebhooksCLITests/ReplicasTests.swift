#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KliqWebhooksTesting
import Synchronization
import Testing

/// Three `serve` replicas on one PostgreSQL database behave as one receiver, end to end: the same
/// deliveries sent to different replicas at once are accepted once; one replica is SIGKILLed mid-load
/// and restarted, and nothing acknowledged is lost or handled twice outside what was in flight; a
/// `jobs wait` is released by a delivery to a replica.
@Suite(.serialized)
struct ReplicasTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_replicas_e2e"

    final class Count: Sendable { let value = Atomic<Int>(0) }

    /// What the load's tasks share.
    final class Load: Sendable {
        let ports: Mutex<[Int]>
        let replicas: Mutex<[ServeProcess]>
        let outcomes = Mutex<[String: [String]]>([:])
        let sent = Atomic<Int>(0)
        let signer: Signer

        init(_ replicas: [ServeProcess], secret: String) {
            self.replicas = Mutex(replicas)
            self.ports = Mutex(replicas.map(\.port))
            self.signer = Signer(secret: secret)
        }

        /// Posts to replica `first`, then the next ones while a replica is down, as KLIQ retries.
        func deliver(_ body: [UInt8], id: String, first: Int) async throws {
            for attempt in 0..<60 {
                let port = self.ports.withLock { $0[(first + attempt) % 3] }
                if let response = try? await RawHTTPClient(port: port, timeout: 5).post(
                    "/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", self.signer.signature(for: body)), ("Content-Type", "application/json")]),
                    response.status == 200
                {
                    let status = (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["status"] as? String ?? "?"
                    self.outcomes.withLock { $0[id, default: []].append(status) }
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("\(id) was never acknowledged")
        }
    }

    func body(_ id: String, job: String, minute: Int, status: String) -> [UInt8] {
        Array(#"{"id":"\#(id)","type":"cv.job.\#(status)","tenantId":"t_1","timestamp":"2026-04-28T12:\#(String(format: "%02d", minute)):00Z","data":{"jobId":"\#(job)","status":"\#(status)","model":"shelf-detection-v2","observationId":"obs_1"}}"#.utf8)
    }

    @Test func threeReplicasActAsOneReceiver() async throws {
        guard let url = TestPostgres.url() else { return }
        let schema = TestPostgres.schema()
        let log = self.dir.file("handled.log")
        let environment = ["KLIQ_WEBHOOK_SECRET": self.secret, "KLIQ_DATABASE_URL": url]
        @Sendable func replica() async throws -> ServeProcess {
            try await ServeProcess(["serve", "--port", "0", "--database-schema", schema, "--lease", "3",
                              "--exec", "cat > /dev/null; sleep 0.0$((RANDOM % 5)); echo \"$KLIQ_EVENT_ID\" >> '\(log)'"],
                             environment: environment, workingDirectory: self.dir.path)
        }
        let started = [try await replica(), try await replica(), try await replica()]
        for replica in started { try await replica.waitUntilListening() }
        let load = Load(started, secret: self.secret)

        // A `jobs wait` before the job exists; released by a delivery to replica 3.
        let wait = try await ServeProcess(["jobs", "wait", "job_wait", "--database-schema", schema, "--timeout", "60"],
                                    environment: environment, workingDirectory: self.dir.path)

        let ids = (0..<240).map { "evt_rep_\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Each event twice, to two different replicas at once.
            for worker in 0..<6 {
                group.addTask {
                    for (index, id) in ids.enumerated() where index % 6 == worker {
                        let body = self.body(id, job: "job_rep_\(index % 60)", minute: index / 60, status: index / 60 == 3 ? "completed" : "processing")
                        async let one: Void = load.deliver(body, id: id, first: index % 3)
                        async let two: Void = load.deliver(body, id: id, first: (index + 1) % 3)
                        _ = try await (one, two)
                        load.sent.add(1, ordering: .relaxed)
                    }
                }
            }
            // Mid-load: replica 2 dies without warning, and comes back.
            group.addTask {
                while load.sent.load(ordering: .relaxed) < 80 { try await Task.sleep(for: .milliseconds(10)) }
                let victim = load.replicas.withLock { $0[1] }
                kill(victim.process.processIdentifier, SIGKILL)
                _ = try await victim.waitForExit()
                let restarted = try await replica()
                try await restarted.waitUntilListening()
                load.replicas.withLock { $0[1] = restarted }
                load.ports.withLock { $0[1] = restarted.port }
            }
            try await group.waitForAll()
        }

        let answers = load.outcomes.withLock { $0 }
        #expect(answers.count == ids.count, "every event was acknowledged")
        // Never two `accepted` for one id. None at all only where the accepting replica was killed
        // before its answer left (the retry then finds a duplicate): at most one per delivery in flight.
        for id in ids {
            #expect((answers[id]?.filter { $0 == "accepted" }.count ?? 0) <= 1, "\(id): \(answers[id] ?? [])")
        }
        let unanswered = ids.filter { answers[$0]?.contains("accepted") != true }
        #expect(unanswered.count <= 12, "accepted by nobody: \(unanswered)")

        let waitBody = self.body("evt_wait", job: "job_wait", minute: 30, status: "completed")
        try await load.deliver(waitBody, id: "evt_wait", first: 2)
        #expect(try await wait.waitForExit(timeout: .seconds(20)) == 0, "jobs wait: \(wait.errors)")
        #expect(wait.output.contains("job_wait") && wait.output.contains("completed"))

        // Every acknowledged event reaches the handler; twice only if it was running in the killed replica.
        let expected = Set(ids + ["evt_wait"])
        var handled: [String] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            handled = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if expected.isSubset(of: Set(handled)) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(expected.subtracting(handled).isEmpty, "never handled: \(expected.subtracting(handled).sorted().prefix(10))")
        let twice = Dictionary(grouping: handled, by: { $0 }).filter { $0.value.count > 1 }
        #expect(twice.count <= 16, "handled twice: \(twice.keys.sorted())")

        let listed = try await ServeProcess(["events", "list", "--accepted", "--database-schema", schema, "--limit", "1000", "--json"],
                                      environment: environment, workingDirectory: self.dir.path)
        #expect(try await listed.waitForExit() == 0)
        #expect(listed.output.split(separator: "\n").count == ids.count + 1)
        let replicas = load.replicas.withLock { $0 }
        for replica in replicas { #expect(try await replica.terminate() == 0, "\(replica.errors.suffix(500))") }
        #expect(!replicas.map(\.errors).joined().contains(url.split(separator: ":")[2].split(separator: "@")[0]), "the password reached a log")
    }

    /// A data directory moves into PostgreSQL and back out byte for byte: `import` (twice: the second
    /// changes nothing), `export`, and `replay --from-store postgres` into a fresh receiver.
    @Test func dataMovesInAndOutByteForByte() async throws {
        guard let url = TestPostgres.url() else { return }
        let schema = TestPostgres.schema()
        let fixtures = try Fixtures()
        let environment = ["KLIQ_WEBHOOK_SECRET": self.secret, "KLIQ_DATABASE_URL": url]
        func run(_ arguments: [String]) async throws -> ServeProcess {
            let process = try await ServeProcess(arguments, environment: environment, workingDirectory: self.dir.path)
            #expect(try await process.waitForExit() == 0, "\(arguments): \(process.errors)")
            return process
        }
        let files = try await ServeProcess(["serve", "--port", "0", "--store", "files", "--data-dir", self.dir.file("source")],
                                     environment: environment, workingDirectory: self.dir.path)
        try await files.waitUntilListening()
        let signer = Signer(secret: self.secret)
        let all = try fixtures.all()
        for fixture in all {
            _ = try await files.client.post("/webhooks/kliq", body: fixture.body, headers: [("X-Kliq-Signature", signer.signature(for: fixture.body))])
        }
        #expect(try await files.terminate() == 0)

        let first = try await run(["import", "--from", self.dir.file("source"), "--database-schema", schema])
        #expect(first.output.contains("imported \(all.count) new events (of \(all.count))"), "\(first.output)")
        let second = try await run(["import", "--from", self.dir.file("source"), "--database-schema", schema])
        #expect(second.output.contains("imported 0 new events (of \(all.count)) and 0 job states"), "\(second.output)")
        _ = try await run(["export", "--to", self.dir.file("exported"), "--database-schema", schema])
        for name in self.dir.names("source/events") {
            #expect(self.dir.contents("exported/events/\(name)") == self.dir.contents("source/events/\(name)"), "\(name)")
        }
        #expect(self.dir.names("exported/events").count == all.count)
        for name in self.dir.names("source/jobs") {
            #expect(self.dir.contents("exported/jobs/\(name)") == self.dir.contents("source/jobs/\(name)"), "\(name)")
        }
        let refused = try await ServeProcess(["export", "--to", self.dir.file("exported"), "--database-schema", schema], environment: environment,
                                       workingDirectory: self.dir.path)
        #expect(try await refused.waitForExit() != 0 && refused.errors.contains("is not empty"))

        let target = try await ServeProcess(["serve", "--port", "0", "--store", "files", "--data-dir", self.dir.file("target")],
                                      environment: environment, workingDirectory: self.dir.path)
        try await target.waitUntilListening()
        let replay = try await run(["replay", "--url", "http://127.0.0.1:\(target.port)/webhooks/kliq", "--from-store", "postgres",
                                    "--database-schema", schema])
        #expect(replay.output.contains("accepted   \(all.count)"), "\(replay.output)")
        #expect(try await target.terminate() == 0)
        #expect(self.dir.names("target/events") == self.dir.names("source/events"))
    }

    /// The database restarted under load (every connection cut): deliveries in that moment get `503`
    /// and are retried, as KLIQ does; every acknowledged one is in the database afterwards, serve
    /// carries on without a restart of its own, and SIGTERM still drains and exits 0 (a query stuck on
    /// a dropped connection once held shutdown until ServiceLifecycle's cancellation timeout crashed it).
    @Test func aDatabaseRestartUnderLoadLosesNothingAcknowledged() async throws {
        guard TestPostgres.url() != nil, let cluster = TestPostgres.ownCluster() else { return }
        let environment = ["KLIQ_WEBHOOK_SECRET": self.secret, "KLIQ_DATABASE_URL": cluster.url]
        let serve = try await ServeProcess(["serve", "--port", "0"], environment: environment, workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let load = Load([serve], secret: self.secret)
        load.ports.withLock { $0 = [serve.port, serve.port, serve.port] }
        let refusals = Count()
        let ids = (0..<400).map { "evt_restart_\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for (index, id) in ids.enumerated() where index % 4 == worker {
                        let body = self.body(id, job: "job_restart_\(index % 40)", minute: index / 40, status: "processing")
                        // Until acknowledged: a 503 (or a refused connection) is retried, as KLIQ would.
                        for _ in 0..<300 {
                            if let response = try? await RawHTTPClient(port: serve.port, timeout: 15).post(
                                "/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", load.signer.signature(for: body))]),
                                response.status == 200
                            {
                                load.sent.add(1, ordering: .relaxed)
                                break
                            }
                            refusals.value.add(1, ordering: .relaxed)
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                }
            }
            group.addTask {
                while load.sent.load(ordering: .relaxed) < 100 { try await Task.sleep(for: .milliseconds(10)) }
                #expect(TestPostgres.restart(cluster.directory), "pg_ctl restart failed")
            }
            try await group.waitForAll()
        }
        #expect(load.sent.load(ordering: .relaxed) == ids.count, "every delivery was acknowledged in the end")
        // (Deliveries arriving while the server restarts either wait for a connection — the accept's
        // deadline is 10 s — or get `503` and are retried: \(refusals) of them here.)
        print("database restart under load: \(refusals.value.load(ordering: .relaxed)) deliveries refused and retried")
        let listed = try await ServeProcess(["events", "list", "--accepted", "--limit", "1000", "--json"], environment: environment,
                                      workingDirectory: self.dir.path)
        #expect(try await listed.waitForExit() == 0)
        let stored = Set(listed.output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String
        })
        #expect(Set(ids).subtracting(stored).isEmpty, "acknowledged but not stored: \(Set(ids).subtracting(stored).sorted().prefix(5))")
        let status = try await serve.terminate(timeout: .seconds(40))
        #expect(status == 0, "\(serve.errors.split(separator: "\n").suffix(15).joined(separator: "\n"))")
    }

    /// A schema migrated by a newer version is refused at start with one line (exit 1), not used.
    @Test func aSchemaFromANewerVersionIsRefusedWithOneLine() async throws {
        guard let url = TestPostgres.url() else { return }
        let schema = TestPostgres.schema()
        let environment = ["KLIQ_WEBHOOK_SECRET": self.secret, "KLIQ_DATABASE_URL": url]
        let migrate = try await ServeProcess(["migrate", "--database-schema", schema], environment: environment, workingDirectory: self.dir.path)
        #expect(try await migrate.waitForExit() == 0)
        #expect(migrate.output.contains("schema \(schema): version 2 (was 0)"), "\(migrate.output)")
        let psql = "/bin/sh -c \"psql '\(url.split(separator: "?")[0])' -q -c 'INSERT INTO \(schema).schema_migrations (version) VALUES (99)'\""
        #expect(system(psql) == 0)
        let serve = try await ServeProcess(["serve", "--port", "0", "--database-schema", schema], environment: environment, workingDirectory: self.dir.path)
        #expect(try await serve.waitForExit() == 1)
        #expect(serve.errors.split(separator: "\n").filter { $0.hasPrefix("kliq-webhooks:") }.count == 1)
        #expect(serve.errors.contains("schema \(schema) is at version 99, newer than this kliq-webhooks knows (2)"), "\(serve.errors)")
        #expect(!serve.output.contains("listening"))
    }
}
