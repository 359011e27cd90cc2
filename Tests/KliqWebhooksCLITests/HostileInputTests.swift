import Foundation
import KliqWebhooksTesting
import Testing

/// The hostile-input table: each row a bad request sent to a running `serve` over a real socket, with
/// the answer it must get (`nil`: the connection is closed without one). After every row, the server
/// still answers `/healthz`; after the table, its peak memory is under a stated bound and nothing was
/// written outside its data directory.
@Suite(.serialized)
struct HostileInputTests {
    struct Row: Sendable, CustomStringConvertible {
        var name: String
        var request: [UInt8]
        var status: Int?
        /// Text the answer's body must contain (e.g. the error code).
        var contains: String = ""
        /// Pause between the request's parts (slow clients).
        var parts: [[UInt8]] = []
        var pause: Duration = .milliseconds(700)
        var description: String { self.name }
    }

    static let secret = "whsec_hostile"
    static let signer = Signer(secret: secret)
    /// The stated bound on the server's peak resident memory over the whole table.
    static let peakMemoryBound = 96 * 1024 * 1024

    static func post(_ body: [UInt8], signature: String?, extra: String = "", contentLength: Int? = nil) -> [UInt8] {
        var head = "POST /webhooks/kliq HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        if let signature { head += "X-Kliq-Signature: \(signature)\r\n" }
        head += extra
        head += "Content-Length: \(contentLength ?? body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func signed(_ body: [UInt8], extra: String = "") -> [UInt8] {
        self.post(body, signature: self.signer.signature(for: body), extra: extra)
    }

    static func signedText(_ text: String) -> [UInt8] { self.signed(Array(text.utf8)) }

    static func event(id: String, type: String = "visit.submitted", data: String = #"{"visitId":"v1"}"#) -> String {
        #"{"id":"# + id + #","type":""# + type + #"","timestamp":"2026-11-23T10:00:00Z","tenantId":"t1","data":"# + data + "}"
    }

    static func raw(_ text: String) -> [UInt8] { Array(text.utf8) }

