import Foundation
import HTTPTypes
import Hummingbird
import KliqWebhooks
import Mustache
import NIOCore

/// The console's pages: server-rendered from ``ConsoleTemplates`` with the data of the admin API,
/// with a stylesheet and one small script from `/assets/` — no framework, no build step.
extension AdminAPI {
    static let library: MustacheLibrary = {
        let templates = [
            "layout": ConsoleTemplates.layout, "overview": ConsoleTemplates.overview, "events": ConsoleTemplates.events,
            "eventTable": ConsoleTemplates.eventTable, "event": ConsoleTemplates.event, "dead": ConsoleTemplates.dead,
            "jobs": ConsoleTemplates.jobs, "job": ConsoleTemplates.job, "signIn": ConsoleTemplates.signIn,
        ]
        return MustacheLibrary(templates: templates.mapValues { try! MustacheTemplate(string: $0) })
    }()

    /// The pages' policy: scripts, styles and requests only to the console itself.
    static let pagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func addPages<Context: RequestContext>(to router: Router<Context>) {
        router.get("assets/console.css") { _, _ in Self.asset(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        router.get("assets/console.js") { _, _ in Self.asset(ConsoleAssets.js, type: "text/javascript; charset=utf-8") }
        router.get("sign-in") { _, _ in self.page("Sign in", "signIn", [:]) }
        router.post("sign-in") { request, _ in try await self.signIn(request) }
        let pages = router.group().add(middleware: PageGuard<Context>(api: self))
        pages.get("/") { _, _ in
            let stats = try await self.stats()
            return self.page("Overview", "overview", [
                "accepted": stats.accepted, "duplicates": stats.duplicates, "pending": stats.pending, "retrying": stats.retrying, "dead": stats.dead,
                "refused": stats.refused.sorted { $0.key < $1.key }.map { ["code": $0.key, "count": $0.value] },
            ])
        }
        pages.get("events") { request, _ in try await self.eventsPage(request.uri.queryParameters) }
        pages.get("events/{id}") { _, context in try await self.eventPage(id: context.parameters.require("id")) }
        pages.get("dead") { request, _ in try await self.deadPage(request.uri.queryParameters) }
        pages.get("jobs") { request, _ in try await self.jobsPage(request.uri.queryParameters) }
        pages.get("jobs/{id}") { _, context in try await self.jobPage(id: context.parameters.require("id")) }
    }

    // MARK: - Pages

    func eventsPage(_ query: Parameters) async throws -> Response {
        let page = try await self.events(query, form: true)
        let state = query.get("state") ?? ""
        var values = Self.fields(query, ["type", "jobId", "since", "until"])
        values["states"] = [("", "any"), ("pending", "pending"), ("retrying", "retrying"), ("succeeded", "succeeded"), ("dead", "dead")].map {
            ["value": $0.0, "label": $0.1, "selected": $0.0 == state] as [String: Any]
        }
        values["items"] = page.items.map(Self.row)
        values["next"] = page.next.map { Self.link("/events", query, cursor: $0) }
        return self.page("Events", "events", values)
    }

    func eventPage(id: String) async throws -> Response {
        let detail = try await self.eventDetail(id: id)
        return self.page("Event \(id)", "event", [
            "id": detail.id, "idPath": Self.pathComponent(detail.id), "type": detail.type, "jobId": detail.jobId ?? "",
            "jobPath": detail.jobId.map(Self.pathComponent) ?? "", "acceptedAt": detail.acceptedAt ?? "", "sequence": detail.sequence.map(String.init) ?? "",
            "bytes": detail.bytes, "sha256": detail.sha256, "body": Self.pretty(detail.body),
            "handlers": detail.handlers.sorted { $0.key < $1.key }.map { name, handler in
                ["name": name, "state": handler.state, "attempts": handler.attempts.map { attempt in
                    ["at": attempt.at ?? "", "outcome": attempt.outcome, "error": attempt.error ?? "", "nextAttemptAt": attempt.nextAttemptAt ?? ""]
                }] as [String: Any]
            },
        ])
    }

    func deadPage(_ query: Parameters) async throws -> Response {
        var filter = EventFilter()
        filter.type = query.get("type").flatMap { $0.isEmpty ? nil : EventType($0) }
        filter.jobId = query.get("jobId").flatMap { $0.isEmpty ? nil : $0 }
        let ids = try await self.deadEvents(matching: filter)
        var items: [EventItem] = []
        for id in ids.prefix(200) {
            guard let entry = try await self.store.deliveries(eventId: id) else { continue }
            items.append(EventItem(id: id, sequence: entry.sequence, type: entry.eventType, jobId: entry.jobId, acceptedAt: entry.acceptedAt, handlers: Self.states(entry)))
        }
        let filterJSON = String(decoding: try Self.encoder.encode(RedriveRequest.Filter(type: filter.type?.rawValue, jobId: filter.jobId)), as: UTF8.self)
        var values = Self.fields(query, ["type", "jobId"])
        values["count"] = ids.count
        values["one"] = ids.count == 1
        values["filter"] = filterJSON
        values["items"] = items.map(Self.row)
        return self.page("Dead letters", "dead", values)
    }

    func jobsPage(_ query: Parameters) async throws -> Response {
        let page = try await self.jobs(query, form: true)
        var values = Self.fields(query, ["status", "model", "since"])
        values["items"] = page.items.map {
            ["id": $0.id, "idPath": Self.pathComponent($0.id), "status": $0.status, "model": $0.model ?? "", "updatedAt": $0.updatedAt ?? ""] as [String: Any]
        }
        values["next"] = page.next.map { Self.link("/jobs", query, cursor: $0) }
        return self.page("Jobs", "jobs", values)
    }

    func jobPage(id: String) async throws -> Response {
        guard let job = try await self.store.job(id: id) else { throw HTTPError(.notFound, message: "no job \(id)") }
        let raw = job.raw
        let detections = raw["result"]?["detections"]?.arrayValue ?? []
        var values: [String: Any] = [
            "id": job.id, "status": job.status.rawValue, "model": job.model?.rawValue ?? "", "observationId": job.observationId ?? "",
            "updatedAt": job.updatedAt ?? "", "source": raw["source"]?.stringValue ?? "",
            "error": raw["error"].map { Self.text($0) } ?? "",
            "hasDetections": !detections.isEmpty,
            "detections": detections.map { detection -> [String: Any] in
                let box = detection["boundingBox"]
                let numbers = ["x", "y", "width", "height"].map { box?[$0]?.doubleValue.map { Self.number($0) } ?? "?" }
                return ["objectName": detection["objectName"]?.stringValue ?? "", "confidence": detection["confidence"]?.doubleValue.map { Self.number($0) } ?? "",
                        "box": numbers.joined(separator: ", "), "attributes": detection["attributes"].map { Self.text($0) } ?? ""]
            },
            "summary": raw["result"]?["summary"].map { Self.text($0, pretty: true) } ?? "",
        ]
        // The boxes over the frame they span (the frame's own size is not in the payload).
        let boxes = detections.compactMap { detection -> [String: Any]? in
            guard let box = detection["boundingBox"], let x = box["x"]?.doubleValue, let y = box["y"]?.doubleValue,
                let w = box["width"]?.doubleValue, let h = box["height"]?.doubleValue, w >= 0, h >= 0
            else { return nil }
            return ["x": Self.number(x), "y": Self.number(y), "w": Self.number(w), "h": Self.number(h), "labelY": Self.number(max(y - 4, 14)),
                    "objectName": detection["objectName"]?.stringValue ?? "", "right": x + w, "bottom": y + h]
        }
        if !boxes.isEmpty {
            let width = (boxes.compactMap { $0["right"] as? Double }.max() ?? 1) * 1.02
            let height = (boxes.compactMap { $0["bottom"] as? Double }.max() ?? 1) * 1.02
            values["frame"] = ["width": Self.number(width.rounded(.up)), "height": Self.number(height.rounded(.up)), "count": boxes.count, "boxes": boxes] as [String: Any]
        }
        let events = try await self.store.events(after: 0, matching: EventFilter(jobId: job.id), limit: 200)
        var items: [EventItem] = []
        for summary in events.events {
            items.append(EventItem(id: summary.id, sequence: summary.sequence, type: summary.type.rawValue, jobId: summary.jobId,
                                   acceptedAt: Self.rfc3339(summary.acceptedAt), handlers: Self.states(try await self.store.deliveries(eventId: summary.id))))
        }
        values["items"] = items.map(Self.row)
        return self.page("Job \(job.id)", "job", values)
    }

    func signIn(_ request: Request) async throws -> Response {
        guard let token = self.token else { return Self.redirect("/") }
        if let origin = request.headers[.origin], origin != "http://\(request.head.authority ?? "")" {
            return Self.error(.forbidden, code: "cross_origin", "a sign-in from \(origin) is not taken")
        }
        let body = String(buffer: try await request.body.collect(upTo: 16 * 1024))
        let given = body.split(separator: "&").compactMap { pair -> String? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0] == "token" else { return nil }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }.first ?? ""
        guard token.matches(Substring(given)) else {
            var response = self.page("Sign in", "signIn", ["failed": true])
            response.status = .unauthorized
            return response
        }
        var response = Self.redirect("/")
        response.headers[.setCookie] = "\(PageGuard<BasicRequestContext>.cookie)=\(self.session.text); Path=/; HttpOnly; SameSite=Strict"
        return response
    }

    // MARK: - Rendering

    func page(_ title: String, _ template: String, _ values: [String: Any]) -> Response {
        let content = Self.library.render(Self.present(values), withTemplate: template) ?? ""
        let html = Self.library.render(["title": title, "csrf": self.csrfToken.text, "content": content], withTemplate: "layout") ?? ""
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.pagePolicy]
        for field in AdminGuard<BasicRequestContext>.securityHeaders where field.name != .contentSecurityPolicy { headers.append(field) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache", HTTPField.Name("X-Content-Type-Options")!: "nosniff"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// `values` without its empty strings, at every depth: Mustache renders a `{{#name}}` section for
    /// any string, the empty one too.
    static func present(_ value: Any) -> Any {
        switch value {
        case let dictionary as [String: Any]:
            return dictionary.compactMapValues { member -> Any? in
                if let text = member as? String, text.isEmpty { return nil }
                return self.present(member)
            }
        case let array as [[String: Any]]: return array.map { self.present($0) }
        default: return value
        }
    }

    static func row(_ item: EventItem) -> [String: Any] {
        ["sequence": item.sequence.map(String.init) ?? "", "id": item.id, "idPath": self.pathComponent(item.id), "type": item.type,
         "jobId": item.jobId ?? "", "jobPath": item.jobId.map(self.pathComponent) ?? "", "acceptedAt": item.acceptedAt,
         "handlers": item.handlers.sorted { $0.key < $1.key }.map { ["name": $0.key, "state": $0.value] }]
    }

    /// The filter fields of a list page, as given.
    static func fields(_ query: Parameters, _ names: [String]) -> [String: Any] {
        Dictionary(uniqueKeysWithValues: names.map { ($0, query.get($0) ?? "") })
    }

    /// The same list with `cursor` set.
    static func link(_ path: String, _ query: Parameters, cursor: String) -> String {
        var items = URLComponents()
        items.queryItems = query.filter { $0.key != "cursor" }.map { URLQueryItem(name: String($0.key), value: String($0.value)) }
            + [URLQueryItem(name: "cursor", value: cursor)]
        return path + "?" + (items.percentEncodedQuery ?? "")
    }

    static func pathComponent(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// A body shown pretty-printed when it is JSON (the bytes, count and digest are the stored ones).
    static func pretty(_ body: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return body }
        return String(decoding: data, as: UTF8.self)
    }

    static func text(_ value: JSONValue, pretty: Bool = false) -> String {
        let data = (try? Self.encoder.encode(AnyJSON(value: value))) ?? Data()
        return pretty ? self.pretty(String(decoding: data, as: UTF8.self)) : String(decoding: data, as: UTF8.self)
    }
}

/// Pages need the sign-in cookie when the console has a token (else they send you to `/sign-in`).
struct PageGuard<Context: RequestContext>: RouterMiddleware {
    static var cookie: String { "kliq_console" }
    let api: AdminAPI

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard self.api.token == nil || self.api.signedIn(request) else { return AdminAPI.redirect("/sign-in") }
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let html = "<!doctype html><title>\(error.status.code)</title><p>\(Self.escape(error.body ?? error.status.reasonPhrase))</p><p><a href=\"/\">Overview</a></p>"
            var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: AdminAPI.pagePolicy]
            headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
            return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}

extension AdminAPI {
    /// Whether `request` carries this process's sign-in cookie.
    func signedIn(_ request: Request) -> Bool {
        for field in request.headers[values: .cookie] {
            for pair in field.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("\(PageGuard<BasicRequestContext>.cookie)="), self.session.matches(trimmed.dropFirst(PageGuard<BasicRequestContext>.cookie.count + 1)) {
                    return true
                }
            }
        }
        return false
    }
}
