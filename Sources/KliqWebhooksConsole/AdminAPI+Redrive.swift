import Foundation
import HTTPTypes
import Hummingbird
import KliqWebhooks
import NIOCore

/// `POST /api/redrive`'s body: which dead events to re-drive, and how many the operator was shown.
struct RedriveRequest: Codable, Sendable {
    struct Filter: Codable, Sendable {
        var type: String?
        var jobId: String?
        var since: String?
        var until: String?

        init(type: String? = nil, jobId: String? = nil, since: String? = nil, until: String? = nil) {
            (self.type, self.jobId, self.since, self.until) = (type, jobId, since, until)
        }

        /// Strict, as the OpenAPI document says: a key that is there holds a string (`null` is refused).
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func string(_ key: CodingKeys) throws -> String? { container.contains(key) ? try container.decode(String.self, forKey: key) : nil }
            self.init(type: try string(.type), jobId: try string(.jobId), since: try string(.since), until: try string(.until))
        }
    }

    var filter: Filter?
    /// The count the operator confirmed; the request is refused (409) when it no longer matches.
    var expected: Int

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.filter = container.contains(.filter) ? try container.decode(Filter.self, forKey: .filter) : nil
        self.expected = try container.decode(Int.self, forKey: .expected)
        guard self.expected >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .expected, in: container, debugDescription: "expected is a count, 0 or more")
        }
    }
}

struct RedriveResponse: Codable, Sendable {
    /// Events whose dead deliveries are pending again.
    var redriven: Int
}

/// `409`: the filter now matches another number of events than the operator confirmed.
struct CountChanged: Codable, Sendable {
    var error = "count_changed"
    var message: String
    var count: Int
}

extension AdminAPI {
    /// Adds the state-changing requests, each needing the CSRF token (`X-CSRF-Token`) and, when the
    /// browser sends one, an `Origin` that is the console's own.
    func addRedriveRoutes<Context: RequestContext>(to guarded: RouterGroup<Context>) {
        guarded.post("events/{id}/redrive") { _, context in try await self.redrive(id: context.parameters.require("id")) }
        guarded.post("redrive") { request, context in try await self.redrive(request, context: context) }
    }

    func redrive(id: String) async throws -> Response {
        guard try await self.store.event(id: id) != nil else { throw HTTPError(.notFound, message: "no event \(id)") }
        let redriven = try await self.receiver.redeliver(eventId: id)
        return try Self.json(RedriveResponse(redriven: redriven ? 1 : 0))
    }

    func redrive<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        let redrive: RedriveRequest
        do {
            redrive = try JSONDecoder().decode(RedriveRequest.self, from: Data(body.readableBytesView))
        } catch {
            throw Self.badRequest("the body is {\"filter\": {\"type\", \"jobId\", \"since\", \"until\"}, \"expected\": N}")
        }
        var filter = EventFilter()
        filter.type = redrive.filter?.type.flatMap { $0.isEmpty ? nil : EventType($0) }
        filter.jobId = redrive.filter?.jobId.flatMap { $0.isEmpty ? nil : $0 }
        for (name, text, keyPath) in [("since", redrive.filter?.since, \EventFilter.since), ("until", redrive.filter?.until, \EventFilter.until)] {
            guard let text else { continue }
            guard let date = Self.date(text) else { throw Self.badRequest("\(name) is an RFC 3339 time like 2026-04-28T12:00:00Z, not '\(text)'") }
            filter[keyPath: keyPath] = date
        }
        let ids = try await self.deadEvents(matching: filter)
        guard ids.count == redrive.expected else {
            let body = try Self.encoder.encode(CountChanged(
                message: "the filter now matches \(ids.count) dead events, not the \(redrive.expected) confirmed: nothing was re-driven", count: ids.count))
            return Response(status: .conflict, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        var redriven = 0
        for id in ids where try await self.receiver.redeliver(eventId: id) { redriven += 1 }
        return try Self.json(RedriveResponse(redriven: redriven))
    }

    /// Every event with a dead delivery that `filter` matches (the dead shelf, read whole).
    func deadEvents(matching filter: EventFilter) async throws -> [String] {
        var ids: [String] = []
        var cursor: String?
        repeat {
            let entries = try await self.store.deliveries(on: .dead, after: cursor, limit: 500)
            for entry in entries where entry.isDead {
                let summary = EventSummary(sequence: entry.sequence ?? 0, id: entry.eventId, type: EventType(entry.eventType),
                                           jobId: entry.jobId, acceptedAt: Self.date(entry.acceptedAt) ?? .distantPast)
                if filter.matches(summary) { ids.append(entry.eventId) }
            }
            cursor = entries.count == 500 ? entries.last?.eventId : nil
        } while cursor != nil
        return ids
    }
}

/// State-changing requests need the console's CSRF token in `X-CSRF-Token`, and a browser's `Origin`
/// must be the console's own (`http://` + the request's `Host`): otherwise `403`, nothing changed.
struct CSRFGuard<Context: RequestContext>: RouterMiddleware {
    let token: AdminToken

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let origin = request.headers[.origin], origin != "http://\(request.head.authority ?? "")" {
            return AdminAPI.error(.forbidden, code: "cross_origin", "a request from \(origin) may not change what this console holds")
        }
        guard let given = request.headers[HTTPField.Name("X-CSRF-Token")!], self.token.matches(Substring(given)) else {
            return AdminAPI.error(.forbidden, code: "csrf", "this request needs the console's X-CSRF-Token (every GET /api/ answer carries it)")
        }
        return try await next(request, context)
    }
}
