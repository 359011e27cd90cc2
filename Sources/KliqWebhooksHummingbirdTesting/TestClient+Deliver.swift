import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KliqWebhooks
import KliqWebhooksHummingbird
import KliqWebhooksTesting
import NIOCore

extension TestClientProtocol {
    /// POSTs `fixture`, signed with `signer`, to the webhook route of the app under test
    /// (`app.test(.router)` or `.live`).
    ///
    /// ```swift
    /// try await app.test(.router) { client in
    ///     let response = try await client.deliver(fixture, signedWith: signer)
    ///     #expect(response.status == .ok)
    /// }
    /// ```
    public func deliver(_ fixture: Fixture, signedWith signer: Signer, to path: String = "/webhooks/kliq") async throws -> TestResponse {
        try await self.execute(
            uri: path,
            method: .post,
            headers: [.kliqSignature: signer.signature(for: fixture.body), .contentType: "application/json"],
            body: ByteBuffer(bytes: fixture.body)
        )
    }
}

extension TestResponse {
    /// `accepted` or `duplicate` for a `200`, else the `error` code of the JSON error body.
    public var webhookOutcome: String? {
        guard let text = self.body.getString(at: self.body.readerIndex, length: self.body.readableBytes),
            let value = try? JSONValue(parsing: Array(text.utf8))
        else { return nil }
        return value["status"]?.stringValue ?? value["error"]?.stringValue
    }
}
