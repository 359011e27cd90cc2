import ArgumentParser
import Foundation
import KliqWebhooks
import KliqWebhooksPolling
import KliqWebhooksPostgres
import Logging

/// The store as the polling commands use it: track jobs, read their state, and hand polled states to
/// the running receivers (a data directory's `inbox/`, or the database's `polled_inbox`).
struct PollingStore: Sendable {
    let directory: DataDirectory?
    let database: PostgresEventStore?
    let hint: String

    func track(_ jobId: String) async throws {
        if let directory { try directory.track(jobId) }
        if let database { try await database.track(jobId: jobId) }
    }

    func storedStatus(_ jobId: String) async throws -> JobStatus? {
        var bytes = self.directory?.jobDocument(id: jobId)
        if let database { bytes = try await database.jobDocument(id: jobId) }
        return bytes.flatMap { try? Job(json: JSONValue(parsing: $0)) }?.status
    }

    func tracked() async throws -> [TrackedJob] {
        if let directory { return directory.trackedJobs() }
        guard let database else { return [] }
        var all: [TrackedJob] = []
        repeat {
            let page = try await database.trackedJobs(after: all.last?.jobId, limit: 1000)
            all += page
            if page.count < 1000 { break }
        } while true
        return all
    }

    /// Hands `event` to the running receivers; returns a check of whether one has taken it yet.
    func submit(_ event: Event) async throws -> @Sendable () async -> Bool {
        if let directory {
            let name = try directory.submitPolled(event.rawBody)
            return { !directory.isWaiting(name) }
        }
        guard let database else { return { true } }
        let id = try await database.submitPolled(event.rawBody)
        return { (try? await database.isPolledWaiting(id)) == false }
    }

    /// The store a read-side command opened.
    init(_ reader: any StoreReader) {
        self.directory = reader as? DataDirectory
        self.database = (reader as? DatabaseReader)?.store
        self.hint = reader.hint
    }

    /// Runs `body` with the store `location` names (the data directory must exist).
    static func with<T: Sendable>(_ location: StoreLocation, _ body: (PollingStore) async throws -> T) async throws -> T {
        try await location.withReader { try await body(PollingStore($0)) }
    }
}

extension JobsCommand {
    struct Track: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Track jobs: a serve with KLIQ's API configured polls any of them no webhook finishes within --poll-after.")
        @OptionGroup var location: StoreLocation
        @Argument(help: "The job ids.") var jobIds: [String]

        func validate() throws {
            guard !self.jobIds.isEmpty else { throw ValidationError("name at least one job id") }
            if let empty = self.jobIds.first(where: { $0.isEmpty }) { throw ValidationError("a job id cannot be empty ('\(empty)')") }
        }

        func run() async throws {
            try await PollingStore.with(self.location) { store in
                for jobId in self.jobIds { try await store.track(jobId) }
            }
            print("tracking \(self.jobIds.count) job\(self.jobIds.count == 1 ? "" : "s"); a running serve with KLIQ's API configured polls those no webhook finishes")
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a CV job through KLIQ's API, track it, and print its id (with --wait, wait for it too).",
            discussion: "Exit status with --wait: 0 completed, 1 failed, 124 timed out.")
        @OptionGroup var location: StoreLocation
        @OptionGroup var api: APIOptions
        @Option(help: "The observation to analyse, e.g. obs_abc123.") var observation: String
        @Option(help: "The model, e.g. shelf-detection-v2.") var model: String
        @Flag(help: "Wait until the job is completed or failed, then show it (as jobs wait).") var wait = false
        @Option(help: "Seconds to wait, with --wait.") var timeout = 300.0

        func run() async throws {
            let logger = Logger(label: "kliq-webhooks") { _ in SwiftLogNoOpLogHandler() }
            let client = try self.api.requireClient(logger: logger)
            let job: APIJob
            do {
                job = try await client.startJob(observationId: self.observation, model: self.model)
            } catch {
                throw Failure(error.message)
            }
            print(job.id)
            do {
                try await PollingStore.with(self.location) { try await $0.track(job.id) }
            } catch {
                FileHandle.standardError.write(Data("kliq-webhooks: started \(job.id), but could not track it: \(error)\n".utf8))
            }
            guard self.wait else { return }
            try await Waiting(location: self.location, jobId: job.id, timeout: self.timeout, json: false, api: client,
                              pollAfter: self.api.pollAfterSeconds).run(track: false)
        }
    }

    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Poll the given jobs (or every tracked job overdue for a final state) now, and hand what is final to serve.",
            discussion: """
                Prints one line per job: JOB_ID OLD → NEW, or JOB_ID unchanged. Final states are stored and \
                dispatched like any poll by the running serve (the data directory's inbox/, or the database); \
                this waits at most --wait seconds for it to take them.
                """)
        @OptionGroup var location: StoreLocation
        @OptionGroup var api: APIOptions
        @Argument(help: "Job ids (default: every tracked job without a final state, tracked longer than --poll-after).") var jobIds: [String] = []
        @Option(help: "Seconds to wait for a running serve to take the final states found.") var wait = 10.0

        func run() async throws {
            let logger = Logger(label: "kliq-webhooks") { _ in SwiftLogNoOpLogHandler() }
            let client = try self.api.requireClient(logger: logger)
            try await PollingStore.with(self.location) { store in
                var ids = self.jobIds
                if ids.isEmpty {
                    let cutoff = Date().addingTimeInterval(-self.api.pollAfterSeconds)
                    for tracked in try await store.tracked() where tracked.trackedAt <= cutoff {
                        if try await store.storedStatus(tracked.jobId)?.isTerminal != true { ids.append(tracked.jobId) }
                    }
                    if ids.isEmpty {
                        print("no tracked job is overdue (tracked longer than \(self.api.pollAfter) without a final state)")
                        return
                    }
                }
                var pending: [(String, @Sendable () async -> Bool)] = []
                for jobId in ids {
                    let before = try await store.storedStatus(jobId)
                    switch await client.poll(jobId: jobId) {
                    case .finished(let event, let status):
                        pending.append((jobId, try await store.submit(event)))
                        print(before == status ? "\(jobId) unchanged" : "\(jobId) \(before?.rawValue ?? "none") → \(status)")
                    case .running(let status):
                        print(before == status ? "\(jobId) unchanged" : "\(jobId) \(before?.rawValue ?? "none") → \(status)")
                    case .notFound:
                        print("\(jobId) not found: KLIQ's API answered 404")
                    case .unauthorized(let error):
                        throw Failure("\(error.message): check KLIQ_API_KEY (or --kliq-api-key-file) and --kliq-tenant")
                    case .failed(let message):
                        print("\(jobId) error: \(message)")
                    }
                }
                guard !pending.isEmpty else { return }
                let deadline = Date().addingTimeInterval(self.wait)
                var waiting = pending
                while !waiting.isEmpty, Date() < deadline {
                    var still: [(String, @Sendable () async -> Bool)] = []
                    for item in waiting where !(await item.1()) { still.append(item) }
                    waiting = still
                    if !waiting.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
                }
                if !waiting.isEmpty {
                    print("\(waiting.count) final state\(waiting.count == 1 ? "" : "s") queued for serve, which has not taken \(waiting.count == 1 ? "it" : "them") yet (is it running on \(self.location.hint)?)")
                }
            }
        }
    }
}
