import ArgumentParser
import Foundation
import KliqWebhooks
import KliqWebhooksPostgres

/// `kliq-webhooks events`: see and re-drive the handler ledger of a data directory or database.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "See and re-drive handler deliveries (works while serve is running).",
        subcommands: [List.self, Show.self, Redeliver.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List events whose handler deliveries are unfinished (pending or retrying) or dead; with --accepted, every stored event.")
        @OptionGroup var location: StoreLocation
        @Flag(help: "Only events with a pending or retrying delivery.") var pending = false
        @Flag(help: "Only events with a dead delivery.") var dead = false
        @Flag(help: "Also events whose deliveries all succeeded.") var all = false
        @Flag(help: "Every stored event in the order it was accepted, a page at a time (see --after).") var accepted = false
        @Option(help: "With --accepted: start after this sequence number (the cursor the previous page printed).") var after: UInt64 = 0
        @Option(help: "With --accepted: only events of this type.") var type: String?
        @Option(help: "With --accepted: only events of this job.") var job: String?
        @Option(help: "With --accepted: at most this many events.") var limit = 50
        @Flag(help: "One JSON object a line.") var json = false

        func validate() throws {
            if !self.accepted, self.after != 0 || self.type != nil || self.job != nil {
                throw ValidationError("--after, --type and --job go with --accepted")
            }
            if self.accepted, self.pending || self.dead || self.all { throw ValidationError("--accepted lists every event; leave out --pending, --dead and --all") }
            guard self.limit > 0 else { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            try await self.location.withReader { directory in
                if self.accepted { return try await self.listAccepted(directory) }
                try await self.listDeliveries(directory)
            }
        }

        private func listDeliveries(_ directory: any StoreReader) async throws {
            var shelves: [LedgerEntry.Shelf] = self.pending ? [.active] : self.dead ? [.dead] : [.active, .dead]
            if self.all { shelves = [.active, .dead, .done] }
            var entries: [LedgerEntry] = []
            for shelf in shelves { entries += try await directory.ledgerEntries(on: shelf) }
            if self.json {
                for entry in entries { print(try Output.json(entry)) }
                return
            }
            guard !entries.isEmpty else {
                print("no \(self.dead ? "dead" : self.pending ? "pending" : "unfinished or dead") deliveries in \(directory.name)")
                return
            }
            let rows = entries.map { entry in
                [entry.eventId, entry.eventType, entry.jobId ?? "-", entry.acceptedAt,
                 entry.handlers.sorted { $0.key < $1.key }.map { "\($0.key): \(Output.describe($0.value))" }.joined(separator: "; ")]
            }
            print(Output.table(header: ["EVENT", "TYPE", "JOB", "ACCEPTED", "HANDLERS"], rows: rows))
        }
        private func listAccepted(_ directory: any StoreReader) async throws {
            let filter = EventFilter(type: self.type.map { EventType($0) }, jobId: self.job)
            guard let page = try await directory.acceptedEvents(after: self.after, matching: filter, limit: self.limit) else {
                throw Failure(
                    "\(directory.name) has no event index yet (written by 0.5.1): it is built when kliq-webhooks serve \(directory.hint) next starts")
            }
            let time = ISO8601DateFormatter()
            if self.json {
                for event in page.events {
                    let object: [String: Any] = ["sequence": event.sequence, "id": event.id, "type": event.type.rawValue,
                                                 "jobId": event.jobId ?? NSNull(), "acceptedAt": time.string(from: event.acceptedAt)]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
                }
            } else if page.events.isEmpty {
                print("no \(self.type.map { "\($0) " } ?? "")events\(self.job.map { " of job \($0)" } ?? "")\(self.after > 0 ? " after \(self.after)" : "")\(page.next == nil ? "" : " in this page") in \(directory.name)")
            } else {
                let rows = page.events.map { [String($0.sequence), $0.id, $0.type.rawValue, $0.jobId ?? "-", time.string(from: $0.acceptedAt)] }
                print(Output.table(header: ["SEQ", "EVENT", "TYPE", "JOB", "ACCEPTED"], rows: rows))
            }
            if let next = page.next {
                var command = "kliq-webhooks events list --accepted --after \(next)"
                if let type = self.type { command += " --type \(type)" }
                if let job = self.job { command += " --job \(job)" }
                if self.limit != 50 { command += " --limit \(self.limit)" }
                if self.json { command += " --json" }
                command += " " + directory.hint
                // On stderr with --json, so the output stays one object a line.
                let line = "more: \(command)\n"
                if self.json { FileHandle.standardError.write(Data(line.utf8)) } else { print(line, terminator: "") }
            }
        }
    }

    struct Show: AsyncParsableCommand {

        static let configuration = CommandConfiguration(abstract: "Show one event: envelope, job, and each handler's deliveries with errors.")
        @OptionGroup var location: StoreLocation
        @Argument(help: "The event id.") var eventId: String
        @Flag(help: "Print {\"event\": …, \"ledger\": …} as JSON.") var json = false

        func run() async throws {
            try await self.location.withReader { try await self.show($0) }
        }

        private func show(_ directory: any StoreReader) async throws {
            guard let body = try await directory.eventBody(id: self.eventId) else {
                throw Failure("no event \(self.eventId) in \(directory.name) (see: kliq-webhooks events list --accepted \(directory.hint))")
            }
            let entry = try await directory.ledgerEntry(eventId: self.eventId)
            if self.json {
                let ledger = try entry.map(Output.json) ?? "null"
                print("{\"event\":\(String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),\"ledger\":\(ledger)}")
                return
            }
            let event = try Event(decoding: body)
            print("event      \(event.id)")
            print("type       \(event.type)")
            print("tenant     \(event.tenantId ?? "-")")
            print("timestamp  \(event.timestamp ?? "-")")
            print("job        \(event.jobId ?? "-")")
            print("bytes      \(body.count)  (\(directory is DataDirectory ? "\(directory.name)/events/\(StorageName.fileName(for: event.id))" : directory.name))")
            guard let entry else {
                print("handlers   none registered when it was accepted")
                return
            }
            print("accepted   \(entry.acceptedAt)")
            for (name, state) in entry.handlers.sorted(by: { $0.key < $1.key }) {
                print("handler    \(name): \(Output.describe(state))")
                for failure in state.failures {
                    print("           attempt \(failure.attempt) at \(failure.at): \(failure.error)")
                }
            }
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-drive dead deliveries of one event (or, with --handler, that handler's), or every dead one with --dead.",
            discussion: """
                With serve running on the data directory, the request goes to it through the directory's inbox/ and \
                this waits until it was taken (at most --wait seconds). Otherwise the ledger is updated here and the \
                next serve start dispatches the deliveries.
                """
        )
        @OptionGroup var location: StoreLocation
        @Argument(help: "The event id.") var eventId: String?
        @Option(help: "Only this handler (even if it succeeded).") var handler: String?
        @Flag(help: "Every dead delivery.") var dead = false
        @Option(help: "Seconds to wait for a running serve to take the request.") var wait = 10.0

        func validate() throws {
            guard (self.eventId != nil) != self.dead else { throw ValidationError("give an event id, or --dead for every dead delivery") }
            if self.dead, self.handler != nil { throw ValidationError("--handler goes with an event id, not with --dead") }
        }

        func run() async throws {
            let filter: RedriveFilter = self.dead ? .allDead : .event(self.eventId ?? "", handler: self.handler)
            let follow = "kliq-webhooks events show \(self.eventId ?? "<id>") \(self.location.hint)"
            if let url = self.location.databaseText {
                // Every replica claims from the database: the change is all it takes.
                try await StoreLocation.withDatabase(url, schema: self.location.databaseSchema, migrating: false) { store in
                    if let eventId = self.eventId, try await store.deliveries(eventId: eventId) == nil {
                        throw Failure("event \(eventId) has no handler deliveries in schema \(store.schema) (see: kliq-webhooks events list \(self.location.hint))")
                    }
                    let count = try await store.redrive(filter)
                    print("\(count) event\(count == 1 ? "" : "s") re-driven; the running serve replicas dispatch them; follow it with: \(follow)")
                }
                return
            }
            let directory = DataDirectory(path: self.location.dataDir)
            guard directory.exists else {
                throw Failure("\(self.location.dataDir) is not a kliq-webhooks data directory (no events/ folder); pass --data-dir")
            }
            let request = RedriveRequest(eventId: self.eventId, handler: self.handler)
            if let eventId = self.eventId, directory.ledgerEntry(eventId: eventId) == nil {
                throw Failure("event \(eventId) has no handler deliveries in \(directory.path) (see: kliq-webhooks events list \(self.location.hint))")
            }
            if let owner = directory.owner {
                let name = try directory.submit(request)
                let deadline = Date.now.addingTimeInterval(self.wait)
                while directory.isWaiting(name), Date.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
                if directory.isWaiting(name) {
                    print("queued in \(directory.path)/inbox/\(name); serve (pid \(owner)) has not taken it yet")
                } else {
                    print("re-driven by the running serve (pid \(owner)); follow it with: \(follow)")
                }
                return
            }
            let store = try FileEventStore(directory: directory.path)
            let count = try await store.redrive(filter)
            print("\(count) event\(count == 1 ? "" : "s") re-driven; the next serve start on \(directory.path) dispatches them")
        }
    }
}

enum Output {
    static func describe(_ state: LedgerEntry.HandlerState) -> String {
        let attempts = "\(state.attempts) attempt\(state.attempts == 1 ? "" : "s")"
        switch state.status {
        case .retrying: return "retrying (\(attempts), next at \(state.nextAttemptAt ?? "?"))"
        case .pending: return state.attempts == 0 ? "pending" : "pending (\(attempts))"
        default: return "\(state.status.rawValue) (\(attempts))"
        }
    }

    static func json(_ entry: LedgerEntry) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(entry), as: UTF8.self)
    }

    static func table(header: [String], rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
