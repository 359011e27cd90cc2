// An existing Hummingbird app that receives KLIQ webhooks on one of its routes, with two handlers:
// a shelf-compliance alert and a building-damage triage.
//
//   KLIQ_WEBHOOK_SECRET=whsec_dev swift run ShelfAlertsExample
//   kliq-webhooks replay Fixtures/ --url http://127.0.0.1:8080/integrations/kliq
import Foundation
import Hummingbird
import KliqWebhooks
import KliqWebhooksHummingbird
import Logging

var logger = Logger(label: "shelf-alerts")
logger.logLevel = .info
guard let secrets = ProcessInfo.processInfo.environment["KLIQ_WEBHOOK_SECRET"].map(Secret.list), !secrets.isEmpty else {
    print("set KLIQ_WEBHOOK_SECRET")
    exit(2)
}
let receiver = Receiver(
    verifier: try SignatureVerifier(secrets: secrets),
    store: try FileEventStore(directory: ProcessInfo.processInfo.environment["DATA_DIR"] ?? "./shelf-alerts-data"),
    logger: logger
)

// Shelf compliance: alert when a store's shelf scores under 80% or something is out of stock.
receiver.on(.cvJobCompleted, name: "shelf-compliance") { [logger] event in
    let job = try event.cvJob()
    guard job.model == .shelfDetectionV2, let summary = job.result?.summary else { return }
    let missingTags = job.result?.detections.filter(\.attributes.hasNullPriceTag).map(\.objectName) ?? []
    if (summary.complianceScore ?? 1) < 0.8 || !summary.outOfStock.isEmpty || !missingTags.isEmpty {
        logger.warning("shelf needs attention", metadata: [
            "job": "\(job.jobId)", "compliance": "\(summary.complianceScore ?? 1)",
            "outOfStock": "\(summary.outOfStock)", "missingPriceTags": "\(missingTags)",
        ])
    }
}

// Building damage: anything graded 3 or worse goes to the urgent queue.
receiver.on([.cvJobCompleted, .cvJobFailed], name: "damage-triage") { [logger] event, context in
    let job = try event.cvJob()
    guard job.model == .damageAssessmentV1 else { return }
    if let error = job.error {
        logger.error("damage assessment failed; re-shoot the photo", metadata: ["job": "\(job.jobId)", "error": "\(error)"])
        return
    }
    let urgent = job.result?.detections.filter { ($0.attributes["grade"]?.intValue ?? 0) >= 3 } ?? []
    for finding in urgent {
        logger.warning("urgent damage", metadata: [
            "job": "\(job.jobId)", "finding": "\(finding.objectName)", "grade": "\(finding.attributes["grade"]?.intValue ?? 0)",
            "attempt": "\(context.attempt)",
        ])
    }
}
receiver.onError { [logger] failure in logger.error("handler failed", metadata: failure.metadata) }

let router = Router()
router.get("/") { _, _ in "shelf-alerts is running\n" }
router.group("/integrations").addKliqWebhook("/kliq", receiver: receiver)
router.addHealthChecks(readiness: Readiness(store: receiver.store))
let port = ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init) ?? 8080
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    services: [receiver],
    onServerRunning: { channel in
        let line = "shelf-alerts listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)/integrations/kliq\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    },
    logger: logger
)
try await app.runService()