    static var rows: [Row] {
        let ok = Array(self.event(id: #""evt_ok""#).utf8)
        let valid = self.signer.signature(for: ok)
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let bigString = String(repeating: "x", count: 3_000_000)
        var invalidUTF8 = Array(self.event(id: #""evt_utf8""#).utf8)
        invalidUTF8.insert(contentsOf: [0xC3, 0x28], at: invalidUTF8.count - 3)
        var manyHeaders = ""
        for index in 0..<200 { manyHeaders += "X-H\(index): v\r\n" }
        let chunkedHead = "POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nX-Kliq-Signature: \(valid)\r\nTransfer-Encoding: chunked\r\n\r\n"
        let bigChunk = String(repeating: "y", count: 1 << 20)
        var chunked = chunkedHead
        for _ in 0..<6 { chunked += String(1 << 20, radix: 16) + "\r\n" + bigChunk + "\r\n" }
        chunked += "0\r\n\r\n"

        return [
            // Malformed HTTP.
            Row(name: "not HTTP at all", request: raw("HELLO THERE\r\n\r\n"), status: 400),
            Row(name: "unknown HTTP version", request: raw("POST /webhooks/kliq HTTP/9.9\r\nHost: x\r\n\r\n"), status: 400),
            Row(name: "header line without a colon", request: raw("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"), status: 400),
            Row(name: "NUL byte in a header", request: raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u{0}b\r\n\r\n"), status: 400),
            Row(name: "Content-Length and Transfer-Encoding together (smuggling)",
                request: raw("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), status: 400),
            Row(name: "two different Content-Lengths", request: raw("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"), status: 400),
            Row(name: "negative Content-Length", request: raw("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), status: 400),
            Row(name: "non-numeric Content-Length", request: raw("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n"), status: 400),
            Row(name: "bad chunk size", request: raw("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\nX-Kliq-Signature: \(valid)\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"), status: 400),
            Row(name: "a 20 KB header", request: self.post(ok, signature: valid, extra: "X-Big: \(String(repeating: "b", count: 20_000))\r\n"), status: 400),
            Row(name: "200 header fields", request: self.post(ok, signature: valid, extra: manyHeaders), status: 400),
            Row(name: "a 20 KB URL", request: raw("GET /\(String(repeating: "u", count: 20_000)) HTTP/1.1\r\nHost: x\r\n\r\n"), status: 400),
            // Framing, size, time.
            Row(name: "Content-Length over the limit", request: self.post([], signature: valid, contentLength: 100_000_000), status: 413, contains: "payload_too_large"),
            Row(name: "chunked body over the limit", request: raw(chunked), status: 413, contains: "payload_too_large"),
            Row(name: "body slower than the request time-out", request: [], status: 408, contains: "request_timeout",
                parts: [self.post(ok, signature: valid).dropLast(10).map { $0 }, Array(self.post(ok, signature: valid).suffix(10))], pause: .milliseconds(1600)),
            Row(name: "headers that never finish", request: [], status: nil,
                parts: [raw("POST /webhooks/kliq HTTP/1.1\r\nHost: x\r\n"), raw("X-A: 1\r\n"), raw("X-B: 2\r\n"), raw("X-C: 3\r\n")]),
            // Signatures.
            Row(name: "no signature", request: self.post(ok, signature: nil), status: 401, contains: "invalid_signature"),
            Row(name: "signature too short", request: self.post(ok, signature: "abc123"), status: 401, contains: "invalid_signature"),
            Row(name: "64 characters, not hex", request: self.post(ok, signature: String(repeating: "g", count: 64)), status: 401, contains: "invalid_signature"),
            Row(name: "signature of another body", request: self.post(ok, signature: self.signer.signature(for: Array("{}".utf8))), status: 401, contains: "invalid_signature"),
            Row(name: "signed with another secret", request: self.post(ok, signature: Signer(secret: "whsec_other").signature(for: ok)), status: 401, contains: "invalid_signature"),
            Row(name: "two signature headers", request: self.post(ok, signature: valid, extra: "X-Kliq-Signature: \(valid)\r\n"), status: 401, contains: "invalid_signature"),
            Row(name: "signature with a sha256= prefix", request: self.post(ok, signature: "sha256=" + valid), status: 401, contains: "invalid_signature"),
            // Signed but absurd JSON: quarantined with a reason, never a crash or a hang.
            Row(name: "100,000 nested arrays", request: self.signedText(deep), status: 400, contains: "malformed_payload"),
            Row(name: "invalid UTF-8", request: self.signed(invalidUTF8), status: 400, contains: "malformed_payload"),
            Row(name: "duplicate keys", request: self.signedText(#"{"id":"evt_dup","id":"evt_dup2","type":"visit.submitted"}"#), status: 400, contains: "malformed_payload"),
            Row(name: "raw NUL byte in a string", request: self.signedText("{\"id\":\"evt_\u{0}\",\"type\":\"visit.submitted\"}"), status: 400, contains: "malformed_payload"),
            Row(name: "a top-level array", request: self.signedText("[1,2,3]"), status: 400, contains: "malformed_payload"),
            Row(name: "id is a number", request: self.signedText(#"{"id":12,"type":"visit.submitted"}"#), status: 400, contains: "malformed_payload"),
            Row(name: "empty body", request: self.signed([]), status: 400, contains: "malformed_payload"),
            Row(name: "truncated JSON", request: self.signedText(#"{"id":"evt_cut","type":"vis"#), status: 400, contains: "malformed_payload"),
            Row(name: "lone surrogate escape", request: self.signedText(#"{"id":"evt_\ud800","type":"visit.submitted"}"#), status: 400, contains: "malformed_payload"),
            // Signed, valid, and odd: accepted, stored safely.
            Row(name: "a 3 MB string", request: self.signedText(self.event(id: #""evt_big""#, data: #"{"note":""# + bigString + #""}"#)), status: 200, contains: "accepted"),
            Row(name: "a number with a million-digit exponent", request: self.signedText(self.event(id: #""evt_num""#, data: #"{"n":1e999999}"#)), status: 200, contains: "accepted"),
            Row(name: "id that climbs out of the data directory", request: self.signedText(self.event(id: #""../../../../tmp/kliq-escaped""#)), status: 200, contains: "accepted"),
            Row(name: "id with a slash and an escaped NUL", request: self.signedText(self.event(id: #""a/b\u0000c""#)), status: 200, contains: "accepted"),
            Row(name: "job id that climbs out", request: self.signedText(self.event(id: #""evt_job_escape""#, type: "cv.job.completed",
                data: #"{"id":"../../kliq-escaped-job","status":"completed","model":"shelf-detection-v2","observationId":"o","tenantId":"t1","result":{"detections":[]}}"#)),
                status: 200, contains: "accepted"),
            Row(name: "type with a newline (log forging)", request: self.signedText(self.event(id: #""evt_type_nl""#, type: #"visit.submitted\n2026 info forged line"#)), status: 200, contains: "accepted"),
            // Methods and paths.
            Row(name: "DELETE on the webhook path", request: raw("DELETE /webhooks/kliq HTTP/1.1\r\nHost: x\r\n\r\n"), status: 405, contains: "method_not_allowed"),
            Row(name: "dot-dot path", request: raw("GET /webhooks/kliq/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"), status: 404, contains: "not_found"),
        ]
    }

    @Test func everyRowGetsItsAnswerAndTheServerStaysUpWithinItsMemoryBound() async throws {
        let dir = TemporaryDirectory()
        let data = dir.file("data")
        let serve = try await ServeProcess(
            ["serve", "--port", "0", "--data-dir", data, "--request-timeout", "1", "--idle-timeout", "1.5", "--metrics-port", "off"],
            environment: ["KLIQ_WEBHOOK_SECRET": Self.secret], workingDirectory: dir.path)
        let port = try await serve.waitUntilListening()
        let client = RawHTTPClient(port: port, timeout: 20)
        let rows = Self.rows
        #expect(rows.count >= 30)
        for row in rows {
            let response: RawHTTPClient.Response?
            do {
                response = row.parts.isEmpty ? try await client.send(row.request) : try await client.send(row.parts, pausing: row.pause)
            } catch {
                response = nil
            }
            #expect(response?.status == row.status, "\(row.name): got \(response.map { "\($0.status) \(String(decoding: $0.body.prefix(200), as: UTF8.self))" } ?? "no answer")")
            if !row.contains.isEmpty, let response {
                #expect(String(decoding: response.body, as: UTF8.self).contains(row.contains), "\(row.name)")
            }
            let health = try await client.request("GET", "/healthz")
            #expect(health.status == 200, "after \(row.name)")
            #expect(serve.process.isRunning, "after \(row.name)")
        }
        // Peak resident memory over the whole table.
        let status = try String(contentsOfFile: "/proc/\(serve.process.processIdentifier)/status", encoding: .utf8)
        let peakKiB = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? Int.max
        print("HostileInputTests: peak RSS \(peakKiB / 1024) MiB (bound \(Self.peakMemoryBound / 1024 / 1024) MiB), \(rows.count) rows")
        #expect(peakKiB * 1024 < Self.peakMemoryBound, "peak RSS \(peakKiB) KiB")
        #expect(try await serve.terminate() == 0)

        // Nothing outside the data directory: the test's folder holds only what the test made.
        let top = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix("stdout-") && !$0.hasPrefix("stderr-") }
        #expect(top == ["data"], "\(top)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/kliq-escaped.json") && !FileManager.default.fileExists(atPath: "/tmp/kliq-escaped"))
        let entries = try FileManager.default.subpathsOfDirectory(atPath: data)
        for entry in entries {
            var info = stat()
            #expect(lstat(data + "/" + entry, &info) == 0)
            #expect(info.st_mode & S_IFMT != S_IFLNK, "\(entry) is a symlink")
            let mode = info.st_mode & 0o777
            #expect(mode == 0o600 || mode == 0o700, "\(entry) has mode \(String(mode, radix: 8))")
        }
        // The forged log line stayed one line.
        #expect(!serve.errors.split(separator: "\n").contains { $0.hasPrefix("2026 info forged line") })
    }
}
