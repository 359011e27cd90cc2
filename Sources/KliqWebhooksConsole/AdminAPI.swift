import Foundation
import HTTPTypes
import Hummingbird
import KliqWebhooks
import NIOCore

/// The operator console: its pages (`/`, `/events`, `/dead`, `/jobs`, …) and its JSON API (`/api/…`,
/// described by `/api/openapi.json`), read through the store protocol only, so it works on every store. Mount it on a listener of its own — `serve` uses
/// `--admin-host`/`--admin-port`, loopback by default — never on the public webhook listener.
///
/// ```swift
/// let router = Router()
/// AdminAPI(receiver: receiver, token: adminToken).addRoutes(to: router)
/// ```
public struct AdminAPI: Sendable {
    /// Scanning budget of one list request, in stored entries read, when a filter has to skip entries
    /// (`state`, jobs' `status`/`model`/`since`): a page may come back short, with a cursor to go on.
    static let scanBudget = 5_000

    let receiver: Receiver
    let token: AdminToken?
    /// This process's CSRF token: sent with every `GET /api/` answer (`X-CSRF-Token`) and the pages,
    /// required back on every state-changing request. A page of another origin cannot read it.
    let csrfToken: AdminToken
    /// The value of the sign-in cookie of this process (pages, when the console has a token).
    let session: AdminToken

    /// - Parameters:
    ///   - receiver: the receiver whose store and counters the API shows.
    ///   - token: when set, every request needs `Authorization: Bearer TOKEN`.
    public init(receiver: Receiver, token: AdminToken?) {
        self.receiver = receiver
        self.token = token
        self.csrfToken = .random()
        self.session = .random()
    }

    var store: any EventStore { self.receiver.store }

