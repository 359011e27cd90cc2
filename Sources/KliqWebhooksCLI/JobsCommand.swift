import ArgumentParser
import Foundation
import KliqWebhooks
import KliqWebhooksPolling
import KliqWebhooksPostgres
import Logging
import Synchronization

/// `kliq-webhooks jobs`: what the receiver knows about CV jobs — the answer to "did we get job X?".
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List, show, track, start, reconcile and wait for CV jobs (works while serve is running).",
        subcommands: [List.self, Show.self, Wait.self, Track.self, Start.self, Reconcile.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
        @OptionGroup var location: StoreLocation
        @Option(help: "Only jobs with this status (completed, failed, …).") var status: String?
        @Option(help: "Only jobs of this model (e.g. shelf-detection-v2).") var model: String?
        @Option(help: "Only jobs updated at or after this RFC 3339 time (e.g. 2026-04-28T00:00:00Z).") var since: String?
        @Flag(help: "One JSON job document a line.") var json = false

        func validate() throws {
            if let since, Timestamp(rfc3339: since) == nil { throw ValidationError("--since needs an RFC 3339 time like 2026-04-28T00:00:00Z") }
        }

        func run() async throws {
            try await self.location.withReader { try await self.list($0) }
        }

        private func list(_ directory: any StoreReader) async throws {
            let since = self.since.flatMap(Timestamp.init(rfc3339:))
            let jobs = try await directory.jobDocuments().compactMap { bytes -> (Job, [UInt8])? in
                guard let job = try? Job(json: JSONValue(parsing: bytes)) else { return nil }
                if let status = self.status, job.status.rawValue != status { return nil }
                if let model = self.model, job.model?.rawValue != model { return nil }
                if let since, (job.updatedAt.flatMap(Timestamp.init(rfc3339:)).map { $0 < since } ?? true) { return nil }
                return (job, bytes)
            }.sorted { ($0.0.updatedAt ?? "") > ($1.0.updatedAt ?? "") }
            if self.json {
                for (_, bytes) in jobs { print(String(decoding: JSONLayout.minified(bytes), as: UTF8.self)) }
                return
            }
            guard !jobs.isEmpty else {
                print("no jobs\(self.status.map { " with status \($0)" } ?? "") in \(directory.name)")
                return
            }
            let rows = jobs.map { job, _ in
                [job.id, job.status.rawValue, job.model?.rawValue ?? "-", job.updatedAt ?? "-",
                 job.result.map { "\($0.detections.count)" } ?? "-", job.error?.description ?? ""]
            }
            print(Output.table(header: ["JOB", "STATUS", "MODEL", "UPDATED", "DETECTIONS", "ERROR"], rows: rows))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job: status, error, and a summary of its detections.")
        @OptionGroup var location: StoreLocation
        @Argument(help: "The job id.") var jobId: String
        @Flag(help: "Print the stored job document.") var json = false

        func run() async throws {
            try await self.location.withReader { try await self.show($0) }
        }

        private func show(_ directory: any StoreReader) async throws {
            guard let bytes = try await directory.jobDocument(id: self.jobId) else {
                throw Failure("no job \(self.jobId) in \(directory.name) (see: kliq-webhooks jobs list \(directory.hint))")
            }
            print(self.json ? String(decoding: JSONLayout.minified(bytes), as: UTF8.self) : try JobReport.render(bytes))
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Track a job and wait until it is completed or failed (the CLI twin of waitForCompletion), then show it.",
            discussion: """
                With KLIQ's API configured (KLIQ_API_KEY and KLIQ_TENANT_ID, or the flags), a job no webhook finishes \
                within --poll-after is polled as serve would, and a final state found is handed to the running serve. \
                Exit status: 0 completed, 1 failed, 124 timed out.
                """)
        @OptionGroup var location: StoreLocation
        @OptionGroup var api: APIOptions
        @Argument(help: "The job id.") var jobId: String
        @Option(help: "Seconds to wait.") var timeout = 60.0
        @Flag(help: "Print the stored job document.") var json = false

        func run() async throws {
            let logger = Logger(label: "kliq-webhooks") { _ in SwiftLogNoOpLogHandler() }
            try await Waiting(location: self.location, jobId: self.jobId, timeout: self.timeout, json: self.json,
                              api: try self.api.client(logger: logger), pollAfter: self.api.pollAfterSeconds).run(track: true)
        }
    }
}

/// `jobs wait` (and `jobs start --wait`): reads the job until it is finished — every 100 ms from a data
/// directory; from a database, on each announcement that it changed (LISTEN/NOTIFY) and at least every
/// second — and, with KLIQ's API, polls it once it is overdue.
struct Waiting {
    let location: StoreLocation
    let jobId: String
    let timeout: Double
    let json: Bool
    let api: KliqAPIClient?
    let pollAfter: Double

