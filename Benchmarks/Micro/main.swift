// Microbenchmarks of the delivery hot path, in release mode:
//   swift run -c release kliq-microbenchmarks [SECONDS_PER_CASE=1]
// Each case runs for the given time in 5 rounds after a warm-up; the median round is reported, with
// the spread of the rounds. Compare cases within one run: these machines are shared and noisy.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KliqWebhooks

let seconds = CommandLine.arguments.dropFirst().first.flatMap(Double.init) ?? 1

/// A realistic delivery: a completed shelf-detection job with `detections` detections.
func delivery(_ id: Int, detections: Int) -> [UInt8] {
    let items = (0..<detections).map { k in
        #"{"objectName":"Product \#(k % 40)","confidence":0.9\#(k % 10),"boundingBox":{"x":\#(k % 1000),"y":5,"width":80,"height":200},"attributes":{"facings":\#(k % 4 + 1),"shelfPosition":"eye-level","priceTag":null}}"#
    }.joined(separator: ",")
    return Array(#"{"id":"evt_micro_\#(id)","type":"cv.job.completed","tenantId":"t_micro","timestamp":"2026-11-24T12:00:00Z","data":{"jobId":"job_micro_\#(id)","observationId":"obs_\#(id)","model":"shelf-detection-v2","status":"completed","result":{"detections":[\#(items)],"summary":{"totalProducts":\#(detections),"uniqueSKUs":40,"outOfStock":[],"complianceScore":0.82}}}}"#.utf8)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs `body` (which does `batch` operations per call) after a warm-up, in 5 rounds; prints the
/// median time per operation, the throughput over `bytes` when given, and the rounds' spread.
func measure(_ name: String, bytes: Int? = nil, batch: Int = 1, _ body: () async throws -> Void) async rethrows {
    let warmEnd = now() + min(0.2, seconds / 5)
    while now() < warmEnd { try await body() }
    var perOp: [Double] = []
    for _ in 0..<5 {
        var count = 0
        let start = now()
        let end = start + seconds / 5
        repeat {
            try await body()
            count += batch
        } while now() < end
        perOp.append((now() - start) / Double(count))
    }
    perOp.sort()
    let median = perOp[2]
    let size = bytes.map { String(format: "  %.0f MB/s", Double($0) / median / 1e6) } ?? ""
    let label = name.padding(toLength: 48, withPad: " ", startingAt: 0)
    print(label + String(format: "%12.2f µs/op %10.0f op/s%@   (rounds ±%.0f%%)", median * 1e6, 1 / median, size as NSString, (perOp[4] - perOp[0]) / median * 50))
}

let secret = Secret("whsec_micro_secret")
let verifier = try SignatureVerifier(secrets: [secret])
let small = delivery(1, detections: 10)
let large = delivery(2, detections: 2_800)
print("bodies: \(small.count) B and \(large.count) B; \(seconds) s per case; Swift release build")

for (label, body) in [("2 KB", small), ("500 KB", large)] {
    let signature = SignatureVerifier.signature(for: body, secret: secret)
    try await measure("HMAC-SHA256 verify, \(label) body", bytes: body.count) { _ = try verifier.verify(signature: signature, body: body) }
    try await measure("envelope decode (Event(decoding:)), \(label)", bytes: body.count) { _ = try Event(decoding: body) }
    let event = try Event(decoding: body)
    await measure("job record build (jobs/ document), \(label)", bytes: body.count) { _ = JobRecord(event: event) }
    let document = JobRecord(event: event)!.bytes
    try await measure("job decode (Job(json:)), \(label)", bytes: document.count) { _ = try Job(json: JSONValue(parsing: document)) }
}

let directory = NSTemporaryDirectory() + "kliq-micro-\(getpid())"
defer { try? FileManager.default.removeItem(atPath: directory) }
let store = try FileEventStore(directory: directory)
let events = try (0..<200_000).map { try Event(decoding: delivery(1_000 + $0, detections: 10)) }
let next = Counter()
try await measure("store claim+write, one at a time (durable)") {
    _ = try await store.commit(events[next.take()])
}
try await measure("store claim+write, 64 concurrent (group commit)", batch: 64) {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<64 {
            let event = events[next.take()]
            group.addTask { _ = try await store.commit(event) }
        }
        try await group.waitForAll()
    }
}

// Memory the file store's index of unfinished deliveries costs per event (an entry, no body): RSS
// growth over 100,000 accepted events with one handler that never runs, in a store of their own.
func residentBytes() -> Int {
    let fields = ((try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? "").split(separator: " ")
    return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}
do {
    let pendingDirectory = directory + "-pending"
    defer { try? FileManager.default.removeItem(atPath: pendingDirectory) }
    let pendingStore = try FileEventStore(directory: pendingDirectory)
    let count = 100_000
    let bodies = (0..<count).map { delivery(5_000_000 + $0, detections: 0) }
    let before = residentBytes()
    for start in stride(from: 0, to: count, by: 64) {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in start..<min(start + 64, count) {
                let event = try Event(decoding: bodies[index], signature: String(repeating: "a", count: 64))
                group.addTask { _ = try await pendingStore.accept(event, handlers: ["forward#1"]) }
            }
            try await group.waitForAll()
        }
    }
    let pending = try await pendingStore.pending(handlers: ["forward#1"])
    let perEvent = (residentBytes() - before) / max(pending, 1)
    print("index of unfinished deliveries: \(pending) events pending, RSS +\(perEvent) bytes per event")
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}
