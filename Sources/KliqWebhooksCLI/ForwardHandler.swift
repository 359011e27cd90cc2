import AsyncHTTPClient
import KliqWebhooks
import NIOCore
import NIOHTTP1

/// `--forward URL`: POSTs the raw event body with its original `X-Kliq-Signature` and
/// `Content-Type: application/json` to URL. A 2xx answer means handled. An event without a known
/// signature is signed with `sign` (the receiver's first secret), so every forward verifies.
struct ForwardHandler: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var url: String
        var status: UInt
        var description: String { "--forward \(self.url) answered \(self.status)" }
    }

    let url: String
    let client: HTTPClient
    var timeout: TimeAmount = .seconds(30)
    let sign: @Sendable ([UInt8]) -> String

    func run(_ event: Event) async throws {
        var request = HTTPClientRequest(url: self.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: SignatureVerifier.headerName, value: event.signature ?? self.sign(event.rawBody))
        request.body = .bytes(ByteBuffer(bytes: event.rawBody))
        let response = try await self.client.execute(request, timeout: self.timeout)
        _ = try? await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw Failure(url: self.url, status: response.status.code)
        }
    }
}
