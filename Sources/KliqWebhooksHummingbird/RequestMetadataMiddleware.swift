import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Gives each request a request id and a client address, in its logger's metadata (`kliq.request_id`,
/// `kliq.client`) and, for the id, in the `X-Request-Id` answer header.
///
/// Forwarding headers (`X-Request-Id`, `Forwarded`, `X-Forwarded-For`, `X-Real-IP`) are believed only from
/// ``TrustedProxies``; from anyone else the id is Hummingbird's own and the client is the peer address.
/// The client address needs a context that knows its peer (``WebhookRequestContext`` or any
/// `RemoteAddressRequestContext`).
public struct RequestMetadataMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Whose forwarding headers are believed.
    public let trustedProxies: TrustedProxies

    /// A middleware that believes forwarding headers only from `trustedProxies` (from no one by default).
    public init(trustedProxies: TrustedProxies = .none) {
        self.trustedProxies = trustedProxies
    }

    /// Adds `kliq.request_id` and `kliq.client` to the request's logger, and `X-Request-Id` to its answer (errors included).
    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let peer = (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
        let fromProxy = peer.map(self.trustedProxies.trusts) ?? false
        let requestID = (fromProxy ? request.headers[.xRequestID].flatMap(Self.validRequestID) : nil) ?? context.logger[metadataKey: "hb.request.id"]?.description ?? RequestID().description
        // Both keys in one change of the handler's metadata: handlers such as StreamLogHandler re-render
        // all their metadata on each change.
        var added: Logger.Metadata = ["kliq.request_id": .string(requestID)]
        if let client = self.trustedProxies.clientAddress(peer: peer, headers: request.headers) { added["kliq.client"] = .string(client) }
        context.logger.handler.metadata.merge(added) { $1 }
        do {
            var response = try await next(request, context)
            response.headers[.xRequestID] = requestID
            return response
        } catch var error as WebhookHTTPError {
            error.headers[.xRequestID] = requestID
            throw error
        }
    }

    /// An upstream id is kept when it is 1…128 characters of `A-Z a-z 0-9 . _ -` (nginx's `$request_id`
    /// is 32 hex digits); anything else is replaced, so ids are safe to log and to echo.
    static func validRequestID(_ value: String) -> String? {
        guard (1...128).contains(value.utf8.count),
              value.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { return nil }
        return value
    }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}

/// The request context ``WebhookServer`` uses: Hummingbird's basic context plus the peer address, so
/// ``RequestMetadataMiddleware`` can log the client.
public struct WebhookRequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's per-request storage (logger, parameters).
    public var coreContext: CoreRequestContextStorage
    /// The peer that opened the connection (a proxy, when there is one).
    public let remoteAddress: SocketAddress?

    /// Made by Hummingbird for each request.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
