@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

struct CryptoTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var key: [UInt8]
        var data: [UInt8]
        var mac: String
        var testDescription: String { self.name }
    }

    // RFC 4231, section 4 (HMAC-SHA-256). Case 5's MAC is truncated to 128 bits by the RFC.
    static let rfc4231: [Vector] = [
        Vector(name: "case 1", key: Array(repeating: 0x0b, count: 20), data: Array("Hi There".utf8),
               mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        Vector(name: "case 2", key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8),
               mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        Vector(name: "case 3", key: Array(repeating: 0xaa, count: 20), data: Array(repeating: 0xdd, count: 50),
               mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        Vector(name: "case 4", key: Array(1...25), data: Array(repeating: 0xcd, count: 50),
               mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        Vector(name: "case 5 (truncated)", key: Array(repeating: 0x0c, count: 20), data: Array("Test With Truncation".utf8),
               mac: "a3b6167473100ee06e0c796c2955552b"),
        Vector(name: "case 6", key: Array(repeating: 0xaa, count: 131),
               data: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
               mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        Vector(name: "case 7", key: Array(repeating: 0xaa, count: 131),
               data: Array(("This is a test using a larger than block-size key and a larger than block-size data. "
                   + "The key needs to be hashed before being used by the HMAC algorithm.").utf8),
               mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test(arguments: rfc4231)
    func hmacMatchesRFC4231(_ vector: Vector) {
        let mac = Hex.encode(Crypto.hmacSHA256(key: vector.key, message: vector.data))
        #expect(mac.hasPrefix(vector.mac))
    }

    /// Signatures of every fixture as computed by `openssl dgst -sha256 -hmac` (Fixtures/signatures.txt).
    @Test func signerMatchesOpenSSLForEveryFixture() throws {
        let text = try String(contentsOf: fixtures.directory.appendingPathComponent("signatures.txt"), encoding: .utf8)
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        let secret = Signer(secret: "whsec_fixture_secret")
        #expect(lines.count == (try fixtures.names()).count)
        for line in lines {
            let parts = line.split(separator: " ")
            let fixture = try fixtures.load(String(parts[0]))
            #expect(secret.signature(for: fixture.body) == String(parts[1]), "\(fixture.name)")
        }
    }

    /// Python: hmac.new(b'whsec_abc', b'{"id":"evt_1"}', hashlib.sha256).hexdigest()
    @Test func whsecSecretIsUsedAsItsUTF8BytesNotDecoded() {
        #expect(Signer(secret: "whsec_abc").signature(for: #"{"id":"evt_1"}"#)
            == "4cbb790dff96d90c83308deb7a6d67eff59755af5bc212ee36f6e511daecb9e8")
    }

    /// Python: hashlib.sha256(b'../../x').hexdigest()
    @Test func sha256KnownAnswer() {
        #expect(Hex.encode(Crypto.sha256(Array("../../x".utf8))) == "9cdf6a50100a862e14286c7a334296daf7da8b45d48e20302424ca729b62a31a")
    }

    @Test(arguments: ["", "0", "zz", "+f", "-1", " 0f", "0f ", "0x0f", "g0"])
    func hexRejectsAnythingButPairsOfHexDigits(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }

    @Test func hexDecodesEitherCase() {
        #expect(Hex.decode("00ffFFaA10") == [0x00, 0xff, 0xff, 0xaa, 0x10])
    }
}
