import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import KliqWebhooks
import KliqWebhooksHummingbird
import Logging

/// `kliq-webhooks serve`: the receiver as a service, in the foreground until SIGINT/SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the webhook receiver until SIGINT/SIGTERM, then drain and exit 0.",
        discussion: """
            Secrets: KLIQ_WEBHOOK_SECRET=whsec_… (comma-separated for rotation), or --secret-file PATH (one a line). \
            Without one, serve refuses to start (exit status 2).
            """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one (the listening line shows it).") var port = 8080
    @Option(help: "Path of the webhook endpoint.") var path = "/webhooks/kliq"
    @Option(help: "Directory for events/, jobs/, ledger/, quarantine/ (created, mode 0700).") var dataDir = "./kliq-data"
    @Option(help: "Largest accepted body, in bytes.") var maxBodyBytes = 4_194_304
    @Option(help: "File with the signing secrets, one a line (instead of KLIQ_WEBHOOK_SECRET).") var secretFile: String?
    @Option(name: .customLong("exec"), help: ArgumentHelp(
        "Run COMMAND (via /bin/sh -c) for each accepted event: event JSON on stdin, KLIQ_EVENT_ID, KLIQ_EVENT_TYPE, KLIQ_JOB_ID set. Repeatable.",
        valueName: "COMMAND"))
    var exec: [String] = []
    @Option(name: .customLong("forward"), help: ArgumentHelp(
        "POST each accepted event's raw body with its X-Kliq-Signature to URL. Repeatable.", valueName: "URL"))
    var forward: [String] = []
    @Option(help: ArgumentHelp("Event types the --exec/--forward handlers receive (default: all).", valueName: "TYPE[,TYPE…]"))
    var events: String?
    @Option(help: "Attempts per handler delivery before it is dead.") var retryAttempts = 8
    @Option(help: "Seconds before the first retry; each later one waits twice as long (with jitter), at most 5 minutes.")
    var retryDelay = 1.0
    @Option(help: "On SIGTERM, seconds running handlers may take to finish; what is unfinished then runs at the next start.")
    var shutdownGrace = 30.0
    @Option(help: "Seconds one --exec run may take before it is stopped and counted as failed (then retried).")
    var execTimeout = 300.0
    @Option(help: ArgumentHelp("files (durable, the default) or memory (nothing kept: for measuring the HTTP stack alone).",
                               valueName: "files|memory"))
    var store: StoreKind = .files
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info
    @Option(help: "text or json.") var logFormat: LogFormat = .text

    func validate() throws {
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be between 0 and 65535, not \(self.port)") }
        guard self.path.hasPrefix("/") else { throw ValidationError("--path must start with '/', e.g. /webhooks/kliq") }
        guard self.maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        for url in self.forward {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                throw ValidationError("--forward needs an http:// or https:// URL, not '\(url)'")
            }
        }
        guard self.retryAttempts >= 1 else { throw ValidationError("--retry-attempts must be at least 1") }
        guard self.retryDelay >= 0, self.shutdownGrace >= 0 else { throw ValidationError("--retry-delay and --shutdown-grace cannot be negative") }
        guard self.execTimeout > 0 else { throw ValidationError("--exec-timeout must be positive") }
        if let events, Self.eventTypes(events).isEmpty { throw ValidationError("--events needs at least one event type, e.g. cv.job.completed") }
    }

    static func eventTypes(_ list: String) -> Set<EventType> {
        Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { EventType($0) })
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let (secrets, origin) = try SecretSource.load(file: self.secretFile, environment: ProcessInfo.processInfo.environment)
        LogOutput.bootstrap(format: self.logFormat, level: self.logLevel)
        let logger = Logger(label: "kliq-webhooks")

        let store: any EventStore
        do {
            store = self.store == .memory ? InMemoryEventStore() : try FileEventStore(directory: self.dataDir)
        } catch {
            FileHandle.standardError.write(Data("kliq-webhooks: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        if self.store == .memory { logger.warning("--store memory: events are not kept and nothing survives a restart") }
        let receiver = Receiver(
            verifier: try SignatureVerifier(secrets: secrets),
            store: store,
            configuration: .init(
                maxBodyBytes: self.maxBodyBytes,
                retry: RetryPolicy(maxAttempts: self.retryAttempts, initialDelay: .milliseconds(Int64(self.retryDelay * 1000))),
                shutdownGracePeriod: .milliseconds(Int64(self.shutdownGrace * 1000))
            ),
            logger: logger
        )
        self.registerHandlers(on: receiver)

        let configuration = WebhookServer.Configuration(host: self.host, port: self.port, path: self.path)
        let kept = self.store == .memory ? "in memory only" : "data directory \(self.dataDir)"
        let summary = "\(kept), \(secrets.count) secret\(secrets.count == 1 ? "" : "s") from \(origin)"
        let inbox = RedriveInbox(directory: DataDirectory(path: self.dataDir), receiver: receiver, logger: logger)
        let app = WebhookServer.application(receiver: receiver, configuration: configuration, services: [inbox], logger: logger) { address in
            let host = address?.ipAddress ?? self.host
            let shown = host.contains(":") ? "[\(host)]" : host
            // Unbuffered, so a supervisor or test reading a pipe sees the line at once.
            let line = "kliq-webhooks listening on http://\(shown):\(address?.port ?? self.port)\(self.path) (\(summary))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        try await app.runService()
        logger.info("stopped")
    }

    /// Registers `exec#1`, `exec#2`, … and `forward#1`, … (their ledger names, by position on the command line).
    private func registerHandlers(on receiver: Receiver) {
        let filter = self.events.map(Self.eventTypes)
        func register(_ name: String, _ run: @escaping @Sendable (Event) async throws -> Void) {
            if let filter {
                receiver.on(filter, name: name) { event, _ in try await run(event) }
            } else {
                receiver.onAny(name: name, run)
            }
        }
        for (index, command) in self.exec.enumerated() {
            let handler = ExecHandler(command: command, timeout: .milliseconds(Int64(self.execTimeout * 1000)))
            register("exec#\(index + 1)") { try await handler.run($0) }
        }
        for (index, url) in self.forward.enumerated() {
            let handler = ForwardHandler(url: url, client: .shared)
            register("forward#\(index + 1)") { try await handler.run($0) }
        }
    }
}

/// `--store`: where `serve` keeps events.
enum StoreKind: String, ExpressibleByArgument, CaseIterable, Sendable {
    case files
    case memory
}
