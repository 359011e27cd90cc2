#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Logging

/// A fresh temporary directory, removed when the test's scope ends.
final class TemporaryDirectory: Sendable {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "kliq-test-XXXXXX").utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        self.path = String(cString: result!)
    }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }

    func file(_ relative: String) -> String { self.path + "/" + relative }

    func contents(_ relative: String) -> [UInt8]? {
        FileManager.default.contents(atPath: self.file(relative)).map(Array.init)
    }

    func names(_ relative: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: self.file(relative))) ?? []).sorted()
    }
}

let testSecret = "whsec_test_secret"
let signer = Signer(secret: testSecret)

func makeReceiver(store: any EventStore) throws -> Receiver {
    Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: store, logger: quietLogger)
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
