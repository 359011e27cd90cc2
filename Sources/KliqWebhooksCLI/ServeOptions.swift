import Foundation
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksPolling
import KliqWebhooksPostgres
import Logging

/// One `serve` setting, declared once: its flag (`--NAME VALUE`), its environment variable (`KLIQ_` and
/// the name in capitals, `-` as `_`, unless `environment` names another), its config-file key (NAME), its
/// default, its help line, and how its text becomes a value of ``ServeSettings``. ``ServeSettings``
/// layers the sources with swift-configuration; `serve --help` lists the options from this table.
struct ServeOption: Sendable {
    let name: String
    let valueName: String
    /// As text, as the sources give values; empty: not set.
    let defaultValue: [String]
    /// How `--help` shows the default, when not `[default: VALUE]`.
    let defaultHelp: String?
    let help: String
    /// May be given more than once (`exec`, `forward`, `trusted-proxy`).
    let list: Bool
    let environment: String?
    let apply: @Sendable (inout ServeSettings, [String]) throws -> Void

    var environmentName: String { self.environment ?? "KLIQ_" + self.name.uppercased().replacingOccurrences(of: "-", with: "_") }

    /// A value a setting cannot take; its text says what it takes.
    struct Problem: Error { var text: String }

    /// A setting with one value.
    static func one(_ name: String, _ defaultValue: String?, _ valueName: String, _ help: String, shown: String? = nil, environment: String? = nil,
                    _ apply: @escaping @Sendable (inout ServeSettings, String) throws -> Void) -> ServeOption {
        ServeOption(name: name, valueName: valueName, defaultValue: defaultValue.map { [$0] } ?? [], defaultHelp: shown, help: help,
                    list: false, environment: environment) { settings, values in try apply(&settings, values.first ?? "") }
    }

    /// A setting without a default: `apply` gets `nil` when it is not set.
    static func optional(_ name: String, _ valueName: String, _ help: String, shown: String? = nil, environment: String? = nil,
                         _ apply: @escaping @Sendable (inout ServeSettings, String?) throws -> Void) -> ServeOption {
        ServeOption(name: name, valueName: valueName, defaultValue: [], defaultHelp: shown, help: help,
                    list: false, environment: environment) { settings, values in try apply(&settings, values.first) }
    }

    /// A setting that may repeat.
    static func many(_ name: String, _ valueName: String, _ help: String, shown: String? = nil,
                     _ apply: @escaping @Sendable (inout ServeSettings, [String]) throws -> Void) -> ServeOption {
        ServeOption(name: name, valueName: valueName, defaultValue: [], defaultHelp: shown, help: help, list: true, environment: nil, apply: apply)
    }

    // MARK: - Value checks

    static func number(_ text: String, _ range: ClosedRange<Int>, _ what: String) throws -> Int {
        guard let number = Int(text), range.contains(number) else { throw Problem(text: "'\(text)' is not \(what)") }
        return number
    }

    static func seconds(_ text: String, allowZero: Bool) throws -> Double {
        guard let number = Double(text), number.isFinite, allowZero ? number >= 0 : number > 0 else {
            throw Problem(text: "'\(text)' is not a number of seconds\(allowZero ? " (0 or more)" : " above 0")")
        }
        return number
    }

    static func nonEmpty(_ text: String, _ name: String) throws -> String {
        guard !text.isEmpty else { throw Problem(text: "\(name) cannot be empty") }
        return text
    }

    static func port(_ text: String) throws -> Int? {
        text == "off" ? nil : try self.number(text, 0...65535, "a port (0…65535) or off")
    }

    static func duration(_ text: String) throws -> Double { try ServeSettings.duration(text) }
}

