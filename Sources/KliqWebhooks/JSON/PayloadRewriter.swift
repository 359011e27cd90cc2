/// Changes string fields of an envelope and its `data` by splicing bytes: everything else — order,
/// spacing, numbers, unknown fields — stays exactly as it was. For tests and tools that make many
/// deliveries from one payload (new event ids, other job ids, statuses, timestamps, models).
package enum PayloadRewriter {
    /// - Parameters:
    ///   - body: an envelope.
    ///   - envelope: top-level members to set (e.g. `id`, `timestamp`), as strings.
    ///   - data: members of `data` to set (e.g. `jobId`, `status`, `model`), as strings.
    /// - Throws: ``WebhookError`` `malformed_payload` when `body` is not a JSON object.
    package static func rewrite(_ body: [UInt8], envelope: [String: String] = [:], data: [String: String] = [:]) throws(WebhookError) -> [UInt8] {
        let reader = JSONReader(body)
        let top: [JSONReader.Member]
        do {
            top = try reader.members()
        } catch {
            throw WebhookError(.malformedPayload, "not a JSON object: \(error)")
        }
        var edits: [(Range<Int>, [UInt8])] = []
        func plan(_ members: [JSONReader.Member], _ changes: [String: String], insertAt: Int) {
            var missing = changes
            for member in members {
                guard let value = changes[member.key] else { continue }
                edits.append((member.value, JSONWriter.string(value)))
                missing[member.key] = nil
            }
            let added = missing.sorted { $0.key < $1.key }.map { JSONWriter.string($0.key) + [UInt8(ascii: ":")] + JSONWriter.string($0.value) }
            guard !added.isEmpty else { return }
            let separator: [UInt8] = members.isEmpty ? [] : [UInt8(ascii: ",")]
            edits.append((insertAt..<insertAt, Array(added.joined(separator: [UInt8(ascii: ",")])) + separator))
        }
        let open = body.firstIndex(of: UInt8(ascii: "{"))!
        plan(top, envelope, insertAt: open + 1)
        if !data.isEmpty {
            guard let range = top.first(where: { $0.key == "data" })?.value, let members = try? reader.members(of: range) else {
                throw WebhookError(.malformedPayload, "the envelope has no \"data\" object")
            }
            plan(members, data, insertAt: range.lowerBound + 1)
        }
        var out = body
        for (range, bytes) in edits.sorted(by: { $0.0.lowerBound > $1.0.lowerBound }) {
            out.replaceSubrange(range, with: bytes)
        }
        return out
    }
}
