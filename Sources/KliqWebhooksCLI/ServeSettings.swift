import Configuration
import Foundation
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksPolling
import KliqWebhooksPostgres
import Logging

/// `serve`'s effective configuration: each setting from the command line, else the environment
/// (`KLIQ_` + the flag's name in capitals, `-` as `_`), else the config file (`--config` or `KLIQ_CONFIG`:
/// one `name = value` a line, names as the long flags), else its default. The settings are declared
/// once, in ``ServeOption/all``; swift-configuration's `ConfigReader` layers the four sources, and an
/// access reporter records which one gave each value, for `--print-config`.
struct ServeSettings: Sendable {
    // Every value below is set from ServeOption.all (defaults included); these initial values are only
    // placeholders a struct needs.
    var host = "127.0.0.1"
    var port = 8080
    var path = "/webhooks/kliq"
    var dataDir = "./kliq-data"
    var maxBodyBytes = 4_194_304
    var requestTimeout = 30.0
    var idleTimeout = 60.0
    var maxConnections = 1024
    var maxInFlightBytes = 67_108_864
    var maxQueuedBytes = 33_554_432
    var secretFile: String?
    var exec: [String] = []
    var execTimeout = 300.0
    var forward: [String] = []
    var forwardTimeout = 30.0
    var events: Set<EventType>?
    var retryAttempts = 8
    var retryDelay = 1.0
    var shutdownGrace = 30.0
    /// Seconds; `nil` when off.
    var replayWindow: Double?
    /// Seconds; `nil` for forever.
    var retention: Double?
    var store = StoreKind.files
    /// `--database-url` / `KLIQ_DATABASE_URL`, read (its password is never printed).
    var databaseURL: PostgresURL?
    var databaseSchema = "kliq"
    /// Seconds a claimed handler delivery is leased to this process (renewed while it runs).
    var lease = 30.0
    var kliqAPIURL = KliqAPIClient.Configuration.defaultBaseURL
    var kliqTenant: String?
    var kliqAPIKeyFile: String?
    /// Seconds.
    var pollAfter = 120.0
    /// Seconds.
    var pollMaxInterval = 300.0
    var pollRate = 5
    var trustedProxies = TrustedProxies.none
    var metricsHost = "127.0.0.1"
    /// `nil`: no metrics endpoint (`metrics-port = off`).
    var metricsPort: Int? = 9464
    var adminHost = "127.0.0.1"
    /// `nil`: no console (`admin-port = off`).
    var adminPort: Int? = 9465
    var adminTokenFile: String?
    /// Where spans are exported over OTLP/HTTP; `nil`: no export.
    var otlpTracesURL: String?
    var logLevel = Logger.Level.info
    var logFormat = LogFormat.text

    /// Where each setting's value came from (`--port`, `KLIQ_PORT`, `/etc/kliq-webhooks.conf:3`, `default`),
    /// and the values as text, for `--print-config`.
    private(set) var resolved: [(option: ServeOption, values: [(value: String, origin: String)])] = []

