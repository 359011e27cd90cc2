import KliqWebhooks
import PostgresNIO

extension PostgresEventStore {
    /// The schema, version by version: each applied once, in order, in one transaction with its version
    /// row. Never edit a shipped version; add the next one.
    static func migrations(_ s: String) -> [[String]] {
        [
            // 1: events, job states, handler deliveries, quarantine, tracked jobs.
            [
                """
                CREATE TABLE \(s)events (
                  sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                  id text COLLATE "C" NOT NULL CONSTRAINT events_id_key UNIQUE,
                  type text NOT NULL,
                  job_id text COLLATE "C",
                  body bytea NOT NULL,
                  signature text,
                  accepted_at timestamptz NOT NULL DEFAULT clock_timestamp()
                )
                """,
                "CREATE INDEX events_job_idx ON \(s)events (job_id, sequence) WHERE job_id IS NOT NULL",
                "CREATE INDEX events_type_idx ON \(s)events (type, sequence)",
                "CREATE INDEX events_accepted_at_idx ON \(s)events (accepted_at)",
                """
                CREATE TABLE \(s)jobs (
                  id text COLLATE "C" PRIMARY KEY,
                  document bytea NOT NULL,
                  order_key bytea NOT NULL,
                  status text NOT NULL,
                  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
                )
                """,
                """
                CREATE TABLE \(s)deliveries (
                  event_id text COLLATE "C" PRIMARY KEY REFERENCES \(s)events (id) ON DELETE CASCADE,
                  sequence bigint NOT NULL,
                  lane text COLLATE "C" NOT NULL,
                  order_key bytea NOT NULL,
                  shelf text NOT NULL CHECK (shelf IN ('active', 'done', 'dead')),
                  entry bytea NOT NULL,
                  unsettled text[] NOT NULL,
                  due_at timestamptz[] NOT NULL,
                  bytes bigint NOT NULL,
                  claimed_by text,
                  lease_until timestamptz,
                  token bigint NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX deliveries_lanes_idx ON \(s)deliveries (lane, order_key, sequence) WHERE shelf = 'active'",
                "CREATE INDEX deliveries_shelf_idx ON \(s)deliveries (shelf, event_id)",
                "CREATE SEQUENCE \(s)lease_tokens",
                """
                CREATE TABLE \(s)quarantine (
                  sha256 text PRIMARY KEY, body bytea NOT NULL, reason text NOT NULL,
                  received_at timestamptz NOT NULL DEFAULT clock_timestamp()
                )
                """,
                "CREATE TABLE \(s)tracked_jobs (job_id text COLLATE \"C\" PRIMARY KEY, tracked_at timestamptz NOT NULL DEFAULT clock_timestamp())",
            ],
            // 2: the polling fallback. Which source (`webhook` or `poll`) brought a job's first final
            // state, so the other one's does not reach handlers again; states polled by
            // `jobs reconcile`, waiting for a running receiver to store and dispatch them.
            [
                "ALTER TABLE \(s)jobs ADD COLUMN final_from text CHECK (final_from IN ('webhook', 'poll'))",
                "UPDATE \(s)jobs SET final_from = 'webhook' WHERE status IN ('completed', 'failed')",
                """
                CREATE TABLE \(s)polled_inbox (
                  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body bytea NOT NULL,
                  submitted_at timestamptz NOT NULL DEFAULT clock_timestamp()
                )
                """,
            ],
        ]
    }

    /// The schema version this build knows.
    public static var latestSchemaVersion: Int { Self.migrations("").count }

    /// Creates the schema or applies the versions it lacks, under a transaction-scoped advisory lock (so
    /// replicas starting together apply each version once), and returns the schema version.
    /// - Throws: ``WebhookError`` (`storage_unavailable`) when the database cannot be reached or a
    ///   statement fails (nothing of that version is left applied), or the schema is newer than this build.
    @discardableResult
    public func migrate() async throws -> Int {
        let schema = self.schema
        let s = self.s
        let migrations = Self.migrations(s)
        return try await self.transaction("migrate the schema") { connection -> Int in
            func run(_ sql: String) async throws -> [PostgresRow] {
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: self.logger).collect()
            }
            var lock = PostgresQuery(unsafeSQL: "SELECT pg_advisory_xact_lock(hashtext($1))")
            lock.binds.append("kliq-webhooks schema \(schema)")
            _ = try await connection.query(lock, logger: self.logger).collect()
            _ = try await run("CREATE SCHEMA IF NOT EXISTS \"\(schema)\"")
            _ = try await run(
                "CREATE TABLE IF NOT EXISTS \(s)schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())")
            let current = Int(try await run("SELECT coalesce(max(version), 0) FROM \(s)schema_migrations").first?.decode(Int32.self) ?? 0)
            guard current <= migrations.count else {
                throw WebhookError(
                    .storageUnavailable,
                    "schema \(schema) is at version \(current), newer than this kliq-webhooks knows (\(migrations.count)); run the newer version")
            }
            for version in (current + 1)..<(migrations.count + 1) {
                for statement in migrations[version - 1] { _ = try await run(statement) }
                _ = try await run("INSERT INTO \(s)schema_migrations (version) VALUES (\(version))")
                self.logger.info("applied schema version \(version)", metadata: ["schema": "\(schema)"])
            }
            return migrations.count
        }
    }

    /// The schema version applied to the database (0: none).
    public func schemaVersion() async throws -> Int {
        let exists = try await self.one("SELECT to_regclass($1) IS NOT NULL", ["\(self.s)schema_migrations"], "read the schema version")
        guard try exists?.decode(Bool.self) == true else { return 0 }
        let row = try await self.one("SELECT coalesce(max(version), 0) FROM \(self.s)schema_migrations", [], "read the schema version")
        return Int(try row?.decode(Int32.self) ?? 0)
    }
}
