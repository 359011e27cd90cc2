import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Logging
import Testing

/// Retention: old events are forgotten, never those still owed to handlers, and never without a replay
/// window that refuses their replays.
struct RetentionTests {
    /// Backdates a file's modification time by `seconds`.
    func age(_ path: String, by seconds: Int) {
        var times = [timespec(tv_sec: time(nil) - seconds, tv_nsec: 0), timespec(tv_sec: time(nil) - seconds, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0, "\(path)")
    }

    @Test func oldEventsAreForgottenButNotThoseOwedToHandlers() async throws {
        let dir = TemporaryDirectory()
        let store = try FileEventStore(directory: dir.file("data"))
        for id in ["evt_old_plain", "evt_old_done", "evt_old_active", "evt_old_dead", "evt_new"] {
            let event = try Event(decoding: envelope(id: id))
            let handlers = id == "evt_old_plain" || id == "evt_new" ? [] : ["h"]
            #expect(try await store.accept(event, handlers: handlers).outcome == .accepted)
        }
        var done = try #require(try await store.deliveries(eventId: "evt_old_done"))
        done.recordSuccess(of: "h")
        done.revision += 1
        try await store.updateLedger(done)
        var dead = try #require(try await store.deliveries(eventId: "evt_old_dead"))
        dead.recordFailure(of: "h", error: "boom", at: Timestamp.now(), next: nil)
        dead.revision += 1
        try await store.updateLedger(dead)
        try await store.quarantine(body: Array("not json".utf8), reason: "test")
        for id in ["evt_old_plain", "evt_old_done", "evt_old_active", "evt_old_dead"] { self.age(dir.file("data/events/\(id).json"), by: 7200) }
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.file("data/quarantine")) { self.age(dir.file("data/quarantine/\(name)"), by: 7200) }

        let removed = try await store.prune(acceptedBefore: Date().addingTimeInterval(-3600))
        #expect(removed == 2)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.file("data/events")))
        #expect(left == ["evt_old_active.json", "evt_old_dead.json", "evt_new.json"])
        #expect(!FileManager.default.fileExists(atPath: dir.file("data/ledger/done/evt_old_done.json")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("data/quarantine")).isEmpty)
        #expect(try await store.job(id: "job_1") != nil, "job states are kept")
        // Forgotten: the id could be accepted again — which is why retention needs a replay window.
        #expect(try await store.commit(try Event(decoding: envelope(id: "evt_old_plain"))) == .accepted)
    }

    @Test func retentionNeedsAReplayWindowAtMostHalfAsLong() throws {
        let store = InMemoryEventStore()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        #expect(throws: WebhookError.self) { try RetentionService(store: store, retention: .seconds(7200), replayWindow: nil, logger: logger) }
        #expect(throws: WebhookError.self) { try RetentionService(store: store, retention: .seconds(7199), replayWindow: .seconds(3600), logger: logger) }
        _ = try RetentionService(store: store, retention: .seconds(7200), replayWindow: .seconds(3600), logger: logger)
    }

    /// The whole story: an event accepted, forgotten after retention, then replayed — refused by the window.
    @Test func aReplayAfterRetentionIsRefusedByTheWindow() async throws {
        let store = InMemoryEventStore()
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: store,
                                configuration: .init(replayWindow: .seconds(3600)), logger: quietLogger)
        let service = try RetentionService(store: store, retention: .seconds(7200), replayWindow: .seconds(3600), logger: quietLogger)
        let now = Timestamp.now()
        let body = envelope(id: "evt_replayed", timestamp: Timestamp(seconds: now.seconds - 60, nanoseconds: 0).rfc3339)
        #expect(try await receiver.receive(body: body, signature: signer.signature(for: body)).outcome == .accepted)
        // Inside retention: a replay is a duplicate.
        #expect(try await receiver.receive(body: body, signature: signer.signature(for: body)).outcome == .duplicate)
        // Three hours later the event is forgotten…
        #expect(try await service.pruneOnce(now: Date().addingTimeInterval(3 * 3600)) == 1)
        #expect(try await store.event(id: "evt_replayed") == nil)
        // …and a replay then is outside the window (its signed time is over an hour old by then): refused.
        #expect(Receiver.replayProblem(try Event(decoding: body), window: .seconds(3600),
                                       now: Timestamp(seconds: now.seconds + 3 * 3600, nanoseconds: 0)) != nil)
    }
}
