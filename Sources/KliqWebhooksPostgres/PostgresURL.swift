import Foundation
import KliqWebhooks
import NIOSSL
import PostgresNIO

/// A database URL, `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=disable|prefer|require]`, read
/// into a `PostgresClient.Configuration`. Its ``description`` never shows the password.
public struct PostgresURL: Sendable, CustomStringConvertible {
    /// What `PostgresClient` needs.
    public let configuration: PostgresClient.Configuration
    /// The URL with the password replaced by `***`: for logs and messages.
    public let redacted: String

    public var description: String { self.redacted }

    /// - Throws: ``WebhookError`` (`invalid_configuration`) naming what is wrong — never the password.
    public init(_ text: String) throws(WebhookError) {
        func problem(_ what: String) -> WebhookError {
            WebhookError(.invalidConfiguration, "the database URL \(what); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=disable|prefer|require]")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme else { throw problem("is not a URL") }
        guard scheme == "postgres" || scheme == "postgresql" else { throw problem("must start with postgres://") }
        guard let host = components.host, !host.isEmpty else { throw problem("names no host") }
        guard let user = components.user, !user.isEmpty else { throw problem("names no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw problem("names no database") }
        let port = components.port ?? 5432
        var mode = "prefer"
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode": mode = item.value ?? ""
            default: throw problem("has an unknown parameter '\(item.name)'")
            }
        }
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        default: throw problem("has sslmode '\(mode)'")
        }
        self.configuration = PostgresClient.Configuration(
            host: host, port: port, username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 }, database: database.removingPercentEncoding ?? database, tls: tls)
        var shown = components
        if shown.password != nil { shown.password = "***" }
        self.redacted = shown.string ?? "postgres://\(user)@\(host):\(port)/\(database)"
    }
}
