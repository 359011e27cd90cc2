import ArgumentParser
import AsyncHTTPClient
import Foundation
import KliqWebhooks
import KliqWebhooksPostgres
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `kliq-webhooks replay`: sign payload files (or a data directory's stored events) and POST them.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Sign payloads with the configured secret and POST them to a receiver; print a summary.",
        discussion: """
            Exit status 0 when every delivery was answered accepted or duplicate, 1 otherwise. A progress line \
            is shown on a terminal.
            """
    )
    @OptionGroup var secrets: SecretOptions
    @Argument(help: "Payload files, or folders of *.json payloads.") var paths: [String] = []
    @Option(help: "The webhook URL, e.g. http://127.0.0.1:8080/webhooks/kliq.") var url: String
    @Option(help: ArgumentHelp(
        "Replay the events stored in this data directory, or in this PostgreSQL database (a postgres:// URL, or 'postgres' for --database-url/KLIQ_DATABASE_URL), instead of files.",
        valueName: "DIR|postgres://…|postgres"))
    var fromStore: String?
    @Option(help: ArgumentHelp("With --from-store postgres: the database (also KLIQ_DATABASE_URL).", valueName: "URL")) var databaseURL: String?
    @Option(help: "With a database: the schema holding the tables. [default: kliq]") var databaseSchema = "kliq"
    @Option(help: "Deliveries in flight at once.") var concurrency = 8
    @Flag(help: "Give every delivery a fresh event id, so the same payloads can be replayed again and again.") var newIds = false
    @Option(help: "Send the whole set this many times.") var `repeat` = 1
    @Option(help: "At most this many deliveries a second (default: as fast as the receiver answers).") var rate: Double?

    func validate() throws {
        guard !self.paths.isEmpty || self.fromStore != nil else { throw ValidationError("give payload files or folders, or --from-store DIR") }
        guard ServeSettings.isHTTPURL(self.url) else {
            throw ValidationError("--url needs an http:// or https:// URL, not '\(self.url)'")
        }
        guard self.concurrency >= 1, self.repeat >= 1 else { throw ValidationError("--concurrency and --repeat must be at least 1") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
    }

    func run() async throws {
        let secret = try self.secrets.load()[0]
        let payloads: [(String, [UInt8])]
        if let database = try self.databaseToReplay() {
            payloads = try await Self.loadPayloads(database: database, schema: self.databaseSchema)
        } else {
            payloads = try self.loadPayloads()
        }
        guard !payloads.isEmpty else { throw ValidationError("no *.json payloads found in \(self.paths.joined(separator: ", "))") }
        let total = payloads.count * self.repeat
        let tally = Tally()
        let next = Ticket(limit: total)
        let start = ContinuousClock.now
        let progress = isatty(2) == 1
        let batch = String(UInt32.random(in: 0...UInt32.max), radix: 36)

        try await withThrowingTaskGroup(of: Void.self) { group in
            if progress {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(250))
                        FileHandle.standardError.write(Data(("\r" + tally.progressLine(total: total, since: start)).utf8))
                    }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { workers in
                for _ in 0..<min(self.concurrency, total) {
                    workers.addTask {
                        while true {
                            guard let index = next.take() else { return }
                            if let rate = self.rate { try await ContinuousClock().sleep(until: start + .milliseconds(Int64(Double(index) / rate * 1000))) }
                            let original = payloads[index % payloads.count].1
                            var body = original
                            if self.newIds {
                                let id = ((try? Event(decoding: original).id) ?? "evt").prefix(120) + "_r\(batch)_\(index)"
                                body = try PayloadRewriter.rewrite(original, envelope: ["id": String(id)])
                            }
                            tally.record(try await self.post(body, secret: secret))
                        }
                    }
                }
                try await workers.waitForAll()
            }
            group.cancelAll()
        }
        if progress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        print(tally.summary(url: self.url, since: start))
        if tally.rejected > 0 { throw ExitCode(1) }
    }

    private func post(_ body: [UInt8], secret: Secret) async throws -> Tally.Answer {
        var request = HTTPClientRequest(url: self.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: SignatureVerifier.headerName, value: SignatureVerifier.signature(for: body, secret: secret))
        request.body = .bytes(ByteBuffer(bytes: body))
        let started = ContinuousClock.now
        do {
            let response = try await Self.client.execute(request, timeout: .seconds(30))
            let answer = try await response.body.collect(upTo: 1 << 20)
            let json = (try? JSONSerialization.jsonObject(with: Data(answer.readableBytesView))) as? [String: Any]
            let outcome = (json?["status"] as? String) ?? (json?["error"] as? String).map { "\(response.status.code) \($0)" } ?? "\(response.status.code)"
            return .init(outcome: response.status.code == 200 ? outcome : (outcome.first?.isNumber == true ? outcome : "\(response.status.code) \(outcome)"),
                         ok: response.status.code == 200, latency: ContinuousClock.now - started)
        } catch {
            if Self.isRefused(error) {
                throw Failure("nothing answers at \(self.url): connection refused (is kliq-webhooks serve running there? check --url)")
            }
            return .init(outcome: "transport error: \(error)", ok: false, latency: ContinuousClock.now - started)
        }
    }

    /// Replay's client: a refused connection fails the request at once, instead of being retried until
    /// the request's 30 s deadline (AsyncHTTPClient's default).
    private static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private static func isRefused(_ error: any Error) -> Bool {
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        if let error = error as? NIOConnectionError { return error.connectionErrors.contains { Self.isRefused($0.error) } }
        return false
    }

    /// The database `--from-store` names, if it names one.
    private func databaseToReplay() throws -> String? {
        guard let source = self.fromStore else { return nil }
        if source.hasPrefix("postgres://") || source.hasPrefix("postgresql://") { return source }
        guard source == "postgres" else { return nil }
        guard let url = StoreLocation.databaseURL(self.databaseURL) else {
            throw Failure("--from-store postgres needs the database: --database-url URL or KLIQ_DATABASE_URL")
        }
        return url
    }

    /// Every stored event's body, in the order they were accepted.
    private static func loadPayloads(database url: String, schema: String) async throws -> [(String, [UInt8])] {
        try await StoreLocation.withDatabase(url, schema: schema, migrating: false) { store in
            var payloads: [(String, [UInt8])] = []
            var after: UInt64 = 0
            while true {
                let page = try await store.eventBodies(after: after, limit: 1000)
                payloads += page.map { ($0.id, $0.body) }
                guard let last = page.last, page.count == 1000 else { return payloads }
                after = last.sequence
            }
        }
    }

    private func loadPayloads() throws -> [(String, [UInt8])] {
        var files: [String] = []
        let sources = self.fromStore.map { [$0 + "/events"] } ?? self.paths
        for path in sources {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ValidationError("no such file or folder: \(path)") }
            if isDirectory.boolValue {
                files += try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".json") }.sorted().map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        return try files.map { ($0, try readBody($0)) }
    }
}