extension ServeOption {
    /// Every `serve` setting, in `--help` and `--print-config` order.
    static let all: [ServeOption] = [
        .one("host", "127.0.0.1", "ADDRESS", "Address to listen on.") { $0.host = try nonEmpty($1, "host") },
        .one("port", "8080", "PORT", "Port to listen on; 0 picks a free one (the listening line shows it).") {
            $0.port = try number($1, 0...65535, "a port (0…65535; 0 picks a free one)")
        },
        .one("path", "/webhooks/kliq", "PATH", "Path of the webhook endpoint.") { settings, value in
            guard value.hasPrefix("/") else { throw Problem(text: "path must start with '/', e.g. /webhooks/kliq, not '\(value)'") }
            settings.path = value
        },
        .one("data-dir", "./kliq-data", "DIR", "Directory for events/, jobs/, ledger/, quarantine/ (created, mode 0700).") {
            $0.dataDir = try nonEmpty($1, "data-dir")
        },
        .one("max-body-bytes", "4194304", "BYTES", "Largest accepted body, in bytes.") {
            $0.maxBodyBytes = try number($1, 1...Int(Int32.max), "a positive number of bytes")
        },
        .one("request-timeout", "30", "SECONDS", "Seconds a request may take to arrive, head to end of body; then 408 and the connection closes.") {
            $0.requestTimeout = try seconds($1, allowZero: false)
        },
        .one("idle-timeout", "60", "SECONDS", "Seconds a connection may stay open without a request (or with headers that never finish).") {
            $0.idleTimeout = try seconds($1, allowZero: false)
        },
        .one("max-connections", "1024", "N", "Connections open at once; more wait to be accepted.") {
            $0.maxConnections = try number($1, 1...1_000_000, "a number of connections (1…1000000)")
        },
        .one("max-in-flight-bytes", "67108864", "BYTES", "Bytes of request bodies read at once across all connections; more wait their turn.") {
            $0.maxInFlightBytes = try number($1, 1...Int(Int32.max), "a positive number of bytes")
        },
        .optional("secret-file", "PATH", "File with the signing secrets, one a line (instead of KLIQ_WEBHOOK_SECRET); re-read on SIGHUP.") {
            $0.secretFile = $1
        },
        .one("max-queued-bytes", "33554432", "BYTES",
             "Bytes of event bodies held in memory for running handlers; what waits beyond stays on disk and is claimed in order as handlers catch up.") {
            $0.maxQueuedBytes = try number($1, 1...Int(Int32.max), "a positive number of bytes")
        },
        .many("exec", "COMMAND",
              "Run COMMAND (via /bin/sh -c) for each accepted event: event JSON on stdin, KLIQ_EVENT_ID, KLIQ_EVENT_TYPE, KLIQ_JOB_ID set. Repeatable; one a line in KLIQ_EXEC.") {
            $0.exec = $1
        },
        .one("exec-timeout", "300", "SECONDS", "Seconds one --exec run may take before its process group is stopped and the run counted as failed (then retried).") {
            $0.execTimeout = try seconds($1, allowZero: false)
        },
        .many("forward", "URL", "POST each accepted event's raw body with its X-Kliq-Signature to URL. Repeatable.") { settings, urls in
            for url in urls where !ServeSettings.isHTTPURL(url) {
                throw Problem(text: "forward needs an http:// or https:// URL, not '\(url)'")
            }
            settings.forward = urls
        },
        .one("forward-timeout", "30", "SECONDS", "Seconds one --forward request may take before it counts as failed (then retried).") {
            $0.forwardTimeout = try seconds($1, allowZero: false)
        },
        .optional("events", "TYPE[,TYPE…]", "Event types the --exec/--forward handlers receive.", shown: "all") { settings, value in
            guard let value else { settings.events = nil; return }
            let types = ServeCommand.eventTypes(value)
            guard !types.isEmpty else { throw Problem(text: "events needs at least one event type, e.g. cv.job.completed") }
            settings.events = types
        },
        .one("retry-attempts", "8", "N", "Attempts per handler delivery before it is dead.") {
            $0.retryAttempts = try number($1, 1...1000, "a number of attempts (1…1000)")
        },
        .one("retry-delay", "1", "SECONDS", "Seconds before the first retry; each later one waits twice as long (with jitter), at most 5 minutes.") {
            $0.retryDelay = try seconds($1, allowZero: true)
        },
        .one("shutdown-grace", "30", "SECONDS", "On SIGTERM, seconds for requests in flight and then running handlers to finish; shutdown takes at most this plus 5.") {
            $0.shutdownGrace = try seconds($1, allowZero: true)
        },
        .one("replay-window", "off", "DURATION|off",
             "Refuse events whose signed timestamp is more than this old (or ahead): seconds, or 90m, 36h, 3d; measured on event time, so make it at least KLIQ's retry horizon.") {
            $0.replayWindow = $1 == "off" ? nil : try duration($1)
        },
        .one("retention", "forever", "DURATION|forever",
             "Forget events (events/, done ledger entries, quarantine/) this long after they were accepted: at least twice --replay-window, which it needs.") {
            $0.retention = $1 == "forever" ? nil : try duration($1)
        },
        .one("store", "files", "files|postgres|memory",
             "files (local JSON files), postgres (shared by replicas: needs --database-url) or memory (nothing kept: for measuring the HTTP stack alone).",
             shown: "files, or postgres when a database URL is given") { settings, value in
            guard let kind = StoreKind(rawValue: value) else { throw Problem(text: "store is files, postgres or memory, not '\(value)'") }
            settings.store = kind
        },
        .optional("database-url", "postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=disable|prefer|require]",
                  "The PostgreSQL database (also KLIQ_DATABASE_URL); implies --store postgres. Its password is never printed.") { settings, value in
            do {
                settings.databaseURL = try value.map { try PostgresURL($0) }
            } catch let error as WebhookError {
                throw Problem(text: error.message)
            }
        },
        .one("database-schema", "kliq", "NAME", "The schema holding every table (created and migrated at start).") { settings, value in
            guard PostgresEventStore.isValidSchema(value) else {
                throw Problem(text: "database-schema must be letters, digits and _ (at most 63, not starting with a digit), not '\(value)'")
            }
            settings.databaseSchema = value
        },
        .one("lease", "30", "SECONDS",
             "Seconds a handler delivery is leased to this process while its handler runs (renewed; another replica takes it over once a lease runs out).") {
            $0.lease = try seconds($1, allowZero: false)
        },
        .one("kliq-api-url", KliqAPIClient.Configuration.defaultBaseURL, "URL", "KLIQ's API, for the polling fallback (also KLIQ_API_URL).",
             environment: "KLIQ_API_URL") { settings, value in
            guard ServeSettings.isHTTPURL(value) else {
                throw Problem(text: "kliq-api-url needs an http:// or https:// URL, e.g. https://api.kliqpulse.com/v1, not '\(value)'")
            }
            settings.kliqAPIURL = value
        },
        .optional("kliq-tenant", "ID", "The tenant the polling fallback reads jobs of (also KLIQ_TENANT_ID). With an API key, polling is on.",
                  environment: "KLIQ_TENANT_ID") { settings, value in
            if let value, value.isEmpty || value.contains("/") { throw Problem(text: "kliq-tenant is a tenant id like t_xyz789, not '\(value)'") }
            settings.kliqTenant = value
        },
        .optional("kliq-api-key-file", "PATH", "File holding the KLIQ API key (else KLIQ_API_KEY); never printed.", environment: "KLIQ_API_KEY_FILE") {
            $0.kliqAPIKeyFile = $1
        },
        .one("poll-after", "2m", "DURATION", "Poll a tracked job once it has gone this long without a final state: seconds, or 90s, 2m, 1h.") {
            $0.pollAfter = try duration($1)
        },
        .one("poll-max-interval", "5m", "DURATION", "Longest wait between two polls of one job (the wait doubles from --poll-after up to this).") {
            $0.pollMaxInterval = try duration($1)
        },
        .one("poll-rate", "5", "N", "At most this many API requests in any one second, all polling together.") {
            $0.pollRate = try number($1, 1...10_000, "a number of requests per second (1…10000)")
        },
        .many("trusted-proxy", "ADDRESS",
              "Address or network (127.0.0.1, 10.0.0.0/8, ::1) of a reverse proxy whose X-Forwarded-For, Forwarded, X-Real-IP and X-Request-Id are believed. Repeatable.",
              shown: "none") { settings, values in
            do { settings.trustedProxies = try TrustedProxies(values) } catch { throw Problem(text: "\(error)") }
        },
        .one("metrics-host", "127.0.0.1", "ADDRESS", "Address of the Prometheus metrics endpoint (GET /metrics).") {
            $0.metricsHost = try nonEmpty($1, "metrics-host")
        },
        .one("metrics-port", "9464", "PORT|off", "Port of the metrics endpoint; 0 picks a free one, off turns it off.") { $0.metricsPort = try port($1) },
        .one("admin-host", "127.0.0.1", "ADDRESS", "Address of the operator console and its admin API (/api/…).") {
            $0.adminHost = try nonEmpty($1, "admin-host")
        },
        .one("admin-port", "9465", "PORT|off", "Port of the console; 0 picks a free one, off turns it off.") { $0.adminPort = try port($1) },
        .optional("admin-token-file", "PATH", "File holding the console's admin token (required off loopback); never printed.") { $0.adminTokenFile = $1 },
        .optional("otlp-traces-url", "URL",
                  "Export the receive, verify, store and handler spans over OTLP/HTTP (protobuf) to this URL, e.g. http://127.0.0.1:4318/v1/traces.",
                  shown: "no export") { settings, value in
            if let value, !ServeSettings.isHTTPURL(value) {
                throw Problem(text: "otlp-traces-url needs an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/traces, not '\(value)'")
            }
            settings.otlpTracesURL = value
        },
        .one("log-level", "info", "LEVEL", "trace, debug, info, notice, warning, error or critical.") { settings, value in
            guard let level = Logger.Level(rawValue: value) else {
                throw Problem(text: "log-level is trace, debug, info, notice, warning, error or critical, not '\(value)'")
            }
            settings.logLevel = level
        },
        .one("log-format", "text", "text|json", "text or json.") { settings, value in
            guard let format = LogFormat(rawValue: value) else { throw Problem(text: "log-format is text or json, not '\(value)'") }
            settings.logFormat = format
        },
    ]

    /// The options as `serve --help` lists them, wrapped to fit 80 columns (ArgumentParser would
    /// otherwise wrap the lines itself, without their indentation).
    static var helpText: String {
        self.all.map { option in
            let shown = option.defaultHelp ?? option.defaultValue.first
            let text = option.help + (shown.map { " [default: \($0)]" } ?? "")
            var lines = ["  --\(option.name) \(option.valueName)"]
            var line = "      "
            for word in text.split(separator: " ") {
                if line.count + word.count + 1 > 78, line.count > 6 {
                    lines.append(line)
                    line = "      "
                }
                line += (line.count > 6 ? " " : "") + word
            }
            lines.append(line)
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
