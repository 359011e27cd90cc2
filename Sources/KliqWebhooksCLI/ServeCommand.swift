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

            Settings:
            \(ServeOption.helpText)
            """
    )

    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The settings below, each as --NAME VALUE or --NAME=VALUE.", valueName: "setting"))
    var settings: [String] = []
    @Option(help: "Config file: one 'name = value' a line, names as these flags (also KLIQ_CONFIG).") var config: String?
    @Flag(help: "Print the effective configuration, with where each value came from, and exit (secrets are never shown).")
    var printConfig = false

    func validate() throws { _ = try self.flags() }

    /// The settings given on the command line, by name: `--NAME VALUE` or `--NAME=VALUE`, each name one
    /// of ``ServeOption/all``.
    func flags() throws -> [String: [String]] {
        let names = Set(ServeOption.all.map(\.name))
        var flags: [String: [String]] = [:]
        var index = self.settings.startIndex
        while index < self.settings.endIndex {
            let token = self.settings[index]
            guard token.hasPrefix("--"), token.count > 2 else {
                throw ValidationError("unexpected '\(token)': settings are --NAME VALUE (kliq-webhooks serve --help lists them)")
            }
            var name = String(token.dropFirst(2))
            let value: String
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            } else {
                index += 1
                guard index < self.settings.endIndex else { throw ValidationError("--\(name) needs a value") }
                value = self.settings[index]
            }
            guard names.contains(name) else { throw ValidationError("unknown option '--\(name)' (kliq-webhooks serve --help lists them)") }
            flags[name, default: []].append(value)
            index += 1
        }
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
            settings = try ServeSettings(flags: (try? self.flags()) ?? [:], configFile: self.config, environment: environment)
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
        var tracing: (any Service)?
        if let url = settings.otlpTracesURL {
            do {
                tracing = try TraceExport.bootstrap(url: url, version: KliqWebhooksCommand.configuration.version)
            } catch {
                FileHandle.standardError.write(Data("kliq-webhooks: cannot export traces to \(url): \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
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
        if let tracing { services.append(tracing) }
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
