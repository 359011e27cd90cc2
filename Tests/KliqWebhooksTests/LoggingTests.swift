@testable import KliqWebhooks
import KliqWebhooksTesting
import Logging
import Synchronization
import Testing

/// What reaches the log: one line per delivery with its id, type and outcome — and nothing a sender
/// could use to forge lines, nor any secret.
struct LoggingTests {
    final class Recorder: Sendable {
        let lines = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
    }

    struct Handler: LogHandler {
        let recorder: Recorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
            self.recorder.lines.withLock { $0.append((event.level, event.message.description, merged)) }
        }
    }

    @Test func eachDeliveryLogsItsIdTypeAndOutcomeWithWireValuesEscaped() async throws {
        let recorder = Recorder()
        let logger = Logger(label: "test", factory: { _ in Handler(recorder: recorder) })
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: InMemoryEventStore(), logger: logger)
        let forged = "evt_1\n2026-11-23T00:00:00Z critical fake: everything is on fire"
        try await receiver.deliver(envelope(id: forged, jobId: String(repeating: "j", count: 5000)), signedWith: signer)
        _ = try? await receiver.deliver(envelope(id: "evt_2"), signedWith: Signer(secret: "whsec_wrong"))

        let lines = recorder.lines.withLock { $0 }
        let accepted = try #require(lines.first { $0.1 == "delivery accepted" })
        #expect(accepted.2["kliq.outcome"] == "accepted")
        #expect(accepted.2["kliq.event_type"] == "cv.job.completed")
        #expect(accepted.2["kliq.event_id"] == .string(#"evt_1\u{a}2026-11-23T00:00:00Z critical fake: everything is on fire"#))
        #expect("\(accepted.2["kliq.job_id"]!)".count == 257)
        let refused = try #require(lines.first { $0.2["kliq.outcome"] == "invalid_signature" })
        #expect(refused.0 == .notice)
        for line in lines {
            #expect(!"\(line.1) \(line.2)".contains(testSecret))
            #expect(!"\(line.1) \(line.2)".contains("whsec_wrong"))
        }
    }
}
