import ArgumentParser
import Foundation
import KliqWebhooks
import KliqWebhooksPolling
import KliqWebhooksPostgres
import Logging
import ServiceLifecycle

/// Where the KLIQ API key comes from: `--kliq-api-key-file PATH` when given, else `KLIQ_API_KEY`.
/// Never printed: `--print-config` shows only where it comes from.
enum APIKeySource {
    static let environmentVariable = "KLIQ_API_KEY"

    /// The key, or `nil` when none is configured. - Throws: ``Failure`` when the file cannot be read or is empty.
    static func load(file: String?, environment: [String: String]) throws -> APIKey? {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw Failure("cannot read --kliq-api-key-file \(file): check the path and its permissions")
            }
            let key = APIKey(String(decoding: data, as: UTF8.self))
            guard !key.value.isEmpty else { throw Failure("--kliq-api-key-file \(file) holds no key") }
            return key
        }
        return environment[Self.environmentVariable].map(APIKey.init).flatMap { $0.value.isEmpty ? nil : $0 }
    }

    static func describe(file: String?, environment: [String: String]) -> String {
        if let file { return "KLIQ API key from --kliq-api-key-file \(file)" }
        return environment[Self.environmentVariable].map { $0.isEmpty ? nil : $0 } == nil
            ? "no KLIQ API key (polling fallback off)" : "KLIQ API key from \(Self.environmentVariable)"
    }

    /// The client for the polling fallback, or `nil` when neither a key nor a tenant is configured.
    /// - Throws: ``Failure`` when only one of the two is.
    static func client(url: String, tenant: String?, keyFile: String?, rate: Int, environment: [String: String], logger: Logger) throws -> KliqAPIClient? {
        let key = try Self.load(file: keyFile, environment: environment)
        switch (key, tenant) {
        case (nil, nil): return nil
        case (nil, _): throw Failure("the polling fallback needs an API key too: set KLIQ_API_KEY or pass --kliq-api-key-file PATH")
        case (_, nil): throw Failure("the polling fallback needs the tenant too: pass --kliq-tenant ID or set KLIQ_TENANT_ID")
        case (let key?, let tenant?):
            return KliqAPIClient(configuration: .init(baseURL: url, apiKey: key, tenantId: tenant, requestsPerSecond: rate), logger: logger)
        }
    }
}

/// The API options of `jobs start`, `jobs reconcile` and `jobs wait` (as `serve` takes them).
struct APIOptions: ParsableArguments {
    @Option(help: ArgumentHelp("KLIQ's API (also KLIQ_API_URL). [default: https://api.kliqpulse.com/v1]", valueName: "URL"))
    var kliqAPIURL: String?
    @Option(help: ArgumentHelp("The tenant (also KLIQ_TENANT_ID).", valueName: "ID")) var kliqTenant: String?
    @Option(help: ArgumentHelp("File holding the API key (else KLIQ_API_KEY).", valueName: "PATH")) var kliqAPIKeyFile: String?
    @Option(help: "At most this many API requests in any one second. [default: 5]") var pollRate = 5
    @Option(help: ArgumentHelp("A tracked job is polled once it has gone this long without a final state. [default: 2m]", valueName: "DURATION"))
    var pollAfter = "2m"

    func validate() throws {
        guard self.pollRate >= 1 else { throw ValidationError("--poll-rate is at least 1") }
        do { _ = try ServeSettings.duration(self.pollAfter) } catch { throw ValidationError("--poll-after: '\(self.pollAfter)' is not a duration (seconds, or a number with s, m, h or d)") }
    }

    var pollAfterSeconds: Double { (try? ServeSettings.duration(self.pollAfter)) ?? 120 }

    /// The client, or `nil` when no key and no tenant are configured (flags, else environment).
    func client(logger: Logger) throws -> KliqAPIClient? {
        let environment = ProcessInfo.processInfo.environment
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let url = self.kliqAPIURL ?? env("KLIQ_API_URL") ?? KliqAPIClient.Configuration.defaultBaseURL
        guard ServeSettings.isHTTPURL(url) else {
            throw ValidationError("--kliq-api-url needs an http:// or https:// URL, not '\(url)'")
        }
        return try APIKeySource.client(url: url, tenant: self.kliqTenant ?? env("KLIQ_TENANT_ID"), keyFile: self.kliqAPIKeyFile ?? env("KLIQ_API_KEY_FILE"),
                                       rate: self.pollRate, environment: environment, logger: logger)
    }

    /// The client; fails with one line when the API is not configured.
    func requireClient(logger: Logger) throws -> KliqAPIClient {
        guard let client = try self.client(logger: logger) else {
            throw Failure("this needs KLIQ's API: set KLIQ_API_KEY (or --kliq-api-key-file PATH) and KLIQ_TENANT_ID (or --kliq-tenant ID)")
        }
        return client
    }
}

/// Inside `serve`: stores and dispatches the job states `kliq-webhooks jobs reconcile` (or `jobs wait`)
/// polled, left in the data directory's `inbox/` or the database's `polled_inbox`. Twice a second.
struct PolledInbox: Service {
    let directory: DataDirectory?
    let database: PostgresEventStore?
    let receiver: Receiver
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            if let directory = self.directory {
                for (name, body) in directory.polledStates() {
                    do {
                        try await self.store(body)
                        directory.done(name)
                    } catch {
                        self.logger.error("could not store a polled state from inbox/", metadata: ["kliq.file": .string(name), "kliq.error": "\(error)"])
                    }
                }
            }
            if let database = self.database {
                do {
                    _ = try await database.takePolled(limit: 100) { body in try await self.store(body) }
                } catch {
                    self.logger.warning("could not read polled states", metadata: ["kliq.error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Stores one polled state; one that is not a polled event is dropped with an error line (it could
    /// never be stored), one the store refused stays for the next round.
    private func store(_ body: [UInt8]) async throws {
        let event: Event
        do {
            event = try Event(decoding: body)
        } catch {
            self.logger.error("dropped a polled state that is not an event", metadata: ["kliq.error": .string(error.description)])
            return
        }
        guard event.isPolled else {
            self.logger.error("dropped a polled state not made by polling", metadata: ["kliq.event_id": .string(event.id)])
            return
        }
        _ = try await self.receiver.receive(polled: event)
    }
}
