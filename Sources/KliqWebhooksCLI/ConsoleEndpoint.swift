import Foundation
import Hummingbird
import KliqWebhooks
import KliqWebhooksConsole
import Logging
import NIOCore

/// `serve`'s operator console (`--admin-host`/`--admin-port`, loopback:9465 by default): a listener of
/// its own, so the public webhook port never exposes it.
struct ConsoleEndpoint: Sendable {
    let host: String
    let port: Int
    let receiver: Receiver
    let token: AdminToken?

    struct Problem: Error, CustomStringConvertible { var description: String }

    /// The token from `--admin-token-file`, or `nil` without one. - Throws: ``Problem`` naming the file
    /// (never its content) when it cannot be read or holds no token.
    static func token(_ settings: ServeSettings) throws -> AdminToken? {
        guard let path = settings.adminTokenFile else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Problem(description: "cannot read --admin-token-file \(path): check the path and its permissions")
        }
        guard let token = AdminToken(String(decoding: data, as: UTF8.self)) else {
            throw Problem(description: "--admin-token-file \(path) is empty: put the admin token in it")
        }
        return token
    }

    func application(logger: Logger, onServerRunning: @escaping @Sendable (SocketAddress?) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        AdminAPI(receiver: self.receiver, token: self.token).addRoutes(to: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(self.host, port: self.port), serverName: nil),
            onServerRunning: { await onServerRunning($0.localAddress) },
            logger: logger
        )
    }
}
