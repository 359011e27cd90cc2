#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Logging

let testSecret = "whsec_test_secret"
let signer = Signer(secret: testSecret)

func makeReceiver(store: any EventStore, retry: RetryPolicy = .init(), grace: Duration = .seconds(30)) throws -> Receiver {
    Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: store,
             configuration: .init(retry: retry, shutdownGracePeriod: grace), logger: quietLogger)
}

/// A minimal signed-able envelope.
func envelope(id: String, type: String = "cv.job.completed", jobId: String = "job_1", status: String = "completed",
              timestamp: String = "2026-04-28T12:00:00Z") -> [UInt8] {
    let idJSON = String(decoding: JSONWriter.string(id), as: UTF8.self)
    let jobJSON = String(decoding: JSONWriter.string(jobId), as: UTF8.self)
    return Array("""
        {"id":\(idJSON),"type":"\(type)","tenantId":"t_1","timestamp":"\(timestamp)",\
        "data":{"jobId":\(jobJSON),"status":"\(status)","model":"shelf-detection-v2","result":{"detections":[]}}}
        """.utf8)
}

let fixtures: Fixtures = try! Fixtures()

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
