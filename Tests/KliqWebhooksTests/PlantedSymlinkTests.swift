import Foundation
@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

/// Symlinks planted in the data directory are never followed out of it.
struct PlantedSymlinkTests {
    @Test(arguments: ["events", "jobs", "quarantine", "tmp", "ledger"])
    func aFolderReplacedByASymlinkIsRefusedAndItsTargetUntouched(_ folder: String) throws {
        let dir = TemporaryDirectory()
        let outside = TemporaryDirectory()
        _ = try FileEventStore(directory: dir.file("data"))  // creates the layout, then closes
        try FileManager.default.removeItem(atPath: dir.file("data/\(folder)"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("data/\(folder)"), withDestinationPath: outside.path)
        #expect(throws: (any Error).self) { _ = try FileEventStore(directory: dir.file("data")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
    }

    @Test func aFilePlantedAsASymlinkIsNotWrittenThrough() async throws {
        let dir = TemporaryDirectory()
        let outside = TemporaryDirectory()
        let target = outside.file("victim.json")
        FileManager.default.createFile(atPath: target, contents: Data("original".utf8))
        let store = try FileEventStore(directory: dir.file("data"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("data/jobs/job_planted.json"), withDestinationPath: target)
        let receiver = Receiver(verifier: try SignatureVerifier(secrets: [Secret(testSecret)]), store: store, logger: quietLogger)
        let body = envelope(id: "evt_planted", jobId: "job_planted")
        // Whatever the answer (stored or refused), the file outside is untouched.
        _ = try? await receiver.receive(body: body, signature: signer.signature(for: body))
        #expect(FileManager.default.contents(atPath: target) == Data("original".utf8))
        var info = stat()
        #expect(lstat(dir.file("data/jobs/job_planted.json"), &info) == 0)
        if info.st_mode & S_IFMT == S_IFLNK {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("data/jobs/job_planted.json")) == target)
        }
    }
}
