import Foundation
import KliqWebhooks
import KliqWebhooksHummingbirdTesting
import KliqWebhooksPolling
import KliqWebhooksTesting
import Logging
import ServiceLifecycle
import Synchronization

let signer = Signer(secret: "whsec_polling_tests")
let apiKey = "key_polling_SECRET_1234"

/// A log handler that keeps every line, to check what reached the log (and what did not).
final class CapturedLog: Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(log: self) }
        logger.logLevel = .debug
        return logger
    }

    var all: [String] { self.lines.withLock { $0 } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
            self.log.lines.withLock { $0.append("\(event.level) \(event.message) \(merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))") }
        }
    }
}

func client(_ api: StubKliqAPI, rate: Int? = nil, timeout: Duration = .seconds(5), attempts: Int = 3, logger: Logger = Logger(label: "test")) -> KliqAPIClient {
    KliqAPIClient(configuration: .init(baseURL: api.baseURL, apiKey: APIKey(apiKey), tenantId: "t_1", timeout: timeout, maxAttempts: attempts,
                                       backoff: .milliseconds(50), requestsPerSecond: rate), logger: logger)
}

/// A signed webhook for `job`'s final state.
func webhook(_ id: String, job: String, status: String = "completed", at time: String = "2026-04-28T12:00:00Z") -> [UInt8] {
    let detail = status == "completed" ? #""result":{"detections":[],"summary":{"totalProducts":0}}"# : #""error":{"code":"x","message":"y"}"#
    return Array(#"{"id":"\#(id)","type":"cv.job.\#(status)","tenantId":"t_1","timestamp":"\#(time)","data":{"jobId":"\#(job)","status":"\#(status)","model":"shelf-detection-v2",\#(detail)}}"#.utf8)
}

/// Waits until `condition` holds, or fails after `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}
