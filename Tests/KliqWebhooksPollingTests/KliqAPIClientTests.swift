import Foundation
import KliqWebhooks
import KliqWebhooksHummingbirdTesting
@testable import KliqWebhooksPolling
import Testing

@Suite("KLIQ API client against the stub API")
struct KliqAPIClientTests {
    @Test func readsStartsAndListsJobsWithTheBearerKey() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        api.setJob("job_1", status: .completed, detections: 3, completedAt: "2026-04-28T12:00:00Z")
        let kliq = client(api)
        let job = try await kliq.job(id: "job_1")
        #expect(job.id == "job_1" && job.status == .completed)
        let started = try await kliq.startJob(observationId: "obs_9", model: "shelf-detection-v2")
        #expect(started.status == .queued && started.id.hasPrefix("job_stub"))
        for n in 2...5 { api.setJob("job_\(n)", status: .processing) }
        var ids: [String] = []
        var cursor: String?
        repeat {
            let page = try await kliq.jobs(cursor: cursor, limit: 2)
            #expect(page.jobs.count <= 2)
            ids += page.jobs.map(\.id)
            cursor = page.next
        } while cursor != nil
        #expect(ids.sorted() == (["job_1", "job_2", "job_3", "job_4", "job_5", started.id]).sorted())
        #expect(api.requests.allSatisfy { $0.authorization == "Bearer \(apiKey)" })
    }

    @Test func retriesServerErrorsAndGivesUpWithACode() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        api.setJob("job_1", status: .processing)
        api.fail(.init(status: 502, times: 2))
        #expect(try await client(api).job(id: "job_1").status == .processing)
        #expect(api.requests.map(\.status) == [502, 502, 200])

        api.fail(.init(status: 500, times: 5))
        let error = await #expect(throws: KliqAPIError.self) { try await client(api).job(id: "job_1") }
        #expect(error?.code == .serverError && error?.status == 500)
        #expect(api.requests.count == 6, "three attempts, then the error")
    }

    @Test func obeysRetryAfterForEveryRequest() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        api.setJob("job_1", status: .processing)
        api.fail(.init(status: 429, retryAfter: "1"))
        let kliq = client(api)
        let started = ContinuousClock.now
        async let first = kliq.job(id: "job_1")
        // A second request of the same client, made once the client has the 429 (during the pause), waits too.
        try await eventually("the 429") { api.requests.count == 1 && kliq.pacer.isPaused }
        async let second = kliq.job(id: "job_1")
        _ = try await (first, second)
        let times = api.requests.map(\.at)
        #expect(api.requests.map(\.status) == [429, 200, 200])
        #expect(times[1] - times[0] >= .milliseconds(950) && times[2] - times[0] >= .milliseconds(950), "\(times.map { $0 - started })")
    }

    @Test func refusalsAreNotRetriedAndNeverShowTheKey() async throws {
        let api = try await StubKliqAPI.start(apiKey: "another_key")
        defer { api.stop() }
        let error = await #expect(throws: KliqAPIError.self) { try await client(api).job(id: "job_1") }
        #expect(error?.code == .unauthorized && error?.isAuthorizationFailure == true)
        #expect(api.requests.count == 1)
        #expect(!"\(String(describing: error))".contains(apiKey))

        let right = try await StubKliqAPI.start(apiKey: apiKey)
        defer { right.stop() }
        let missing = await #expect(throws: KliqAPIError.self) { try await client(right).job(id: "job_nope") }
        #expect(missing?.code == .notFound && right.requests.count == 1)
        #expect("\(APIKey(apiKey))" == "APIKey(redacted)")
    }

    @Test func aSlowAPITimesOut() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        api.setJob("job_1", status: .processing)
        api.setLatency(.milliseconds(800))
        let error = await #expect(throws: KliqAPIError.self) { try await client(api, timeout: .milliseconds(200), attempts: 2).job(id: "job_1") }
        #expect(error?.code == .timeout)
    }

    @Test func retryAfterReadsSecondsAndDates() {
        #expect(KliqAPIClient.retryAfter("3") == .seconds(3))
        #expect(KliqAPIClient.retryAfter("nonsense") == nil)
        let soon = Date().addingTimeInterval(5)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let parsed = KliqAPIClient.retryAfter(formatter.string(from: soon))
        #expect(parsed.map { $0 > .seconds(3) && $0 <= .seconds(6) } == true, "\(String(describing: parsed))")
    }

    @Test func theRateHoldsInEveryOneSecondWindow() async throws {
        let api = try await StubKliqAPI.start(apiKey: apiKey)
        defer { api.stop() }
        api.setJob("job_1", status: .processing)
        let kliq = client(api, rate: 5)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<15 { group.addTask { _ = try await kliq.job(id: "job_1") } }
            try await group.waitForAll()
        }
        let times = api.requests.map(\.at).sorted()
        #expect(times.count == 15)
        #expect(maxInAnySecond(times) <= 5, "at most 5 in any one-second window")
        #expect(times.last! - times.first! >= .seconds(2))
    }
}

/// The most requests that started within any one-second window (`[t, t + 1 s)`).
func maxInAnySecond(_ times: [ContinuousClock.Instant]) -> Int {
    let sorted = times.sorted()
    var most = 0
    for (index, start) in sorted.enumerated() {
        most = max(most, sorted[index...].prefix { $0 < start + .seconds(1) }.count)
    }
    return most
}
