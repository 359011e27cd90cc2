import Foundation
import KliqWebhooksTesting
import Synchronization
import Testing

/// Pull the plug: SIGKILL `serve` in the middle of a burst of deliveries, restart it on the same data
/// directory, and check that nothing acknowledged was lost.
@Suite(.serialized)
struct CrashRecoveryTests {
    static let total = 2000
    let secret = "whsec_crash_test"

    /// A realistic ~1.5 KB completed-job delivery; 40 jobs share the events.
    static func body(_ index: Int) -> [UInt8] {
        let detections = (0..<6).map { k in
            #"{"objectName":"Product \#(k)","confidence":0.9\#(k),"boundingBox":{"x":\#(k * 10),"y":5,"width":80,"height":200},"#
                + #""attributes":{"facings":\#(k + 1),"shelfPosition":"eye-level","priceTag":\#(k % 2 == 0 ? "null" : "\"1.99\"")}}"#
        }.joined(separator: ",")
        return Array(("""
            {"id":"evt_crash_\(index)","type":"cv.job.completed","tenantId":"t_crash","timestamp":"2026-04-28T12:\(String(format: "%02d", index % 60)):00Z",\
            "data":{"jobId":"job_crash_\(index % 40)","observationId":"obs_\(index)","model":"shelf-detection-v2","status":"completed",\
            "result":{"detections":[\(detections)],"summary":{"totalProducts":24,"uniqueSKUs":6,"outOfStock":[],"complianceScore":0.8}}}}
            """).utf8)
    }

    @Test(arguments: [150, 700, 1400])
    func acknowledgedDeliveriesSurviveSIGKILL(killAfter: Int) async throws {
        let dir = TemporaryDirectory()
        let handled = dir.file("handled.txt")
        let arguments = ["serve", "--port", "0", "--exec", #"echo "$KLIQ_EVENT_ID" >> "$HANDLED""#]
        let environment = ["KLIQ_WEBHOOK_SECRET": self.secret, "HANDLED": handled]
        let signer = Signer(secret: self.secret)
        let bodies = (0..<Self.total).map(Self.body)

        // 1. A burst from 32 concurrent senders; SIGKILL once `killAfter` deliveries were acknowledged.
        let server = try await ServeProcess(arguments, environment: environment, workingDirectory: dir.path)
        let port = try await server.waitUntilListening()
        let accepted = Locked<Set<Int>>([])
        let next = Locked(0)
        let killed = Locked(false)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    while true {
                        let index = next.withLock { value -> Int? in
                            guard value < Self.total else { return nil }
                            defer { value += 1 }
                            return value
                        }
                        guard let index else { return }
                        let body = bodies[index]
                        guard let response = try? await RawHTTPClient(port: port, timeout: 5)
                            .post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signer.signature(for: body))])
                        else { continue }
                        guard response.status == 200, response.bodyText.contains("accepted") else { continue }
                        let count = accepted.withLock { $0.insert(index); return $0.count }
                        if count >= killAfter, killed.withLock({ let was = $0; $0 = true; return !was }) {
                            kill(server.process.processIdentifier, SIGKILL)
                        }
                    }
                }
            }
        }
        _ = try await server.waitForExit()
        #expect(server.process.status == .signalled(SIGKILL))
        let acknowledged = accepted.withLock { $0 }
        #expect(acknowledged.count >= killAfter)
        #expect(acknowledged.count < Self.total, "the kill came after the burst: nothing was tested")

        // 2. What is on disk right after the crash: every acknowledged event, byte for byte.
        for index in acknowledged {
            #expect(dir.contents("kliq-data/events/evt_crash_\(index).json") == bodies[index], "evt_crash_\(index)")
        }

        // The journal was not checkpointed: the restart has a tail to replay.
        #expect(!dir.names("kliq-data/journal").isEmpty)

        // 3. Restart on the same directory: every JSON file parses, acknowledged events are duplicates,
        //    and every acknowledged event reaches the handler within a bounded time.
        let restarted = try await ServeProcess(arguments, environment: environment, workingDirectory: dir.path)
        let newPort = try await restarted.waitUntilListening()
        var unparseable: [String] = []
        let root = URL(fileURLWithPath: dir.file("kliq-data"))
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)! where url.pathExtension == "json" {
            // The restarted serve is already dispatching: a ledger entry can move between listing and reading.
            guard let data = FileManager.default.contents(atPath: url.path) else { continue }
            guard (try? JSONSerialization.jsonObject(with: data)) != nil else {
                unparseable.append(url.path)
                continue
            }
        }
        #expect(unparseable.isEmpty)
        let sample = Array(acknowledged.sorted().prefix(300))
        for index in sample {
            let response = try await RawHTTPClient(port: newPort).post(
                "/webhooks/kliq", body: bodies[index], headers: [("X-Kliq-Signature", signer.signature(for: bodies[index]))])
            #expect(response.bodyText.contains("duplicate"), "evt_crash_\(index): \(response.bodyText)")
        }
        let expected = Set(acknowledged.map { "evt_crash_\($0)" })
        let allHandled = try await eventually(timeout: .seconds(60)) {
            let seen = Set(((try? String(contentsOfFile: handled, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init))
            return expected.isSubset(of: seen)
        }
        #expect(allHandled, "acknowledged events not handled after restart")
        #expect(try await restarted.terminate() == 0)
        // A clean stop checkpoints the journal: nothing is left to replay.
        #expect(dir.names("kliq-data/journal").isEmpty)
    }
}

/// A mutex-guarded value that closures can share.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { self.mutex = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { self.mutex.withLock { body(&$0) } }
}
