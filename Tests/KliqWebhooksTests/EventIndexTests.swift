#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

/// The file store's `index/`, which lists events by sequence number: what a crash can leave in it, and
/// how it is rebuilt when it is gone.
struct EventIndexTests {
    let dir = TemporaryDirectory()

    @Test func linesCutShortRepeatedOrWithdrawnAreReadOnceOrNotAtAll() {
        let text = "3 1000 evt_c.json\n1 1000 evt_a.json\n2 1000 evt_b.json\n3 1000 evt_c.json\n4 10"  // a torn tail
            + "\n5 1000 evt_e.json\n-2\n6 x evt_f.json\n7 1000\n"
        let entries = EventIndex.entries(of: Array(text.utf8))
        #expect(entries.map(\.sequence) == [1, 3, 5])
        #expect(entries.map(\.name) == ["evt_a.json", "evt_c.json", "evt_e.json"])
    }

    /// A line a crash cut short is ended before the next one is appended, so that one is read.
    @Test func anAppendAfterATornLineStartsOnItsOwnLine() async throws {
        do {
            let store = try FileEventStore(directory: self.dir.path)
            _ = try await store.commit(try Event(decoding: envelope(id: "evt_1", jobId: "job_1")))
            await store.close()
        }
        let bucket = self.dir.file("index/" + EventIndex.bucketName(of: 1))
        let handle = try #require(FileHandle(forWritingAtPath: bucket))
        handle.seekToEndOfFile()
        handle.write(Data("2 17".utf8))
        handle.closeFile()
        let store = try FileEventStore(directory: self.dir.path)
        _ = try await store.commit(try Event(decoding: envelope(id: "evt_3", jobId: "job_3")))
        let page = try await store.events(after: 0, matching: .all, limit: 10)
        #expect(page.events.map(\.id) == ["evt_1", "evt_3"], "\(String(decoding: self.dir.contents("index/" + EventIndex.bucketName(of: 1)) ?? [], as: UTF8.self))")
        #expect(page.events.map(\.sequence) == [1, 2], "the torn line's number was never handed out, so it is given again")
    }

    /// An index deleted (or never written) is rebuilt from `events/` at start, numbered after every
    /// sequence number already handed out, and new events come after it.
    @Test func aLostIndexIsRebuiltAtStart() async throws {
        do {
            let store = try FileEventStore(directory: self.dir.path)
            for n in 1...5 { _ = try await store.commit(try Event(decoding: envelope(id: "evt_\(n)", jobId: "job_\(n)"))) }
            await store.close()
        }
        try FileManager.default.removeItem(atPath: self.dir.file("index"))
        let store = try FileEventStore(directory: self.dir.path)
        let rebuilt = try await store.events(after: 0, matching: .all, limit: 10)
        #expect(Set(rebuilt.events.map(\.id)) == Set((1...5).map { "evt_\($0)" }))
        #expect(rebuilt.events.allSatisfy { $0.sequence > 5 }, "renumbered after the numbers already handed out")
        guard case .accepted(let next) = try await store.accept(try Event(decoding: envelope(id: "evt_6", jobId: "job_6")), handlers: []) else {
            Issue.record("not accepted")
            return
        }
        #expect(next > rebuilt.events.last!.sequence)
        #expect(self.dir.names("index").contains(EventIndex.marker))
    }

    /// A page looks at a bounded number of events: a filter that matches little returns short (even
    /// empty) pages with a cursor that moves on, and following it finds every match.
    @Test func aRareFilterPagesThroughInBoundedSteps() async throws {
        let store = try FileEventStore(directory: self.dir.path)
        for n in 1...2_500 {
            _ = try await store.commit(try Event(decoding: envelope(id: "evt_\(n)", type: n % 1000 == 0 ? "cv.job.failed" : "cv.job.completed", jobId: "job_\(n)")))
        }
        let first = try await store.events(after: 0, matching: EventFilter(type: .cvJobFailed), limit: 10)
        #expect(first.events.map(\.id) == ["evt_1000"], "looked at 1,000 events: up to evt_1000")
        #expect(first.next == 1000)
        var found = first.events.map(\.id)
        var cursor = first.next
        var pages = 1
        while let after = cursor {
            let page = try await store.events(after: after, matching: EventFilter(type: .cvJobFailed), limit: 10)
            found += page.events.map(\.id)
            cursor = page.next
            pages += 1
        }
        #expect(found == ["evt_1000", "evt_2000"])
        #expect(pages == 3)
    }
}
