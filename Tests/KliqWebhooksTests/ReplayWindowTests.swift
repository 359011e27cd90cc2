import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

/// The optional replay window: measured on the event's own signed time, checked before anything is stored.
struct ReplayWindowTests {
    func receiver(window: Duration?) throws -> (Receiver, InMemoryEventStore) {
        let store = InMemoryEventStore()
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: store,
                                configuration: .init(replayWindow: window), logger: quietLogger)
        return (receiver, store)
    }

    /// An RFC 3339 time `offset` seconds from now.
    func time(_ offset: Int64) -> String {
        let now = Timestamp.now()
        return Timestamp(seconds: now.seconds + offset, nanoseconds: 0).rfc3339
    }

    @Test(arguments: [
        (Int64(0), true), (Int64(-3000), true), (Int64(3000), true),  // inside an hour, either way (clock skew)
        (Int64(-3700), false), (Int64(3700), false), (Int64(-86_400 * 30), false),
    ] as [(Int64, Bool)])
    func eventsInsideTheWindowPassAndOthersAreRefused(_ offset: Int64, _ inside: Bool) async throws {
        let (receiver, store) = try self.receiver(window: .seconds(3600))
        let body = envelope(id: "evt_w_\(offset)", timestamp: self.time(offset))
        if inside {
            #expect(try await receiver.receive(body: body, signature: signer.signature(for: body)).outcome == .accepted)
        } else {
            await #expect {
                _ = try await receiver.receive(body: body, signature: signer.signature(for: body))
            } throws: { error in
                let error = error as? WebhookError
                return error?.code == .outsideReplayWindow && error?.message.contains("replay window of 3600 s") == true
            }
            #expect(try await store.event(id: "evt_w_\(offset)") == nil, "nothing stored")
        }
    }

    @Test func aRetryInsideTheWindowIsStillADuplicate() async throws {
        let (receiver, _) = try self.receiver(window: .seconds(3600))
        let body = envelope(id: "evt_retry", timestamp: self.time(-60))
        #expect(try await receiver.receive(body: body, signature: signer.signature(for: body)).outcome == .accepted)
        #expect(try await receiver.receive(body: body, signature: signer.signature(for: body)).outcome == .duplicate)
    }

    @Test(arguments: [#"{"id":"evt_nots","type":"visit.submitted","data":{}}"#, #"{"id":"evt_badts","type":"visit.submitted","timestamp":"yesterday"}"#])
    func withTheWindowOnAnEventNeedsAReadableTimestamp(_ text: String) async throws {
        let (receiver, _) = try self.receiver(window: .seconds(3600))
        let body = Array(text.utf8)
        await #expect {
            _ = try await receiver.receive(body: body, signature: signer.signature(for: body))
        } throws: { ($0 as? WebhookError)?.code == .outsideReplayWindow }
    }

    @Test func offByDefault() async throws {
        let (receiver, _) = try self.receiver(window: nil)
        let old = envelope(id: "evt_old", timestamp: "2020-01-01T00:00:00Z")
        #expect(try await receiver.receive(body: old, signature: signer.signature(for: old)).outcome == .accepted)
        let none = Array(#"{"id":"evt_none","type":"visit.submitted"}"#.utf8)
        #expect(try await receiver.receive(body: none, signature: signer.signature(for: none)).outcome == .accepted)
    }

    @Test func aForgedSignatureIsStillRefusedFirst() async throws {
        let (receiver, _) = try self.receiver(window: .seconds(60))
        let old = envelope(id: "evt_forged", timestamp: "2020-01-01T00:00:00Z")
        await #expect {
            _ = try await receiver.receive(body: old, signature: String(repeating: "0", count: 64))
        } throws: { ($0 as? WebhookError)?.code == .invalidSignature }
    }
}