    /// Resolves every setting.
    /// - Parameters:
    ///   - flags: values given on the command line, by setting name (without `--`).
    ///   - configFile: the `--config` path, if given; else `KLIQ_CONFIG` is used, if set.
    /// - Throws: ``ConfigurationError`` naming the setting, where it came from, and what is expected.
    init(flags: [String: [String]], configFile: String?, environment: [String: String]) throws(ConfigurationError) {
        let filePath = configFile ?? environment["KLIQ_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file = try filePath.map { path throws(ConfigurationError) in try ConfigFile(path: path) }
        let sources = Sources(flags: flags, file: file, environment: environment)
        for option in ServeOption.all {
            let (values, origins) = sources.values(of: option)
            let origin = origins.first ?? "default"
            if !option.list, values.count > 1 {
                throw ConfigurationError("\(origin): '\(option.name)' is given \(values.count) times; it takes one value")
            }
            do {
                try option.apply(&self, values)
            } catch let problem as ServeOption.Problem {
                throw ConfigurationError("\(origin): \(problem.text)")
            } catch {
                throw ConfigurationError("\(origin): \(error)")
            }
            self.resolved.append((option, zip(values, origins).map { ($0, $1) }))
        }
        // A database URL alone means the PostgreSQL store; --store postgres needs one.
        if self.databaseURL != nil, let index = self.resolved.firstIndex(where: { $0.option.name == "store" }),
            self.resolved[index].values.first?.origin == "default"
        {
            self.store = .postgres
            self.resolved[index].values = [("postgres", "implied by the database URL")]
        }
        if self.store == .postgres, self.databaseURL == nil {
            throw ConfigurationError("--store postgres needs the database: --database-url URL or KLIQ_DATABASE_URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DB)")
        }
        // The console changes what the receiver holds: off loopback, only with a token.
        if self.adminPort != nil, self.adminTokenFile == nil, !Self.isLoopback(self.adminHost) {
            throw ConfigurationError("the console on \(self.adminHost) is reachable from other machines: give it --admin-token-file PATH, or keep --admin-host 127.0.0.1, or --admin-port off")
        }
        if let retention = self.retention {
            do {
                try RetentionService.check(retention: .seconds(retention), replayWindow: self.replayWindow.map { .seconds($0) })
            } catch {
                throw ConfigurationError(error.message)
            }
        }
    }

    /// Whether `text` is an `http://` or `https://` URL with a host (`--forward`, `--kliq-api-url`, `replay --url`).
    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased() else { return false }
        return ["http", "https"].contains(scheme) && url.host != nil
    }

    /// Whether `host` only accepts connections from this machine.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// A positive duration: seconds, or a number with `s`, `m`, `h` or `d` (`90m`, `36h`, `30d`).
    static func duration(_ text: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = Substring(text)
        var unit = 1.0
        if let last = text.last, let factor = units[last] {
            number = number.dropLast()
            unit = factor
        }
        guard let value = Double(number), value.isFinite, value > 0 else {
            throw ServeOption.Problem(text: "'\(text)' is not a duration (seconds, or a number with s, m, h or d, e.g. 30d)")
        }
        return value * unit
    }

    /// The effective configuration in config-file syntax, each line with where its value came from.
    /// Secrets are never shown: only how many there are and where they come from.
    func printed(secrets: String) -> String {
        var lines = ["# kliq-webhooks serve: effective configuration (command line > environment > config file > default)"]
        for (key, values) in self.resolved {
            if values.isEmpty {
                lines.append("# \(key.name) is not set".padding(toLength: 44, withPad: " ", startingAt: 0) + " # default")
            }
            for (value, origin) in values {
                // The database URL's password is never shown.
                let value = key.name == "database-url" ? (self.databaseURL?.redacted ?? "***") : value
                lines.append("\(key.name) = \(value)".padding(toLength: max(44, key.name.count + value.count + 3), withPad: " ", startingAt: 0) + " # \(origin)")
            }
        }
        lines.append("# secrets: \(secrets)")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// An invalid setting, from any source. `serve` prints it as one line and exits with status 2.
struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The optional config file: `name = value` lines, `#` comments, names as the long flags; a list
/// setting (`exec`, `forward`, `trusted-proxy`) may appear on several lines.
struct ConfigFile: Sendable {
    let path: String
    let values: [String: [(value: String, line: Int)]]

    init(path: String) throws(ConfigurationError) {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read config file \(path): check the path and its permissions")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ConfigurationError("\(path): not UTF-8 text")
        }
        let names = Set(ServeOption.all.map(\.name))
        var values: [String: [(String, Int)]] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError("\(path):\(index + 1): expected 'name = value', got '\(line)'")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if ["secret", "secrets", "webhook-secret"].contains(name) {
                throw ConfigurationError("\(path):\(index + 1): secrets do not go in the config file: use secret-file = PATH or KLIQ_WEBHOOK_SECRET")
            }
            if ["kliq-api-key", "api-key"].contains(name) {
                throw ConfigurationError("\(path):\(index + 1): the API key does not go in the config file: use kliq-api-key-file = PATH or KLIQ_API_KEY")
            }
            guard names.contains(name) else {
                throw ConfigurationError("\(path):\(index + 1): unknown setting '\(name)' (settings are named as serve's long flags, e.g. port)")
            }
            values[name, default: []].append((value, index + 1))
        }
        self.values = values
    }
}