/// Counts answers by outcome and keeps latencies, for the progress line and the summary.
final class Tally: Sendable {
    struct Answer: Sendable {
        var outcome: String
        var ok: Bool
        var latency: Duration
    }

    private let state = Mutex<(counts: [String: Int], latencies: [Double], rejected: Int)>(([:], [], 0))

    func record(_ answer: Answer) {
        self.state.withLock { state in
            state.counts[answer.outcome, default: 0] += 1
            state.latencies.append(answer.latency.seconds * 1000)
            if !answer.ok { state.rejected += 1 }
        }
    }

    var rejected: Int { self.state.withLock { $0.rejected } }

    func progressLine(total: Int, since start: ContinuousClock.Instant) -> String {
        let (counts, done) = self.state.withLock { ($0.counts, $0.latencies.count) }
        let elapsed = (ContinuousClock.now - start).seconds
        return "\(done)/\(total) sent  \(counts["accepted"] ?? 0) accepted  \(counts["duplicate"] ?? 0) duplicate  "
            + "\(self.rejected) rejected  \(Int(Double(done) / max(elapsed, 0.001)))/s"
    }

    func summary(url: String, since start: ContinuousClock.Instant) -> String {
        let (counts, latencies, rejected) = self.state.withLock { ($0.counts, $0.latencies.sorted(), $0.rejected) }
        let elapsed = (ContinuousClock.now - start).seconds
        func percentile(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "-" }
            return String(format: "%.1f ms", latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))])
        }
        var rows = [["accepted", "\(counts["accepted"] ?? 0)"], ["duplicate", "\(counts["duplicate"] ?? 0)"]]
        rows += counts.filter { $0.key != "accepted" && $0.key != "duplicate" }.sorted { $0.key < $1.key }.map { [$0.key, "\($0.value)"] }
        return """
            replayed \(latencies.count) deliveries to \(url) in \(String(format: "%.2f", elapsed)) s \
            (\(Int(Double(latencies.count) / max(elapsed, 0.001)))/s), \(rejected) rejected
            \(Output.table(header: ["OUTCOME", "COUNT"], rows: rows))
            latency p50 \(percentile(0.5))  p90 \(percentile(0.9))  p99 \(percentile(0.99))  max \(latencies.last.map { String(format: "%.1f ms", $0) } ?? "-")
            """
    }
}

/// Hands out 0, 1, 2, … up to a limit, to concurrent workers.
final class Ticket: Sendable {
    private let next = Mutex(0)
    let limit: Int
    init(limit: Int) { self.limit = limit }

    func take() -> Int? {
        self.next.withLock { value in
            guard value < self.limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}
