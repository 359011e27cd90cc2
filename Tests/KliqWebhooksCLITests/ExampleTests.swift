import Foundation
import KliqWebhooksTesting
import Testing

/// The programs in Examples/ build and do what their comments say.
@Suite(.serialized)
struct ExampleTests {
    let dir = TemporaryDirectory()

    static func binary(_ name: String) -> String {
        ServeProcess.executable.deletingLastPathComponent().appendingPathComponent(name).path
    }

    @Test func awaitCompletionStartsAJobAndGetsItThroughTheWebhook() async throws {
        let example = try await ServeProcess(["--no-op"], environment: [:], workingDirectory: self.dir.path,
                                       executable: Self.binary("AwaitCompletionExample"))
        #expect(try await example.waitForExit(timeout: .seconds(60)) == 0)
        #expect(example.output.contains(": queued"))
        #expect(example.output.contains("completed: 1 detections, compliance 0.85"))
    }

    @Test func shelfAlertsFlagsLowComplianceAndUrgentDamage() async throws {
        let secret = "whsec_example"
        let app = try await ServeProcess([], environment: ["KLIQ_WEBHOOK_SECRET": secret, "PORT": "0", "DATA_DIR": self.dir.file("data")],
                                   workingDirectory: self.dir.path, executable: Self.binary("ShelfAlertsExample"))
        let port = try await app.waitUntilListening()
        let fixtures = try Fixtures()
        for name in ["cv.job.completed.shelf-detection-v2", "cv.job.completed.damage-assessment-v1", "cv.job.failed.error-string"] {
            let body = try fixtures.load(name).body
            let response = try await RawHTTPClient(port: port).post("/integrations/kliq", body: body,
                                                                   headers: [("X-Kliq-Signature", Signer(secret: secret).signature(for: body))])
            #expect(response.status == 200)
        }
        #expect(try await eventually { app.errors.contains("urgent damage") && app.errors.contains("shelf needs attention") })
        #expect(app.errors.contains(#"missingPriceTags=["Pepsi 500ml", "Evian 500ml"]"#))
        #expect(app.errors.contains("finding=spalling"))
        #expect(app.errors.contains("re-shoot the photo"))
        #expect(try await app.terminate() == 0)
    }
}
