// Start a CV job, then await its webhook instead of polling GET /cv/jobs/{id}.
//
// A stubbed KLIQ API runs in-process: POST /v1/tenants/{t}/cv/jobs answers {"id", "status":"queued"}
// and, a moment later, delivers a signed cv.job.completed webhook to this app's receiver — as KLIQ would.
//
//   swift run AwaitCompletionExample
import AsyncHTTPClient
import Foundation
import Hummingbird
import KliqWebhooks
import KliqWebhooksHummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

let logger = Logger(label: "await-completion", factory: { _ in SwiftLogNoOpLogHandler() })
let secret = Secret("whsec_example")
let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("kliq-example-\(UUID().uuidString)").path
defer { try? FileManager.default.removeItem(atPath: dataDirectory) }

// Our side: the receiver, mounted in our app.
let receiver = Receiver(verifier: try SignatureVerifier(secrets: [secret]), store: try FileEventStore(directory: dataDirectory), logger: logger)
let (receiverPort, receiverBound) = AsyncStream.makeStream(of: Int.self)
let ourApp = WebhookServer.application(receiver: receiver, configuration: .init(port: 0), logger: logger) { address in
    receiverBound.yield(address?.port ?? 0)
}

// KLIQ's side, stubbed: start a job, then call the webhook.
let (apiPort, apiBound) = AsyncStream.makeStream(of: Int.self)
let webhookURL = Mutex2<String?>(nil)
let kliqRouter = Router()
kliqRouter.post("/v1/tenants/:tenant/cv/jobs") { request, context -> Response in
    let jobId = "job_\(UInt32.random(in: 0...UInt32.max))"
    let tenant = context.parameters.get("tenant") ?? "t_demo"
    let body = Array("""
        {"id":"evt_\(jobId)","type":"cv.job.completed","tenantId":"\(tenant)","timestamp":"2026-04-28T12:00:00Z",\
        "data":{"jobId":"\(jobId)","observationId":"obs_abc123","model":"shelf-detection-v2","status":"completed",\
        "result":{"detections":[{"objectName":"Coca-Cola 330ml","confidence":0.97,"boundingBox":{"x":120,"y":45,"width":80,"height":200},\
        "attributes":{"facings":4,"shelfPosition":"eye-level","priceTag":"2.49"}}],\
        "summary":{"totalProducts":24,"uniqueSKUs":8,"outOfStock":["Fanta Orange 330ml"],"complianceScore":0.85}}}}
        """.utf8)
    let url = webhookURL.value!
    Task {
        try await Task.sleep(for: .milliseconds(300))   // the model runs…
        var delivery = HTTPClientRequest(url: url)
        delivery.method = .POST
        delivery.headers.add(name: "X-Kliq-Signature", value: SignatureVerifier.signature(for: body, secret: secret))
        delivery.body = .bytes(ByteBuffer(bytes: body))
        _ = try await HTTPClient.shared.execute(delivery, timeout: .seconds(10))
    }
    return Response(status: .created, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"id":"\#(jobId)","status":"queued"}"#)))
}
let kliqAPI = Application(router: kliqRouter, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { apiBound.yield($0.localAddress?.port ?? 0) }, logger: logger)

let group = ServiceGroup(configuration: .init(services: [ourApp, kliqAPI], logger: logger))
try await withThrowingTaskGroup(of: Void.self) { tasks in
    tasks.addTask { try await group.run() }
    var ports = receiverPort.makeAsyncIterator()
    var apiPorts = apiPort.makeAsyncIterator()
    let port = await ports.next()!
    let api = await apiPorts.next()!
    webhookURL.value = "http://127.0.0.1:\(port)/webhooks/kliq"

    // 1. Start the job (what `tenant.cv.start(...)` does in KLIQ's SDK).
    var start = HTTPClientRequest(url: "http://127.0.0.1:\(api)/v1/tenants/t_demo/cv/jobs")
    start.method = .POST
    start.body = .bytes(ByteBuffer(string: #"{"observationId":"obs_abc123","model":"shelf-detection-v2"}"#))
    let answer = try await HTTPClient.shared.execute(start, timeout: .seconds(10))
    let started = try JSONValue(parsing: Array(try await answer.body.collect(upTo: 1 << 16).readableBytesView))
    let jobId = started["id"]!.stringValue!
    print("started \(jobId): \(started["status"]!.stringValue!)")

    // 2. Instead of polling every 2 s: wait for the webhook.
    let job = try await receiver.waitForCompletion(jobId: jobId, timeout: .seconds(30))
    print("\(job.id) \(job.status): \(job.result?.detections.count ?? 0) detections, compliance \(job.result?.summary?.complianceScore ?? 0)")

    await group.triggerGracefulShutdown()
    try await tasks.waitForAll()
}

/// A tiny lock-protected box for sharing the webhook URL with the stub's route.
final class Mutex2<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { self.stored = value }
    var value: Value {
        get { self.lock.withLock { self.stored } }
        set { self.lock.withLock { self.stored = newValue } }
    }
}
