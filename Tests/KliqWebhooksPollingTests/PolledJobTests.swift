import KliqWebhooks
import Testing

@Suite("The event polling makes of an API job")
struct PolledJobTests {
    @Test func aCompletedJobBecomesAWebhookEnvelopeWithItsResultByteForByte() throws {
        let result = #"{"detections":[{"objectName":"Cola \"330\"","confidence":0.970,"boundingBox":{"x":1,"y":2,"width":3,"height":4},"attributes":{"priceTag":null}}],"summary":{"complianceScore":1e-1}}"#
        let api = #"{"id":"job_1","status":"completed","model":"shelf-detection-v2","observationId":"obs_1","result":\#(result),"createdAt":"2026-04-28T11:59:00Z","completedAt":"2026-04-28T12:00:00.5Z","extra":[1,2]}"#
        let event = try #require(try PolledJob.event(fromAPIJob: Array(api.utf8), tenantId: "t_9"))
        #expect(event.id == "poll_job_1_completed" && event.type == .cvJobCompleted && event.isPolled && event.source == "poll")
        #expect(event.tenantId == "t_9" && event.jobId == "job_1" && event.timestamp == "2026-04-28T12:00:00.5Z")
        #expect(String(decoding: event.rawBody, as: UTF8.self).contains(#""result":\#(result)"#), "the result is spliced byte for byte")
        let job = try event.cvJob()
        #expect(job.status == .completed && job.result?.detections.first?.objectName == #"Cola "330""#)
        #expect(event.data["extra"] == nil && event.data["observationId"]?.stringValue == "obs_1")
    }

    @Test func aFailedJobCarriesItsErrorAndAnUnfinishedOneMakesNoEvent() throws {
        let failed = #"{"id":"job_2","status":"failed","error":"image unreadable","updatedAt":"2026-04-28T12:01:00Z"}"#
        let event = try #require(try PolledJob.event(fromAPIJob: Array(failed.utf8), tenantId: "t_1"))
        #expect(event.id == "poll_job_2_failed" && event.type == .cvJobFailed && event.timestamp == "2026-04-28T12:01:00Z")
        #expect(try event.cvJob().error?.description == "image unreadable")
        #expect(try PolledJob.event(fromAPIJob: Array(#"{"id":"job_3","status":"processing"}"#.utf8), tenantId: "t_1") == nil)
        #expect(throws: WebhookError.self) { try PolledJob.event(fromAPIJob: Array(#"{"status":"completed"}"#.utf8), tenantId: "t_1") }
        #expect(throws: WebhookError.self) { try PolledJob.event(fromAPIJob: Array("[]".utf8), tenantId: "t_1") }
    }

    @Test func aJobWithoutATimeHasNoTimestampAndStillDecodes() throws {
        let event = try #require(try PolledJob.event(fromAPIJob: Array(#"{"id":"job_4","status":"completed"}"#.utf8), tenantId: "t_1"))
        #expect(event.timestamp == nil && event.jobId == "job_4")
    }
}
