import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Synchronization
import Testing

/// A data directory written by 0.5.1 — made by that release's own binary (`Fixtures/datadir-0.5.1/make.py`),
/// two dead `--forward` deliveries and three left pending by a SIGKILL, journal un-checkpointed — opens
/// unchanged: every old id is still a duplicate, bodies are byte for byte, pending deliveries continue,
/// dead ones can be re-driven, and every one reaches its handler signed (0.5.1 kept no signature, so
/// with the first configured secret).
struct UpgradeTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/datadir-0.5.1")
    static let secret = "whsec_fixture_051"
    static let dead = ["evt_up_dead_1", "evt_up_dead_2"]
    static let pending = ["evt_up_pending_1", "evt_up_pending_2", "evt up/unsafe:3"]

    let dir = TemporaryDirectory()

    /// A copy of the fixture's data directory (the fixture itself stays as 0.5.1 wrote it).
    func copy() throws -> String {
        let target = self.dir.file("kliq-data")
        try FileManager.default.copyItem(atPath: Self.fixture.appendingPathComponent("kliq-data").path, toPath: target)
        return target
    }

    /// The bodies the fixture's events were delivered with, by event id.
    func bodies() throws -> [String: [UInt8]] {
        var bodies: [String: [UInt8]] = [:]
        for index in 0..<5 {
            let body = try Array(Data(contentsOf: Self.fixture.appendingPathComponent("bodies/\(index).json")))
            bodies[try Event(decoding: body).id] = body
        }
        return bodies
    }

    @Test func theFixtureIsWhat051Left() throws {
        let data = Self.fixture.appendingPathComponent("kliq-data").path
        let names = { (sub: String) in ((try? FileManager.default.contentsOfDirectory(atPath: data + "/" + sub)) ?? []).sorted() }
        #expect(names("ledger/dead").count == 2)
        #expect(names("ledger/active").count == 3)
        #expect(!names("journal").isEmpty, "the SIGKILL left journal segments to replay")
        // 0.5.1 kept no signature with its ledger entries.
        for name in names("ledger/active") + names("ledger/dead") {
            let text = try String(contentsOfFile: data + "/ledger/" + (names("ledger/dead").contains(name) ? "dead/" : "active/") + name, encoding: .utf8)
            #expect(!text.contains("signature"))
        }
    }

    @Test func everyOldIdIsStillADuplicateAndEveryBodyIsByteForByte() async throws {
        let store = try FileEventStore(directory: try self.copy())
        let bodies = try self.bodies()
        #expect(bodies.count == 5)
        for (id, body) in bodies {
            #expect(try await store.event(id: id)?.rawBody == body, "\(id)")
            #expect(try await store.commit(try Event(decoding: body)) == .duplicate, "\(id)")
        }
        #expect(try await store.job(id: "job_up_1")?.status == .completed)
        #expect(try await store.job(id: "job_up_3")?.status == .failed)
        #expect(try await store.allDeliveries(on: .dead).map(\.eventId).sorted() == Self.dead)
        #expect(try await store.allDeliveries(on: .active).map(\.eventId).sorted() == Self.pending.sorted())
        // 0.5.1 kept no index: one is built at start, numbering the old events first.
        let listed = try await store.events(after: 0, matching: .all, limit: 100)
        #expect(Set(listed.events.map(\.id)) == Set(bodies.keys) && listed.events.count == 5 && listed.next == nil)
        let new = try Event(decoding: Array(#"{"id":"evt_up_new","type":"visit.submitted","data":{}}"#.utf8))
        guard case .accepted(let sequence) = try await store.accept(new, handlers: []) else { Issue.record("not accepted"); return }
        #expect(sequence > listed.events.map(\.sequence).max()!)
        #expect(try await store.events(after: listed.events.last!.sequence, matching: .all, limit: 10).events.map(\.id) == ["evt_up_new"])
    }

    @Test func pendingDeliveriesContinueAndDeadOnesAreRedrivenAllSigned() async throws {
        let store = try FileEventStore(directory: try self.copy())
        let bodies = try self.bodies()
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(Self.secret), Secret("whsec_older")]), store: store,
                                logger: quietLogger)
        let seen = Mutex<[String: String?]>([:])
        receiver.onAny(name: "forward#1") { event in seen.withLock { $0[event.id] = event.signature } }
        try await withRunningReceiver(receiver) { () async throws in
            #expect(try await eventually { seen.withLock { $0.count } == 3 })
            #expect(Set(seen.withLock { $0.keys }) == Set(Self.pending))
            #expect(try await receiver.redeliverDead() == 2)
            #expect(try await eventually { seen.withLock { $0.count } == 5 })
        }
        let only = try SignatureVerifier(secrets: [Secret(Self.secret)])
        for (id, signature) in seen.withLock({ $0 }) {
            let body = try #require(bodies[id])
            #expect(throws: Never.self, "\(id)") { try only.verify(signature: signature, body: body) }
        }
        #expect(try await store.allDeliveries(on: .active).isEmpty)
        #expect(try await store.allDeliveries(on: .dead).isEmpty)
        #expect(try await store.allDeliveries(on: .done).count == 5)
    }
}
