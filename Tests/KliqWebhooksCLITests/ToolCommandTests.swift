import Foundation
import KliqWebhooksTesting
import Testing

/// `sign`, `verify` and `jobs`: the tools integrators reach for daily, run as processes.
@Suite(.serialized)
struct ToolCommandTests {
    let dir = TemporaryDirectory()
    let fixtures: Fixtures = try! Fixtures()

    func cli(_ arguments: [String], secret: String? = "whsec_fixture_secret") async throws -> (status: Int32, output: String, errors: String) {
        let process = try await ServeProcess(arguments, environment: secret.map { ["KLIQ_WEBHOOK_SECRET": $0] } ?? [:], workingDirectory: self.dir.path)
        let status = try await process.waitForExit()
        return (status, process.output, process.errors)
    }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let path = self.dir.file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// The signatures in Fixtures/signatures.txt were computed by `openssl dgst`.
    @Test func signPrintsWhatOpenSSLComputes() async throws {
        let expected = try String(contentsOf: self.fixtures.directory.appendingPathComponent("signatures.txt"), encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("cv.job.completed.custom.json ") }!.split(separator: " ")[1]
        let path = self.fixtures.directory.appendingPathComponent("cv.job.completed.custom.json").path
        let signed = try await self.cli(["sign", path])
        #expect(signed.status == 0)
        #expect(signed.output == expected + "\n")
        let curl = try await self.cli(["sign", path, "--curl", "http://127.0.0.1:8080/webhooks/kliq"])
        #expect(curl.output.contains("-H 'X-Kliq-Signature: \(expected)'"))
        #expect(curl.output.contains("--data-binary @\(path)"))
        let missing = try await self.cli(["sign", path], secret: nil)
        #expect(missing.status == 2)
        #expect(missing.errors.contains("KLIQ_WEBHOOK_SECRET"))
    }

    @Test func verifyExplainsWhyASignatureFails() async throws {
        let body = try self.fixtures.load("cv.job.completed.shelf-detection-v2").body
        let signature = Signer(secret: "whsec_fixture_secret").signature(for: body)
        let original = self.write("original.json", body)
        let valid = try await self.cli(["verify", original, "--signature", signature])
        #expect(valid.status == 0)
        #expect(valid.output.hasPrefix("valid"))

        let cases: [(String, [UInt8], String, String?)] = [
            ("newline", body + [0x0A], signature, "trailing newline"),
            ("compact", JSONLayoutProbe.compact(body), signature, "laid out differently (pretty-printed with 2 spaces"),
            ("prefixed", body, "sha256=" + signature, "header mangled"),
            ("short", body, String(signature.prefix(40)), "header malformed"),
        ]
        for (name, bytes, header, reason) in cases {
            let result = try await self.cli(["verify", self.write("\(name).json", bytes), "--signature", header])
            #expect(result.status == 1, "\(name)")
            #expect(result.output.contains(reason!), "\(name): \(result.output)")
        }
        let wrong = try await self.cli(["verify", original, "--signature", signature], secret: "whsec_other,whsec_another")
        #expect(wrong.status == 1)
        #expect(wrong.output.contains("most likely the secret is wrong"))
        #expect(!wrong.output.contains("whsec_other"))
    }

