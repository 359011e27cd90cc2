import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import KliqWebhooks
import KliqWebhooksConsole
import KliqWebhooksHummingbird
import KliqWebhooksPolling
import KliqWebhooksPostgres
import Logging
import NIOCore
import ServiceLifecycle

/// `kliq-webhooks serve`: the receiver as a service, in the foreground until SIGINT/SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the webhook receiver until SIGINT/SIGTERM, then drain and exit 0.",
        discussion: """
            Secrets: KLIQ_WEBHOOK_SECRET=whsec_… (comma-separated for rotation), or --secret-file PATH (one a line). \
            Without one, serve refuses to start (exit status 2).

            Every option can also be set in the environment as KLIQ_ and its name in capitals (KLIQ_PORT, \
            KLIQ_DATA_DIR, KLIQ_TRUSTED_PROXY, …) or in the --config file. The command line wins over the \
            environment, which wins over the file. --print-config shows the result.
            """
    )

    @Option(help: "Address to listen on. [default: 127.0.0.1]") var host: String?
    @Option(help: "Port to listen on; 0 picks a free one (the listening line shows it). [default: 8080]") var port: String?
    @Option(help: "Path of the webhook endpoint. [default: /webhooks/kliq]") var path: String?
    @Option(help: "Directory for events/, jobs/, ledger/, quarantine/ (created, mode 0700). [default: ./kliq-data]") var dataDir: String?
    @Option(help: "Largest accepted body, in bytes. [default: 4194304]") var maxBodyBytes: String?
    @Option(help: "Seconds a request may take to arrive, head to end of body; then 408 and the connection closes. [default: 30]")
    var requestTimeout: String?
    @Option(help: "Seconds a connection may stay open without a request (or with headers that never finish). [default: 60]")
    var idleTimeout: String?
    @Option(help: "Connections open at once; more wait to be accepted. [default: 1024]") var maxConnections: String?
    @Option(help: "Bytes of request bodies read at once across all connections; more wait their turn. [default: 67108864]")
    var maxInFlightBytes: String?
    @Option(help: "Bytes of event bodies held in memory for running handlers; what waits beyond stays on disk and is claimed in order as handlers catch up. [default: 33554432]")
    var maxQueuedBytes: String?
    @Option(help: "File with the signing secrets, one a line (instead of KLIQ_WEBHOOK_SECRET); re-read on SIGHUP.") var secretFile: String?
    @Option(name: .customLong("exec"), help: ArgumentHelp(
        "Run COMMAND (via /bin/sh -c) for each accepted event: event JSON on stdin, KLIQ_EVENT_ID, KLIQ_EVENT_TYPE, KLIQ_JOB_ID set. Repeatable.",
        valueName: "COMMAND"))
    var exec: [String] = []
    @Option(help: "Seconds one --exec run may take before it is stopped and counted as failed (then retried). [default: 300]")
    var execTimeout: String?
    @Option(name: .customLong("forward"), help: ArgumentHelp(
        "POST each accepted event's raw body with its X-Kliq-Signature to URL. Repeatable.", valueName: "URL"))
    var forward: [String] = []
    @Option(help: "Seconds one --forward request may take before it counts as failed (then retried). [default: 30]")
    var forwardTimeout: String?
    @Option(help: ArgumentHelp("Event types the --exec/--forward handlers receive. [default: all]", valueName: "TYPE[,TYPE…]"))
    var events: String?
    @Option(help: "Attempts per handler delivery before it is dead. [default: 8]") var retryAttempts: String?
    @Option(help: "Seconds before the first retry; each later one waits twice as long (with jitter), at most 5 minutes. [default: 1]")
    var retryDelay: String?
    @Option(help: "On SIGTERM, seconds for requests in flight and then running handlers to finish; shutdown takes at most this plus 5. [default: 30]")
    var shutdownGrace: String?
    @Option(help: ArgumentHelp(
        "Refuse events whose signed timestamp is more than this old (or ahead): seconds, or 90m, 36h, 3d; measured on event time, so make it at least KLIQ's retry horizon. [default: off]",
        valueName: "DURATION|off"))
    var replayWindow: String?
    @Option(help: ArgumentHelp(
        "Forget events (events/, done ledger entries, quarantine/) this long after they were accepted: at least twice --replay-window, which it needs. [default: forever]",
        valueName: "DURATION|forever"))
    var retention: String?
    @Option(help: ArgumentHelp(
        "files (local JSON files), postgres (shared by replicas: needs --database-url) or memory (nothing kept: for measuring the HTTP stack alone). [default: files, or postgres when a database URL is given]",
        valueName: "files|postgres|memory"))
    var store: String?
    @Option(help: ArgumentHelp("The PostgreSQL database (also KLIQ_DATABASE_URL); implies --store postgres. Its password is never printed.",
                               valueName: "postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=disable|prefer|require]"))
    var databaseURL: String?
    @Option(help: "The schema holding every table (created and migrated at start). [default: kliq]") var databaseSchema: String?
    @Option(help: "Seconds a handler delivery is leased to this process while its handler runs (renewed; another replica takes it over once a lease runs out). [default: 30]")
    var lease: String?
    @Option(name: .customLong("kliq-api-url"), help: ArgumentHelp("KLIQ's API, for the polling fallback (also KLIQ_API_URL). [default: https://api.kliqpulse.com/v1]", valueName: "URL"))
    var kliqAPIURL: String?
    @Option(help: ArgumentHelp("The tenant the polling fallback reads jobs of (also KLIQ_TENANT_ID). With an API key, polling is on.", valueName: "ID"))
    var kliqTenant: String?
    @Option(name: .customLong("kliq-api-key-file"), help: ArgumentHelp("File holding the KLIQ API key (else KLIQ_API_KEY); never printed.", valueName: "PATH"))
    var kliqAPIKeyFile: String?
    @Option(help: ArgumentHelp("Poll a tracked job once it has gone this long without a final state: seconds, or 90s, 2m, 1h. [default: 2m]", valueName: "DURATION"))
    var pollAfter: String?
    @Option(help: ArgumentHelp("Longest wait between two polls of one job (the wait doubles from --poll-after up to this). [default: 5m]", valueName: "DURATION"))
    var pollMaxInterval: String?
    @Option(help: "At most this many API requests in any one second, all polling together. [default: 5]") var pollRate: String?
    @Option(name: .customLong("trusted-proxy"), help: ArgumentHelp(
        "Address or network (127.0.0.1, 10.0.0.0/8, ::1) of a reverse proxy whose X-Forwarded-For, Forwarded, X-Real-IP and X-Request-Id are believed. Repeatable. [default: none]",
        valueName: "ADDRESS"))
    var trustedProxy: [String] = []
    @Option(help: "Address of the Prometheus metrics endpoint (GET /metrics). [default: 127.0.0.1]") var metricsHost: String?
    @Option(help: ArgumentHelp("Port of the metrics endpoint; 0 picks a free one, off turns it off. [default: 9464]", valueName: "PORT|off"))
    var metricsPort: String?
    @Option(help: "Address of the operator console and its admin API (GET /, /api/…). [default: 127.0.0.1]") var adminHost: String?
    @Option(help: ArgumentHelp("Port of the console; 0 picks a free one, off turns it off. [default: 9465]", valueName: "PORT|off"))
    var adminPort: String?
    @Option(help: ArgumentHelp("File holding the console's admin token (required off loopback); never printed.", valueName: "PATH"))
    var adminTokenFile: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical. [default: info]") var logLevel: String?
    @Option(help: "text or json. [default: text]") var logFormat: String?
    @Option(help: "Config file: one 'name = value' a line, names as these flags (also KLIQ_CONFIG).") var config: String?
    @Flag(help: "Print the effective configuration, with where each value came from, and exit (secrets are never shown).")
    var printConfig = false

    /// The values given on the command line, by flag name.
    var flags: [String: [String]] {
        var flags: [String: [String]] = ["exec": self.exec, "forward": self.forward, "trusted-proxy": self.trustedProxy]
        let single: [(String, String?)] = [
            ("host", self.host), ("port", self.port), ("path", self.path), ("data-dir", self.dataDir), ("max-body-bytes", self.maxBodyBytes),
            ("request-timeout", self.requestTimeout), ("idle-timeout", self.idleTimeout), ("max-connections", self.maxConnections),
            ("max-in-flight-bytes", self.maxInFlightBytes), ("max-queued-bytes", self.maxQueuedBytes),
            ("secret-file", self.secretFile), ("exec-timeout", self.execTimeout), ("forward-timeout", self.forwardTimeout),
            ("events", self.events), ("retry-attempts", self.retryAttempts), ("retry-delay", self.retryDelay),
            ("shutdown-grace", self.shutdownGrace), ("replay-window", self.replayWindow), ("retention", self.retention), ("store", self.store), ("database-url", self.databaseURL),
            ("database-schema", self.databaseSchema), ("lease", self.lease), ("metrics-host", self.metricsHost),
            ("kliq-api-url", self.kliqAPIURL), ("kliq-tenant", self.kliqTenant), ("kliq-api-key-file", self.kliqAPIKeyFile),
            ("poll-after", self.pollAfter), ("poll-max-interval", self.pollMaxInterval), ("poll-rate", self.pollRate),
            ("metrics-port", self.metricsPort), ("log-level", self.logLevel), ("log-format", self.logFormat),
            ("admin-host", self.adminHost), ("admin-port", self.adminPort), ("admin-token-file", self.adminTokenFile),
        ]
        for case let (name, value?) in single { flags[name] = [value] }
        return flags
    }

    static func eventTypes(_ list: String) -> Set<EventType> {
        Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { EventType($0) })
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        let settings: ServeSettings
        do {
            settings = try ServeSettings(flags: self.flags, configFile: self.config, environment: environment)
        } catch {
            SecretSource.fail("invalid configuration: \(error)")
        }
        if self.printConfig {
            let secrets = SecretSource.describe(file: settings.secretFile, environment: environment)
                + "; " + APIKeySource.describe(file: settings.kliqAPIKeyFile, environment: environment)
            FileHandle.standardOutput.write(Data(settings.printed(secrets: secrets).utf8))
            return
        }
        let adminToken: AdminToken?
        do {
            adminToken = try ConsoleEndpoint.token(settings)
        } catch {
            SecretSource.fail("invalid configuration: \(error)")
        }
        LogOutput.bootstrap(format: settings.logFormat, level: settings.logLevel)
        let logger = Logger(label: "kliq-webhooks")
        let (secrets, origin) = try SecretSource.load(file: settings.secretFile, environment: environment, logger: logger)
        let api: KliqAPIClient?
        do {
            api = try APIKeySource.client(url: settings.kliqAPIURL, tenant: settings.kliqTenant, keyFile: settings.kliqAPIKeyFile,
                                          rate: settings.pollRate, environment: environment, logger: logger)
        } catch {
            SecretSource.fail("invalid configuration: \(error)")
        }

        let store: any EventStore
        var database: PostgresEventStore?
        do {
            switch settings.store {
            case .memory: store = InMemoryEventStore()
            case .files: store = try FileEventStore(directory: settings.dataDir)
            case .postgres:
                let postgres = try PostgresEventStore(configuration: settings.databaseURL!.configuration, schema: settings.databaseSchema, logger: logger)
                (store, database) = (postgres, postgres)
            }
        } catch {
            FileHandle.standardError.write(Data("kliq-webhooks: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        // The connection pool runs for as long as serve does, and stops after the handlers have drained.
        let pool = database.map { database in Task { try? await database.run() } }
        defer { pool?.cancel() }
        // Let the pool's task start before the first query (which would otherwise warn that it has not).
        if pool != nil { try? await Task.sleep(for: .milliseconds(20)) }
        var schemaVersion = 0
        if let database, let url = settings.databaseURL {
            do {
                schemaVersion = try await database.migrate()
            } catch {
                FileHandle.standardError.write(Data("kliq-webhooks: \((error as? WebhookError)?.message ?? "\(error)") (\(url.redacted))\n".utf8))
                throw ExitCode(1)
            }
        }
        if settings.store == .memory { logger.warning("--store memory: events are not kept and nothing survives a restart") }
        let metrics = settings.metricsPort.map { MetricsEndpoint(host: settings.metricsHost, port: $0, version: KliqWebhooksCommand.configuration.version) }
        let receiver = Receiver(
            verifier: try SignatureVerifier(secrets: secrets),
            store: store,
            configuration: .init(
                maxBodyBytes: settings.maxBodyBytes,
                retry: RetryPolicy(maxAttempts: settings.retryAttempts, initialDelay: .seconds(settings.retryDelay)),
                shutdownGracePeriod: .seconds(settings.shutdownGrace),
                replayWindow: settings.replayWindow.map { .seconds($0) },
                maxQueuedBytes: settings.maxQueuedBytes,
                lease: .milliseconds(Int64(settings.lease * 1000))
            ),
            logger: logger
        )
        Self.registerHandlers(on: receiver, settings: settings)

        let configuration = WebhookServer.Configuration(
            host: settings.host, port: settings.port, path: settings.path, trustedProxies: settings.trustedProxies,
            requestTimeout: .seconds(settings.requestTimeout), idleTimeout: .seconds(settings.idleTimeout),
            maxConnections: settings.maxConnections, maxInFlightBytes: settings.maxInFlightBytes)
        let kept = switch settings.store {
        case .memory: "in memory only"
        case .files: "data directory \(settings.dataDir)"
        case .postgres: "database \(settings.databaseURL!.redacted), schema \(settings.databaseSchema) version \(schemaVersion)"
        }
        let polling = api.map { ", polling \($0.configuration.baseURL) as tenant \($0.configuration.tenantId) for late jobs" } ?? ""
        let summary = "\(kept), \(secrets.count) secret\(secrets.count == 1 ? "" : "s") from \(origin)\(polling)"
        // `events redeliver` reaches a files serve through its inbox/; with PostgreSQL it changes the database.
        var inbox: [any Service] = settings.store == .files
            ? [RedriveInbox(directory: DataDirectory(path: settings.dataDir), receiver: receiver, logger: logger)] : []
        // States `jobs reconcile` polled reach the receivers through the inbox or the database.
        if settings.store != .memory {
            inbox.append(PolledInbox(directory: settings.store == .files ? DataDirectory(path: settings.dataDir) : nil, database: database,
                                     receiver: receiver, logger: logger))
        }
        let readiness = Readiness(store: store)
        let console = settings.adminPort.map { ConsoleEndpoint(host: settings.adminHost, port: $0, receiver: receiver, token: adminToken) }
        let lines = AddressLines(expecting: Set([.webhook] + (metrics == nil ? [] : [.metrics]) + (console == nil ? [] : [.console])))
        let app = WebhookServer.application(
            receiver: receiver, configuration: configuration, services: inbox, readiness: readiness, logger: logger
        ) { address in
            lines.bound(.webhook, "kliq-webhooks listening on \(Self.url(address, host: settings.host, port: settings.port))\(settings.path) (\(summary))")
        }
        var services: [any Service] = []
        if let metrics {
            services.append(metrics.application(logger: logger) { address in
                lines.bound(.metrics, "kliq-webhooks metrics at \(Self.url(address, host: settings.metricsHost, port: settings.metricsPort ?? 0))/metrics")
            })
        }
        if let console {
            services.append(console.application(logger: logger) { address in
                lines.bound(.console, "kliq-webhooks console at \(Self.url(address, host: settings.adminHost, port: settings.adminPort ?? 0))/")
            })
        }
        if let retention = settings.retention {
            services.append(try RetentionService(
                store: store, retention: .seconds(retention),
                replayWindow: settings.replayWindow.map { .seconds($0) }, logger: logger))
        }
        if let api {
            services.append(JobReconciler(
                receiver: receiver, client: api,
                configuration: .init(pollAfter: .milliseconds(Int64(settings.pollAfter * 1000)), maxInterval: .milliseconds(Int64(settings.pollMaxInterval * 1000))),
                logger: logger))
        }
        let reload = settings.secretFile.map { SecretReload(file: $0, receiver: receiver, logger: logger) }
        if let reload { services.append(reload) }
        do {
            try await WebhookServer.run(
                app, readiness: readiness, services: services,
                maximumShutdown: .seconds(settings.shutdownGrace) + .seconds(5), logger: logger
            )
        } catch where !lines.unbound.isEmpty {
            // A listener that could not bind: one line naming it and why, exit 1.
            let failed = lines.unbound.map { listener in
                switch listener {
                case .webhook: "http://\(settings.host):\(settings.port)\(settings.path)"
                case .metrics: "http://\(settings.metricsHost):\(settings.metricsPort ?? 0)/metrics"
                case .console: "http://\(settings.adminHost):\(settings.adminPort ?? 0)/"
                }
            }
            await (store as? FileEventStore)?.close()
            FileHandle.standardError.write(Data("kliq-webhooks: cannot listen on \(failed.joined(separator: " or ")): \(AddressLines.reason(error))\n".utf8))
            throw ExitCode(1)
        }
        // Checkpoint the journal, so the next start has nothing to replay.
        await (store as? FileEventStore)?.close()
        logger.info("stopped")
    }

    static func url(_ address: SocketAddress?, host: String, port: Int) -> String {
        let host = address?.ipAddress ?? host
        return "http://\(host.contains(":") ? "[\(host)]" : host):\(address?.port ?? port)"
    }

    /// Registers `exec#1`, `exec#2`, … and `forward#1`, … (their ledger names, by position on the command line).
    private static func registerHandlers(on receiver: Receiver, settings: ServeSettings) {
        let filter = settings.events
        func register(_ name: String, _ run: @escaping @Sendable (Event) async throws -> Void) {
            if let filter {
                receiver.on(filter, name: name) { event, _ in try await run(event) }
            } else {
                receiver.onAny(name: name, run)
            }
        }
        for (index, command) in settings.exec.enumerated() {
            let handler = ExecHandler(command: command, timeout: .seconds(settings.execTimeout))
            register("exec#\(index + 1)") { try await handler.run($0) }
        }
        for (index, url) in settings.forward.enumerated() {
            let handler = ForwardHandler(url: url, client: .shared, timeout: .nanoseconds(Duration.seconds(settings.forwardTimeout).nanoseconds),
                                         sign: { [receiver] in receiver.verifier.sign($0) })
            register("forward#\(index + 1)") { try await handler.run($0) }
        }
    }
}

/// `--store`: where `serve` keeps events.
enum StoreKind: String, CaseIterable, Sendable {
    case files
    case postgres
    case memory
}
