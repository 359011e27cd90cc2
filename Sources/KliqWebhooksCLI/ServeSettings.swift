import Foundation
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksPolling
import KliqWebhooksPostgres
import Logging

/// `serve`'s effective configuration: each setting from the command line, else the environment
/// (`KLIQ_` + the flag's name in capitals, `-` as `_`), else the config file (`--config` or `KLIQ_CONFIG`:
/// one `name = value` a line, names as the long flags), else its default.
struct ServeSettings: Sendable {
    /// One setting: its flag name, whether it may repeat, its default (as text) and what it means.
    struct Key: Sendable {
        var name: String
        var list = false
        var defaultValue: [String]
        /// The environment variable, when it is not `KLIQ_` + the name (`KLIQ_API_URL` for `kliq-api-url`).
        var environment: String? = nil
        var environmentName: String { self.environment ?? "KLIQ_" + self.name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    static let keys: [Key] = [
        Key(name: "host", defaultValue: ["127.0.0.1"]),
        Key(name: "port", defaultValue: ["8080"]),
        Key(name: "path", defaultValue: ["/webhooks/kliq"]),
        Key(name: "data-dir", defaultValue: ["./kliq-data"]),
        Key(name: "max-body-bytes", defaultValue: ["4194304"]),
        Key(name: "request-timeout", defaultValue: ["30"]),
        Key(name: "idle-timeout", defaultValue: ["60"]),
        Key(name: "max-connections", defaultValue: ["1024"]),
        Key(name: "max-in-flight-bytes", defaultValue: ["67108864"]),
        Key(name: "secret-file", defaultValue: []),
        Key(name: "max-queued-bytes", defaultValue: ["33554432"]),
        Key(name: "exec", list: true, defaultValue: []),
        Key(name: "exec-timeout", defaultValue: ["300"]),
        Key(name: "forward", list: true, defaultValue: []),
        Key(name: "forward-timeout", defaultValue: ["30"]),
        Key(name: "events", defaultValue: []),
        Key(name: "retry-attempts", defaultValue: ["8"]),
        Key(name: "retry-delay", defaultValue: ["1"]),
        Key(name: "shutdown-grace", defaultValue: ["30"]),
        Key(name: "replay-window", defaultValue: ["off"]),
        Key(name: "retention", defaultValue: ["forever"]),
        Key(name: "store", defaultValue: ["files"]),
        Key(name: "database-url", defaultValue: []),
        Key(name: "database-schema", defaultValue: ["kliq"]),
        Key(name: "lease", defaultValue: ["30"]),
        Key(name: "kliq-api-url", defaultValue: [KliqAPIClient.Configuration.defaultBaseURL], environment: "KLIQ_API_URL"),
        Key(name: "kliq-tenant", defaultValue: [], environment: "KLIQ_TENANT_ID"),
        Key(name: "kliq-api-key-file", defaultValue: [], environment: "KLIQ_API_KEY_FILE"),
        Key(name: "poll-after", defaultValue: ["2m"]),
        Key(name: "poll-max-interval", defaultValue: ["5m"]),
        Key(name: "poll-rate", defaultValue: ["5"]),
        Key(name: "trusted-proxy", list: true, defaultValue: []),
        Key(name: "metrics-host", defaultValue: ["127.0.0.1"]),
        Key(name: "metrics-port", defaultValue: ["9464"]),
        Key(name: "admin-host", defaultValue: ["127.0.0.1"]),
        Key(name: "admin-port", defaultValue: ["9465"]),
        Key(name: "admin-token-file", defaultValue: []),
        Key(name: "log-level", defaultValue: ["info"]),
        Key(name: "log-format", defaultValue: ["text"]),
    ]

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
    var logLevel = Logger.Level.info
    var logFormat = LogFormat.text

    /// Where each setting's value came from (`--port`, `KLIQ_PORT`, `/etc/kliq-webhooks.conf:3`, `default`),
    /// and the values as text, for `--print-config`.
    private(set) var resolved: [(key: Key, values: [(value: String, origin: String)])] = []

    /// Resolves every setting.
    /// - Parameters:
    ///   - flags: values given on the command line, by flag name (without `--`).
    ///   - configFile: the `--config` path, if given; else `KLIQ_CONFIG` is used, if set.
    /// - Throws: ``ConfigurationError`` naming the setting, where it came from, and what is expected.
    init(flags: [String: [String]], configFile: String?, environment: [String: String]) throws(ConfigurationError) {
        let filePath = configFile ?? environment["KLIQ_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file = try filePath.map { path throws(ConfigurationError) in try ConfigFile(path: path) }
        for key in Self.keys {
            let values: [String]
            let origin: String
            var origins: [String]? = nil
            if let given = flags[key.name], !given.isEmpty {
                (values, origin) = (given, "--" + key.name)
            } else if let value = environment[key.environmentName], !value.isEmpty {
                (values, origin) = (key.list ? Self.splitList(value, key: key) : [value], key.environmentName)
            } else if let file, let entries = file.values[key.name] {
                (values, origin) = (entries.map(\.value), "\(file.path):\(entries[0].line)")
                origins = entries.map { "\(file.path):\($0.line)" }
            } else {
                (values, origin) = (key.defaultValue, "default")
            }
            if !key.list, values.count > 1 {
                throw ConfigurationError("\(origin): '\(key.name)' is given \(values.count) times; it takes one value")
            }
            do {
                try self.apply(key.name, values)
            } catch let problem as Problem {
                throw ConfigurationError("\(origin): \(problem.text)")
            } catch {
                throw ConfigurationError("\(origin): \(error)")
            }
            self.resolved.append((key, zip(values, origins ?? Array(repeating: origin, count: values.count)).map { ($0, $1) }))
        }
        // A database URL alone means the PostgreSQL store; --store postgres needs one.
        let storeOrigin = self.resolved.first { $0.key.name == "store" }?.values.first?.origin
        if self.databaseURL != nil, storeOrigin == "default", let index = self.resolved.firstIndex(where: { $0.key.name == "store" }) {
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
            throw Problem(text: "'\(text)' is not a duration (seconds, or a number with s, m, h or d, e.g. 30d)")
        }
        return value * unit
    }

    /// Lists from the environment: `exec` commands are one a line (a command may hold commas);
    /// `forward` URLs and `trusted-proxy` entries may also be separated by commas.
    static func splitList(_ value: String, key: Key) -> [String] {
        let separators: Set<Character> = key.name == "exec" ? ["\n"] : ["\n", ","]
        return value.split(whereSeparator: { separators.contains($0) })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private struct Problem: Error { var text: String }

    private mutating func apply(_ name: String, _ values: [String]) throws {
        let value = values.first ?? ""
        func number(_ range: ClosedRange<Int>, _ what: String) throws -> Int {
            guard let number = Int(value), range.contains(number) else { throw Problem(text: "'\(value)' is not \(what)") }
            return number
        }
        func seconds(allowZero: Bool) throws -> Double {
            guard let number = Double(value), number.isFinite, allowZero ? number >= 0 : number > 0 else {
                throw Problem(text: "'\(value)' is not a number of seconds\(allowZero ? " (0 or more)" : " above 0")")
            }
            return number
        }
        switch name {
        case "host":
            guard !value.isEmpty else { throw Problem(text: "host cannot be empty") }
            self.host = value
        case "port": self.port = try number(0...65535, "a port (0…65535; 0 picks a free one)")
        case "path":
            guard value.hasPrefix("/") else { throw Problem(text: "path must start with '/', e.g. /webhooks/kliq, not '\(value)'") }
            self.path = value
        case "data-dir":
            guard !value.isEmpty else { throw Problem(text: "data-dir cannot be empty") }
            self.dataDir = value
        case "max-body-bytes": self.maxBodyBytes = try number(1...Int(Int32.max), "a positive number of bytes")
        case "request-timeout": self.requestTimeout = try seconds(allowZero: false)
        case "idle-timeout": self.idleTimeout = try seconds(allowZero: false)
        case "max-connections": self.maxConnections = try number(1...1_000_000, "a number of connections (1…1000000)")
        case "max-in-flight-bytes": self.maxInFlightBytes = try number(1...Int(Int32.max), "a positive number of bytes")
        case "max-queued-bytes": self.maxQueuedBytes = try number(1...Int(Int32.max), "a positive number of bytes")
        case "secret-file": self.secretFile = values.isEmpty ? nil : value
        case "exec": self.exec = values
        case "exec-timeout": self.execTimeout = try seconds(allowZero: false)
        case "forward":
            for url in values {
                guard Self.isHTTPURL(url) else {
                    throw Problem(text: "forward needs an http:// or https:// URL, not '\(url)'")
                }
            }
            self.forward = values
        case "forward-timeout": self.forwardTimeout = try seconds(allowZero: false)
        case "events":
            guard !values.isEmpty else { self.events = nil; return }
            let types = ServeCommand.eventTypes(value)
            guard !types.isEmpty else { throw Problem(text: "events needs at least one event type, e.g. cv.job.completed") }
            self.events = types
        case "retry-attempts": self.retryAttempts = try number(1...1000, "a number of attempts (1…1000)")
        case "retry-delay": self.retryDelay = try seconds(allowZero: true)
        case "shutdown-grace": self.shutdownGrace = try seconds(allowZero: true)
        case "replay-window": self.replayWindow = value == "off" ? nil : try Self.duration(value)
        case "retention": self.retention = value == "forever" ? nil : try Self.duration(value)
        case "store":
            guard let kind = StoreKind(rawValue: value) else { throw Problem(text: "store is files, postgres or memory, not '\(value)'") }
            self.store = kind
        case "database-url":
            do {
                self.databaseURL = values.isEmpty ? nil : try PostgresURL(value)
            } catch {
                throw Problem(text: error.message)
            }
        case "database-schema":
            guard PostgresEventStore.isValidSchema(value) else {
                throw Problem(text: "database-schema must be letters, digits and _ (at most 63, not starting with a digit), not '\(value)'")
            }
            self.databaseSchema = value
        case "lease": self.lease = try seconds(allowZero: false)
        case "kliq-api-url":
            guard Self.isHTTPURL(value) else {
                throw Problem(text: "kliq-api-url needs an http:// or https:// URL, e.g. https://api.kliqpulse.com/v1, not '\(value)'")
            }
            self.kliqAPIURL = value
        case "kliq-tenant":
            if let value = values.first, value.isEmpty || value.contains("/") { throw Problem(text: "kliq-tenant is a tenant id like t_xyz789, not '\(value)'") }
            self.kliqTenant = values.first
        case "kliq-api-key-file": self.kliqAPIKeyFile = values.first
        case "poll-after": self.pollAfter = try Self.duration(value)
        case "poll-max-interval": self.pollMaxInterval = try Self.duration(value)
        case "poll-rate": self.pollRate = try number(1...10_000, "a number of requests per second (1…10000)")
        case "trusted-proxy":
            do {
                self.trustedProxies = try TrustedProxies(values)
            } catch {
                throw Problem(text: "\(error)")
            }
        case "metrics-host":
            guard !value.isEmpty else { throw Problem(text: "metrics-host cannot be empty") }
            self.metricsHost = value
        case "metrics-port":
            self.metricsPort = value == "off" ? nil : try number(0...65535, "a port (0…65535) or off")
        case "admin-host":
            guard !value.isEmpty else { throw Problem(text: "admin-host cannot be empty") }
            self.adminHost = value
        case "admin-port":
            self.adminPort = value == "off" ? nil : try number(0...65535, "a port (0…65535) or off")
        case "admin-token-file": self.adminTokenFile = values.first
        case "log-level":
            guard let level = Logger.Level(rawValue: value) else {
                throw Problem(text: "log-level is trace, debug, info, notice, warning, error or critical, not '\(value)'")
            }
            self.logLevel = level
        case "log-format":
            guard let format = LogFormat(rawValue: value) else { throw Problem(text: "log-format is text or json, not '\(value)'") }
            self.logFormat = format
        default:
            preconditionFailure("no setting named \(name)")
        }
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
        let names = Set(ServeSettings.keys.map(\.name))
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