    /// Adds `GET /api/openapi.json`, `/api/stats`, `/api/events`, `/api/events/{id}`, `/api/jobs`,
    /// `/api/jobs/{id}`, and `POST /api/events/{id}/redrive`, `/api/redrive` to `router`, behind the
    /// token check, the CSRF and origin checks for the POSTs, and the console's security headers.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        let guarded = AdminGuard<Context>(api: self)
        // The POSTs in a group of their own: a group's middleware applies to every route added after it.
        self.addRedriveRoutes(to: router.group("api").add(middleware: guarded).add(middleware: CSRFGuard<Context>(token: self.csrfToken)))
        let api = router.group("api").add(middleware: guarded)
        api.get("openapi.json") { _, _ in Self.json(bytes: Array(OpenAPIDocument.text.utf8)) }
        api.get("stats") { _, _ in try await Self.json(self.stats()) }
        api.get("events") { request, _ in try await Self.json(self.events(request.uri.queryParameters)) }
        api.get("events/{id}") { _, context in try await self.event(id: context.parameters.require("id")) }
        api.get("jobs") { request, _ in try await Self.json(self.jobs(request.uri.queryParameters)) }
        api.get("jobs/{id}") { _, context in try await self.job(id: context.parameters.require("id")) }
        self.addPages(to: router)
    }

    // MARK: - Handlers

    func stats() async throws -> StatsResponse {
        let intake = self.receiver.intake
        var counts: [LedgerEntry.HandlerState.Status: Int] = [:]
        for shelf in [LedgerEntry.Shelf.active, .dead] {
            var cursor: String?
            repeat {
                let entries = try await self.store.deliveries(on: shelf, after: cursor, limit: 500)
                for entry in entries { for state in entry.handlers.values { counts[state.status, default: 0] += 1 } }
                cursor = entries.count == 500 ? entries.last?.eventId : nil
            } while cursor != nil
        }
        return StatsResponse(accepted: intake.accepted, duplicates: intake.duplicates, refused: intake.refused,
                             pending: counts[.pending] ?? 0, retrying: counts[.retrying] ?? 0, dead: counts[.dead] ?? 0)
    }

    /// - Parameter form: the query comes from a page's filter form: empty fields mean "any".
    func events(_ query: Parameters, form: Bool = false) async throws -> Page<EventItem> {
        let limit = try Self.limit(query)
        var filter = EventFilter()
        filter.type = query.get("type").flatMap { $0.isEmpty ? nil : EventType($0) }
        filter.jobId = query.get("jobId").flatMap { $0.isEmpty ? nil : $0 }
        filter.since = try Self.time(query, "since", form: form)
        filter.until = try Self.time(query, "until", form: form)
        let cursor = query.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
        if let state = query.get("state"), !(state.isEmpty && form) {
            guard let status = LedgerEntry.HandlerState.Status(rawValue: state) else {
                throw Self.badRequest("state is pending, retrying, succeeded or dead, not '\(state)'")
            }
            return try await self.events(in: status, filter: filter, after: cursor, limit: limit)
        }
        var after: UInt64 = 0
        if let cursor {
            guard let number = UInt64(cursor) else { throw Self.badRequest("cursor '\(cursor)' is not one this API gave") }
            after = number
        }
        let page = try await self.store.events(after: after, matching: filter, limit: limit)
        var items: [EventItem] = []
        for summary in page.events {
            let ledger = try await self.store.deliveries(eventId: summary.id)
            items.append(EventItem(id: summary.id, sequence: summary.sequence, type: summary.type.rawValue, jobId: summary.jobId,
                                   acceptedAt: Self.rfc3339(summary.acceptedAt), handlers: Self.states(ledger)))
        }
        return Page(items: items, next: page.next.map(String.init))
    }

    /// Events with a handler in `status`, from the shelf that holds them (`active` for pending and
    /// retrying, `done` for succeeded, `dead`), filtered as they are read.
    func events(in status: LedgerEntry.HandlerState.Status, filter: EventFilter, after start: String?, limit: Int) async throws -> Page<EventItem> {
        let shelf: LedgerEntry.Shelf = switch status {
        case .pending, .retrying: .active
        case .succeeded: .done
        case .dead: .dead
        }
        // Whole store pages only (their cursors are the store's own): the first page with a match ends
        // the answer, so a page holds at most `limit` items and may be short.
        var cursor = start
        var read = 0
        repeat {
            let entries = try await self.store.deliveries(on: shelf, after: cursor, limit: limit)
            read += entries.count
            let next = entries.count == limit ? entries.last?.eventId : nil
            let items = entries.filter { entry in
                entry.handlers.values.contains { $0.status == status }
                    && filter.matches(EventSummary(sequence: entry.sequence ?? 0, id: entry.eventId, type: EventType(entry.eventType),
                                                   jobId: entry.jobId, acceptedAt: Self.date(entry.acceptedAt) ?? .distantPast))
            }.map { entry in
                EventItem(id: entry.eventId, sequence: entry.sequence, type: entry.eventType, jobId: entry.jobId,
                          acceptedAt: entry.acceptedAt, handlers: Self.states(entry))
            }
            if !items.isEmpty || next == nil { return Page(items: items, next: next) }
            cursor = next
        } while read < Self.scanBudget
        return Page(items: [], next: cursor)
    }

    func event(id: String) async throws -> Response { try await Self.json(self.eventDetail(id: id)) }

    func eventDetail(id: String) async throws -> EventDetail {
        guard let event = try await self.store.event(id: id) else {
            throw HTTPError(.notFound, message: "no event \(id)")
        }
        let ledger = try await self.store.deliveries(eventId: id)
        let digest = KliqWebhooks.Crypto.sha256(event.rawBody).map { String(format: "%02x", $0) }.joined()
        var handlers: [String: HandlerDetail] = [:]
        for (name, state) in ledger?.handlers ?? [:] { handlers[name] = HandlerDetail(state: state.status.rawValue, attempts: state.timeline) }
        return EventDetail(
            id: event.id, sequence: ledger?.sequence, type: event.type.rawValue, jobId: event.jobId, acceptedAt: ledger?.acceptedAt,
            body: String(decoding: event.rawBody, as: UTF8.self), bytes: event.rawBody.count, sha256: digest, handlers: handlers)
    }

    func jobs(_ query: Parameters, form: Bool = false) async throws -> Page<JobItem> {
        let limit = try Self.limit(query)
        let status = query.get("status").flatMap { $0.isEmpty ? nil : $0 }
        let model = query.get("model").flatMap { $0.isEmpty ? nil : $0 }
        let since = try Self.time(query, "since", form: form)
        var cursor = query.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
        var read = 0
        repeat {
            let page = try await self.store.jobs(after: cursor, limit: limit)
            read += page.jobs.count
            let items = page.jobs.filter { job in
                (status.map { job.status.rawValue == $0 } ?? true) && (model.map { job.model?.rawValue == $0 } ?? true)
                    && (since.map { (job.updatedAt.flatMap(Self.date) ?? .distantPast) >= $0 } ?? true)
            }.map { JobItem(id: $0.id, status: $0.status.rawValue, model: $0.model?.rawValue, updatedAt: $0.updatedAt, eventId: $0.eventId) }
            if !items.isEmpty || page.next == nil { return Page(items: items, next: page.next) }
            cursor = page.next
        } while read < Self.scanBudget
        return Page(items: [], next: cursor)
    }

    func job(id: String) async throws -> Response {
        guard let job = try await self.store.job(id: id) else {
            throw HTTPError(.notFound, message: "no job \(id)")
        }
        return try Self.json(AnyJSON(value: job.raw))
    }
}
