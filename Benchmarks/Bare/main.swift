// The floor for BENCHMARKS.md: a bare Hummingbird server that only verifies X-Kliq-Signature (the same
// OpenSSL HMAC, through KliqWebhooks' SignatureVerifier) and answers 200 — no parsing, no storage.
//   KLIQ_WEBHOOK_SECRET=… swift run -c release kliq-bare-receiver PORT
import Hummingbird
import KliqWebhooks
import Logging

let port = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 18097
let secret = Environment().get("KLIQ_WEBHOOK_SECRET") ?? "whsec_bench_secret"
let verifier = try SignatureVerifier(secrets: [Secret(secret)])
let router = Router()
router.post("/webhooks/kliq") { request, _ -> HTTPResponse.Status in
    let body = try await request.body.collect(upTo: 4 << 20)
    let signature = request.headers[.init("X-Kliq-Signature")!]
    guard (try? verifier.verify(signature: signature, body: Array(body.readableBytesView))) != nil else { return .unauthorized }
    return .ok
}
var logger = Logger(label: "bare")
logger.logLevel = .warning
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
try await app.runService()
