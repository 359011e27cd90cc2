import Foundation
import KliqWebhooksTesting
import Testing

/// The fuzz targets' invariants hold on the seed corpus (Fixtures/), and a broken invariant is reported:
/// the normal build of `KliqWebhooksFuzz` replays inputs through a target once.
struct FuzzTargetTests {
    static var binary: String { ServeProcess.executable.deletingLastPathComponent().appendingPathComponent("KliqWebhooksFuzz").path }

    static var fixtureFiles: [String] {
        let folder = NginxIntegrationTests.repository.appendingPathComponent("Fixtures").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.map { folder + "/" + $0 }.sorted()
    }

    @Test(arguments: ["header", "envelope", "job", "storage-name"])
    func seedCorpusPassesEveryTarget(_ target: String) async throws {
        let files = Self.fixtureFiles
        #expect(files.count >= 10)
        let result = try await NginxIntegrationTests.run(Self.binary, [target] + files)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\(target): \(files.count) inputs, no finding"))
    }

    @Test func hostileIdsKeepTheStorageNameInvariants() async throws {
        let dir = TemporaryDirectory()
        var files: [String] = []
        for (index, id) in ["../../etc/passwd", "a/b", ".", "..", ".hidden", String(repeating: "é", count: 300), "ok_id", "\u{0}"].enumerated() {
            let path = dir.file("id-\(index)")
            #expect(FileManager.default.createFile(atPath: path, contents: Data(id.utf8)))
            files.append(path)
        }
        let result = try await NginxIntegrationTests.run(Self.binary, ["storage-name"] + files)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func anUnknownTargetIsRefused() async throws {
        let result = try await NginxIntegrationTests.run(Self.binary, ["nonsense"])
        #expect(result.status == 2)
        #expect(result.output.contains("usage: kliq-webhooks-fuzz"))
    }
}
