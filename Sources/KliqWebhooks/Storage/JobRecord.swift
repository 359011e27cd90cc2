/// The `jobs/<jobId>.json` document built from a `cv.job.*` event, in the shape of KLIQ's
/// `GET /cv/jobs/{id}` plus `eventId` and `updatedAt`, and the order that decides which of two
/// states for one job is kept.
///
/// Values are spliced from the event's raw bytes (`result`, `error`, ids), never re-encoded, so numbers
/// and unknown fields inside them are exactly as KLIQ sent them.
package struct JobRecord: Sendable {
    /// Which of two states for one job wins: the later timestamp; at equal times, the further
    /// lifecycle step; then the greater event id. A total order, so the kept state does not depend on
    /// the order in which deliveries arrive. A state without a readable timestamp loses to any dated one.
    package struct Order: Comparable, Sendable {
        var instant: Timestamp?
        var rank: Int
        var eventId: String

        /// A byte string that sorts as the orders do.
        package var key: [UInt8] {
            let rank = UInt8(clamping: self.rank)
            let id = Array(self.eventId.utf8)
            guard let instant = self.instant else { return [0, rank] + id }
            return [1] + instant.sortKey + [rank] + id
        }

        package static func < (lhs: Self, rhs: Self) -> Bool {
            switch (lhs.instant, rhs.instant) {
            case (nil, .some): return true
            case (.some, nil): return false
            case (.some(let l), .some(let r)) where l != r: return l < r
            default:
                if lhs.rank != rhs.rank { return lhs.rank < rhs.rank }
                return lhs.eventId.utf8.lexicographicallyPrecedes(rhs.eventId.utf8)
            }
        }
    }

    package var jobId: String
    package var status: JobStatus
    /// Whether the polling fallback found this state (the document says `"source":"poll"`).
    package var fromPoll: Bool
    var order: Order
    package var bytes: [UInt8]

    /// A byte string that sorts as ``Order`` does (for a database's comparison of two job states).
    package var orderKey: [UInt8] { self.order.key }

    /// The record for `event`, or `nil` when it is not a CV-job event with a string `data.jobId`.
    package init?(event: Event) {
        guard event.type.isCVJob else { return nil }
        let data = event.dataMembers
        let reader = JSONReader(event.rawBody)
        guard let jobRange = data["jobId"], let jobId = reader.string(at: jobRange), !jobId.isEmpty else { return nil }
        func raw(_ range: Range<Int>?) -> [UInt8]? { range.map { Array(event.rawBody[$0]) } }

        let sentStatus = data["status"].flatMap(reader.string(at:))
        let status = JobStatus(sentStatus ?? String(event.type.rawValue.dropFirst("cv.job.".count)))
        var members: [(String, [UInt8])] = [("id", raw(jobRange)!)]
        members.append(("status", sentStatus != nil ? raw(data["status"])! : JSONWriter.string(status.rawValue)))
        for key in ["model", "observationId"] {
            if let value = raw(data[key]) { members.append((key, value)) }
        }
        if let tenant = raw(event.envelope["tenantId"]) { members.append(("tenantId", tenant)) }
        if status == .completed, let result = raw(data["result"]) { members.append(("result", result)) }
        if status != .completed, let error = raw(data["error"]) { members.append(("error", error)) }
        members.append(("eventId", raw(event.envelope["id"])!))
        members.append(("updatedAt", raw(event.envelope["timestamp"]) ?? Array("null".utf8)))
        let fromPoll = event.isPolled
        if fromPoll { members.append(("source", JSONWriter.string(Event.pollSource))) }

        self.jobId = jobId
        self.status = status
        self.fromPoll = fromPoll
        self.order = Order(instant: event.instant, rank: status.rank, eventId: event.id)
        self.bytes = JSONWriter.object(members)
    }

    /// The order of a stored job document; `nil` when it cannot be read (then any new state replaces it).
    package static func order(ofStored bytes: [UInt8]) -> Order? {
        let reader = JSONReader(bytes)
        guard let members = try? reader.members() else { return nil }
        var fields: [String: Range<Int>] = [:]
        for member in members { fields[member.key] = member.value }
        guard let eventId = fields["eventId"].flatMap(reader.string(at:)) else { return nil }
        let status = JobStatus(fields["status"].flatMap(reader.string(at:)) ?? "")
        let instant = fields["updatedAt"].flatMap(reader.string(at:)).flatMap(Timestamp.init(rfc3339:))
        return Order(instant: instant, rank: status.rank, eventId: eventId)
    }

    /// Whether this state is a job's final state arriving a second time, from the other source: the
    /// state stored (`stored`, `storedFromPoll`) is already terminal, and exactly one of the two was
    /// found by polling. Such an event is stored, but gets no handler deliveries (see ``EventStore``).
    package func repeatsFinalState(stored: JobStatus, storedFromPoll: Bool) -> Bool {
        self.status.isTerminal && stored.isTerminal && storedFromPoll != self.fromPoll
    }

    /// The status of a stored job document, and whether polling found it; `nil` when unreadable.
    package static func finalState(ofStored bytes: [UInt8]) -> (status: JobStatus, fromPoll: Bool)? {
        let reader = JSONReader(bytes)
        guard let members = try? reader.members() else { return nil }
        var status: JobStatus?
        var fromPoll = false
        for member in members {
            if member.key == "status" { status = reader.string(at: member.value).map { JobStatus($0) } }
            if member.key == "source" { fromPoll = reader.string(at: member.value) == Event.pollSource }
        }
        return status.map { ($0, fromPoll) }
    }
}
