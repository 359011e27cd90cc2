@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

struct SignatureVerifierTests {
    let body = Array(#"{"id":"evt_1","type":"cv.job.completed"}"#.utf8)
    let verifier = try! SignatureVerifier(secrets: [Secret("whsec_current"), Secret("whsec_previous")])

    static var badSignatures: [String?] {
        let good = Signer(secret: "whsec_current").signature(for: #"{"id":"evt_1","type":"cv.job.completed"}"#)
        return [
            nil,                                                    // header missing
            "",                                                     // empty
            String(good.dropLast()),                                // odd length
            String(good.dropLast(2)),                               // too short
            good + "00",                                            // too long
            "zz" + good.dropFirst(2),                               // non-hex
            "+f" + good.dropFirst(2),                               // what UInt8(_:radix:) would accept
            "sha256=" + good,                                       // prefixed
            " " + good.dropFirst(),                                 // whitespace
            String(repeating: "0", count: 64),                      // right length, wrong
            String(repeating: "A", count: 64),
            Signer(secret: "whsec_retired").signature(for: #"{"id":"evt_1","type":"cv.job.completed"}"#),   // retired secret
            Signer(secret: "whsec_current").signature(for: #"{"id":"evt_1","type":"cv.job.completed"}\#n"#), // other body
            Signer(secret: "whsec_current").signature(for: #"{"id": "evt_1", "type": "cv.job.completed"}"#), // re-serialised
            String(good.prefix(63)) + (good.last == "0" ? "1" : "0"),  // one digit off
        ]
    }

    @Test(arguments: badSignatures)
    func rejectsSignatureThatIsNotTheBodysMac(_ header: String?) {
        let error = #expect(throws: WebhookError.self) { try self.verifier.verify(signature: header, body: self.body) }
        #expect(error?.code == .invalidSignature)
        #expect(error?.message.contains("whsec") == false)
    }

    @Test func acceptsEachRotatedSecretAndReportsWhichMatched() throws {
        #expect(try self.verifier.verify(signature: Signer(secret: "whsec_current").signature(for: self.body), body: self.body).secretIndex == 0)
        #expect(try self.verifier.verify(signature: Signer(secret: "whsec_previous").signature(for: self.body), body: self.body).secretIndex == 1)
    }

    @Test func acceptsUppercaseHex() throws {
        let header = Signer(secret: "whsec_current").signature(for: self.body).uppercased()
        #expect(try self.verifier.verify(signature: header, body: self.body).secretIndex == 0)
    }

    @Test func verifiesEmptyBodies() throws {
        let header = Signer(secret: "whsec_current").signature(for: [])
        #expect(try self.verifier.verify(signature: header, body: []).secretIndex == 0)
    }

    @Test func refusesToBeConfiguredWithoutSecrets() {
        #expect(throws: WebhookError.self) { try SignatureVerifier(secrets: []) }
        #expect(throws: WebhookError.self) { try SignatureVerifier(secrets: [Secret("")]) }
    }

    @Test func secretListsAndFilesAreParsed() {
        #expect(Secret.list(" whsec_a, whsec_b ,,").map { String(decoding: $0.bytes, as: UTF8.self) } == ["whsec_a", "whsec_b"])
        #expect(Secret.lines("# rotation\nwhsec_a\n\n  whsec_b  \r\n").map { String(decoding: $0.bytes, as: UTF8.self) } == ["whsec_a", "whsec_b"])
    }

    @Test func secretsNeverPrintThemselves() {
        let secret = Secret("whsec_do_not_print")
        #expect(!"\(secret)".contains("whsec"))
        #expect(!String(reflecting: secret).contains("whsec"))
    }
}