    func run(track: Bool) async throws {
        try await self.location.withReader { reader in
            let store = PollingStore(reader)
            if track { try await store.track(self.jobId) }
            try await self.wait(reader, store)
        }
    }

    private func wait(_ directory: any StoreReader, _ store: PollingStore) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int64(self.timeout * 1000))
        let changes = (directory as? DatabaseReader)?.store.jobChanges()
        let wake = changes.map { changes in WakeUps(changes, jobId: self.jobId) }
        defer { wake?.stop() }
        var nextPoll = ContinuousClock.now + .milliseconds(Int64(self.pollAfter * 1000))
        var interval = Duration.milliseconds(Int64(self.pollAfter * 1000))
        var polled: JobStatus?
        while true {
            if let bytes = try await directory.jobDocument(id: self.jobId), let job = try? Job(json: JSONValue(parsing: bytes)), job.isFinished {
                print(self.json ? String(decoding: JSONLayout.minified(bytes), as: UTF8.self) : try JobReport.render(bytes))
                if job.status != .completed { throw ExitCode(1) }
                return
            }
            guard ContinuousClock.now < deadline else {
                let found = polled.map { "; polling found it \($0), but no running serve stored it (is serve running on \(self.location.hint)?)" } ?? ""
                FileHandle.standardError.write(Data("kliq-webhooks: job \(self.jobId) did not finish within \(self.timeout) s\(found)\n".utf8))
                throw ExitCode(124)
            }
            if let api, polled == nil, ContinuousClock.now >= nextPoll {
                switch await api.poll(jobId: self.jobId) {
                case .finished(let event, let status):
                    _ = try await store.submit(event)
                    polled = status
                case .unauthorized(let error):
                    throw Failure("\(error.message): check KLIQ_API_KEY (or --kliq-api-key-file) and --kliq-tenant")
                default: break
                }
                interval = min(interval * 2, .seconds(300))
                nextPoll = ContinuousClock.now + interval
            }
            if let wake { await wake.next(within: min(.seconds(1), deadline - ContinuousClock.now)) } else { try await Task.sleep(for: .milliseconds(100)) }
        }
    }
}

/// The human view of a job document.
enum JobReport {
    static func render(_ bytes: [UInt8]) throws -> String {
        let job = try Job(json: JSONValue(parsing: bytes))
        var lines = [
            "job          \(job.id)",
            "status       \(job.status)",
            "model        \(job.model?.rawValue ?? "-")",
            "observation  \(job.observationId ?? "-")",
            "tenant       \(job.tenantId ?? "-")",
            "updated      \(job.updatedAt ?? "-")  (event \(job.eventId))",
        ]
        if let error = job.error { lines.append("error        \(error.description)") }
        guard let result = job.result else { return lines.joined(separator: "\n") }
        lines.append("detections   \(result.detections.count)")
        if let summary = result.summary {
            if let score = summary.complianceScore { lines.append("compliance   \(String(format: "%.0f%%", score * 100))") }
            if let total = summary.totalProducts { lines.append("products     \(total) (\(summary.uniqueSKUs.map(String.init) ?? "?") unique SKUs)") }
            lines.append("out of stock \(summary.outOfStock.isEmpty ? "-" : summary.outOfStock.joined(separator: ", "))")
        }
        var counts: [String: (count: Int, facings: Int, nullPrice: Int)] = [:]
        for detection in result.detections {
            var entry = counts[detection.objectName] ?? (0, 0, 0)
            entry.count += 1
            entry.facings += detection.attributes.facings ?? 0
            if detection.attributes.hasNullPriceTag { entry.nullPrice += 1 }
            counts[detection.objectName] = entry
        }
        let shelf = result.detections.contains { $0.attributes.facings != nil }
        let header = shelf ? ["OBJECT", "COUNT", "FACINGS", "NO PRICE TAG"] : ["OBJECT", "COUNT"]
        let rows = counts.sorted { ($1.value.count, $0.key) < ($0.value.count, $1.key) }.map { name, value in
            shelf ? [name, "\(value.count)", "\(value.facings)", "\(value.nullPrice)"] : [name, "\(value.count)"]
        }
        lines.append("")
        lines.append(Output.table(header: header, rows: rows))
        return lines.joined(separator: "\n")
    }
}

/// Announcements that one job changed, as a wait with a time limit.
final class WakeUps: Sendable {
    private final class Flag: Sendable { let value = Atomic<Bool>(false) }
    private let task: Task<Void, Never>
    private let flag = Flag()

    init(_ changes: AsyncStream<String>, jobId: String) {
        let flag = self.flag
        self.task = Task {
            for await id in changes where id == jobId { flag.value.store(true, ordering: .releasing) }
        }
    }

    /// Returns soon after the next announcement (at once if one came since the last call), or after `limit`.
    func next(within limit: Duration) async {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end, !Task.isCancelled {
            if self.flag.value.exchange(false, ordering: .acquiringAndReleasing) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() { self.task.cancel() }
}
