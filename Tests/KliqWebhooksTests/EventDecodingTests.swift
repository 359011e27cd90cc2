@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

struct EventDecodingTests {
    @Test(arguments: try! fixtures.names())
    func everyFixtureDecodes(_ name: String) throws {
        let fixture = try fixtures.load(name)
        let event = try fixture.event()
        #expect(!event.id.isEmpty)
        #expect(event.rawBody == fixture.body)
        if event.type.isCVJob {
            let job = try event.cvJob()
            #expect(job.jobId.hasPrefix("job_"))
            #expect(job.status?.isTerminal == true)
        }
    }

    @Test func shelfAttributesKeepNullPriceTagsNull() throws {
        let job = try fixtures.load("cv.job.completed.shelf-detection-v2").event().cvJob()
        #expect(job.model == .shelfDetectionV2)
        #expect(job.status == .completed)
        let detections = try #require(job.result?.detections)
        #expect(detections.count == 4)
        #expect(detections[0].objectName == "Coca-Cola 330ml")
        #expect(detections[0].confidence == 0.97)
        #expect(detections[0].boundingBox == BoundingBox(x: 120, y: 45, width: 80, height: 200))
        #expect(detections[0].attributes.facings == 4)
        #expect(detections[0].attributes.shelfPosition == "eye-level")
        #expect(detections[0].attributes.priceTag == "2.49")
        #expect(!detections[0].attributes.hasNullPriceTag)
        #expect(detections[1].attributes.priceTag == nil)
        #expect(detections[1].attributes["priceTag"] == .null)
        #expect(detections[1].attributes.hasNullPriceTag)
        let summary = try #require(job.result?.summary)
        #expect(summary.totalProducts == 24)
        #expect(summary.uniqueSKUs == 8)
        #expect(summary.outOfStock == ["Fanta Orange 330ml"])
        #expect(summary.complianceScore == 0.85)
    }

    @Test func failedJobErrorsAreObjectsOrStrings() throws {
        let object = try #require(try fixtures.load("cv.job.failed.error-object").event().cvJob().error)
        #expect(object.code == "image_unreadable")
        #expect(object.message == "Image could not be decoded")
        let string = try #require(try fixtures.load("cv.job.failed.error-string").event().cvJob().error)
        #expect(string.code == nil)
        #expect(string.message == "Model timed out after 300s")
        #expect(string.raw == .string("Model timed out after 300s"))
    }

    @Test func unknownTypesModelsAndFieldsSurvive() throws {
        let unknown = try fixtures.load("unknown-type").event()
        #expect(unknown.type == EventType("cv.model.retrained"))
        #expect(!unknown.type.isCVJob)
        #expect(unknown.data["accuracy"] == .number(0.943))

        let extra = try fixtures.load("unknown-fields")
        let event = try extra.event()
        let job = try event.cvJob()
        #expect(job.model == Model("shelf-detection-v3-beta"))
        #expect(job.raw["durationMs"] == .number(4210))
        #expect(job.result?.raw["modelVersion"] == .string("3.0.0-beta.2"))
        #expect(job.result?.detections[0].raw["trackId"] == .string("trk_1"))
        #expect(job.result?.detections[0].attributes["promo"]?["type"] == .string("2for1"))
        #expect(job.result?.summary?.raw["shareOfShelf"]?["Coca-Cola"] == .number(0.6))
        // The raw body keeps what a Double cannot hold.
        #expect(String(decoding: event.rawBody, as: UTF8.self).contains("12345678901234567890123"))
    }

    @Test func nonASCIINamesDecode() throws {
        let names = try fixtures.load("non-ascii-names").event().cvJob().result?.detections.map(\.objectName)
        #expect(names == ["Nestlé Pure Life 1,5 L", "Мороженое «Пломбир»", "綾鷹 緑茶 525ml", "Jus d’orange 🍊 1L"])
    }

    @Test func nonJobEventsExposeCommonIds() throws {
        #expect(try fixtures.load("visit.submitted").event().visitId == "visit_9001")
        #expect(try fixtures.load("observation.created").event().observationId == "obs_abc123")
        #expect(try fixtures.load("observation.created").event().jobId == nil)
    }

    @Test func largeResultDecodes() throws {
        let job = try fixtures.load("cv.job.completed.large").event().cvJob()
        #expect((job.result?.detections.count ?? 0) >= 2000)
    }

    static let malformed: [String] = [
        "[]", "\"evt\"", "null", "{}", #"{"id":"evt_1"}"#, #"{"type":"cv.job.completed"}"#,
        #"{"id":1,"type":"cv.job.completed"}"#, #"{"id":"","type":"x"}"#, #"{"id":"evt_1","type":""}"#,
        #"{"id":"evt_1","type":null}"#, #"{"id":"evt_1","type":"x"} trailing"#, "not json",
    ]

    @Test(arguments: malformed)
    func envelopeWithoutStringIdAndTypeIsMalformed(_ body: String) {
        let error = #expect(throws: WebhookError.self) { try Event(decoding: Array(body.utf8)) }
        #expect(error?.code == .malformedPayload)
    }

    @Test(arguments: [
        ("2026-04-28T12:00:00Z", Int64(1_777_377_600), Int64(0)),
        ("2026-04-28T14:00:00+02:00", 1_777_377_600, 0),
        ("2026-04-28T12:00:00.250Z", 1_777_377_600, 250_000_000),
        ("1970-01-01T00:00:00Z", 0, 0),
        ("2000-02-29T23:59:59-00:30", 951_870_599, 0),
    ])
    func parsesRFC3339Timestamps(_ text: String, _ seconds: Int64, _ nanos: Int64) throws {
        let timestamp = try #require(Timestamp(rfc3339: text))
        #expect(timestamp.seconds == seconds)
        #expect(timestamp.nanoseconds == nanos)
    }

    @Test(arguments: ["", "2026-04-28", "2026-04-28T12:00:00", "2026-13-01T00:00:00Z", "2026-04-28T12:00:00+0200", "yesterday"])
    func refusesOtherTimestamps(_ text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }

    @Test func formatsTimestampsAsRFC3339() {
        #expect(Timestamp(seconds: 1_777_377_600, nanoseconds: 250_000_000).rfc3339 == "2026-04-28T12:00:00.250Z")
        #expect(Timestamp(rfc3339: Timestamp(seconds: 951_870_599, nanoseconds: 0).rfc3339)?.seconds == 951_870_599)
    }
}