    @Test func jobsListShowAndWaitReadADataDirectoryWhileServeRuns() async throws {
        let serve = try await ServeProcess(["serve", "--port", "0"], environment: ["KLIQ_WEBHOOK_SECRET": "whsec_fixture_secret"],
                                     workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        func deliver(_ name: String) async throws {
            let body = try self.fixtures.load(name).body
            let response = try await serve.client.post("/webhooks/kliq", body: body,
                                                       headers: [("X-Kliq-Signature", Signer(secret: "whsec_fixture_secret").signature(for: body))])
            #expect(response.status == 200)
        }
        try await deliver("cv.job.completed.shelf-detection-v2")
        try await deliver("cv.job.failed.error-object")

        let list = try await self.cli(["jobs", "list"])
        #expect(list.output.contains("job_shelf_0001"))
        #expect(list.output.contains("image_unreadable: Image could not be decoded"))
        let failedOnly = try await self.cli(["jobs", "list", "--status", "failed", "--json"])
        #expect(failedOnly.output.split(separator: "\n").count == 1)
        #expect(failedOnly.output.contains(#""id":"job_failed_0001""#))
        #expect(try await self.cli(["jobs", "list", "--since", "2026-04-28T12:01:00Z"]).output.contains("job_shelf_0001") == false)
        let byModel = try await self.cli(["jobs", "list", "--model", "shelf-detection-v2"]).output
        #expect(byModel.contains("job_shelf_0001") && byModel.contains("job_failed_0001"))
        #expect(try await self.cli(["jobs", "list", "--model", "custom"]).output.contains("no jobs"))

        let show = try await self.cli(["jobs", "show", "job_shelf_0001"])
        #expect(show.output.contains("compliance   85%"))
        #expect(show.output.contains("out of stock Fanta Orange 330ml"))
        #expect(show.output.contains("Pepsi 500ml      1      3        1"))

        let waiting = Task { try await self.cli(["jobs", "wait", "job_custom_0001", "--timeout", "20"]) }
        try await Task.sleep(for: .milliseconds(500))
        try await deliver("cv.job.completed.custom")
        let waited = try await waiting.value
        #expect(waited.status == 0)
        #expect(waited.output.contains("status       completed"))
        #expect(try await self.cli(["jobs", "wait", "job_failed_0001", "--timeout", "5"]).status == 1)
        let timedOut = try await self.cli(["jobs", "wait", "job_never", "--timeout", "0.3"])
        #expect(timedOut.status == 124)
        #expect(timedOut.errors.contains("did not finish within"))
        #expect(try await serve.terminate() == 0)
    }
}

extension ToolCommandTests {
    @Test func replaySignsAndPostsFixturesAndSummarises() async throws {
        let env = ["KLIQ_WEBHOOK_SECRET": "whsec_fixture_secret"]
        let first = try await ServeProcess(["serve", "--port", "0"], environment: env, workingDirectory: self.dir.path)
        let second = try await ServeProcess(["serve", "--port", "0", "--data-dir", "other"], environment: env, workingDirectory: self.dir.path)
        let url = "http://127.0.0.1:\(try await first.waitUntilListening())/webhooks/kliq"
        let otherURL = "http://127.0.0.1:\(try await second.waitUntilListening())/webhooks/kliq"
        let count = try self.fixtures.names().count
        let folder = self.fixtures.directory.path

        let replayed = try await self.cli(["replay", folder, "--url", url, "--concurrency", "4"])
        #expect(replayed.status == 0)
        #expect(replayed.output.contains("replayed \(count) deliveries"))
        #expect(replayed.output.contains("accepted   \(count)"))
        #expect(replayed.output.contains("latency p50"))
        let again = try await self.cli(["replay", folder, "--url", url])
        #expect(again.status == 0)
        #expect(again.output.contains("duplicate  \(count)"))
        let fresh = try await self.cli(["replay", folder, "--url", url, "--new-ids", "--repeat", "2"])
        #expect(fresh.output.contains("accepted   \(2 * count)"))
        #expect(self.dir.names("kliq-data/events").count == 3 * count)

        let paced = ContinuousClock.now
        #expect(try await self.cli(["replay", folder + "/visit.submitted.json", "--url", url, "--new-ids", "--repeat", "6", "--rate", "10"]).status == 0)
        #expect(ContinuousClock.now - paced >= .milliseconds(450))

        let rejected = try await self.cli(["replay", folder + "/visit.submitted.json", "--url", url], secret: "whsec_wrong")
        #expect(rejected.status == 1)
        #expect(rejected.output.contains("401 invalid_signature  1"))

        let copied = try await self.cli(["replay", "--from-store", self.dir.file("kliq-data"), "--url", otherURL])
        #expect(copied.status == 0)
        #expect(self.dir.names("other/events") == self.dir.names("kliq-data/events"))
        #expect(self.dir.contents("other/events/evt_large_0001.json") == self.dir.contents("kliq-data/events/evt_large_0001.json"))
        #expect(try await first.terminate() == 0)
        #expect(try await second.terminate() == 0)
    }
}

/// Compact JSON from a pretty fixture, as a JSON library would write it (whitespace dropped, order kept).
enum JSONLayoutProbe {
    static func compact(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                out.append(byte)
                if escaped { escaped = false } else if byte == 0x5C { escaped = true } else if byte == 0x22 { inString = false }
            } else if byte == 0x22 {
                inString = true
                out.append(byte)
            } else if ![0x20, 0x0A, 0x0D, 0x09].contains(byte) {
                out.append(byte)
            }
        }
        return out
    }
}

extension ToolCommandTests {
    /// `replay` to a URL where nothing listens fails at once with one line (it waited 30–60 s).
    @Test func replayToANonListeningURLFailsAtOnce() async throws {
        let path = self.write("one.json", Array(#"{"id":"evt_r1","type":"visit.submitted"}"#.utf8))
        let started = ContinuousClock.now
        let replayed = try await self.cli(["replay", path, "--url", "http://127.0.0.1:1/webhooks/kliq"])
        #expect(replayed.status == 1)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(replayed.errors.contains("nothing answers at http://127.0.0.1:1/webhooks/kliq: connection refused"), "\(replayed.errors)")
        #expect(!replayed.errors.contains("Usage"))
    }
}
