import Foundation
import KliqTestSupport
import KliqWebhooksTesting
import Testing

/// A real full file system under the data directory: a small tmpfs, filled up while serve runs.
@Suite(.serialized)
struct StorageFaultTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_disk_test"

    /// Mounts a 512 KiB tmpfs at `path`; `nil` with the reason when this machine does not allow it.
    static func mountSmallDisk(at path: String) async -> String? {
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mount: ChildProcess.Status
        do {
            mount = try await ChildProcess.output(of: "/bin/mount", ["-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", path]).status
        } catch { return "cannot run mount: \(error)" }
        return mount == .exited(0) ? nil : "mount -t tmpfs failed (\(mount)); not root or no CAP_SYS_ADMIN"
    }

    static func unmount(_ path: String) async {
        _ = try? await ChildProcess.output(of: "/bin/umount", ["-l", path])
    }

    /// Fills the file system holding `path` until it refuses to take more.
    static func fill(_ path: String) {
        let handle = FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil
        let chunk = Data(repeating: 0x41, count: 4096)
        while (try? handle?.write(contentsOf: chunk)) != nil {}
        try? handle?.close()
    }

    @Test func aFullDiskAnswers503LeavesNothingBehindAndRecoversByItself() async throws {
        let disk = self.dir.file("disk")
        if let reason = await Self.mountSmallDisk(at: disk) {
            print("StorageFaultTests: the real full-disk check did not run here: \(reason). The injected-fault tests still cover 503.")
            return
        }
        do { try await self.fillWhileServing(disk) } catch {
            await Self.unmount(disk)
            throw error
        }
        await Self.unmount(disk)
    }

    func fillWhileServing(_ disk: String) async throws {
        let serve = try await ServeProcess(["serve", "--port", "0", "--data-dir", disk + "/data"],
                                     environment: ["KLIQ_WEBHOOK_SECRET": self.secret], workingDirectory: self.dir.path)
        defer { kill(serve.process.processIdentifier, SIGKILL) }
        try await serve.waitUntilListening()
        let signer = Signer(secret: self.secret)
        let fixtures = try Fixtures()
        let first = try fixtures.load("cv.job.completed.custom").body
        let second = try fixtures.load("cv.job.completed.building-inspection-v1").body
        func post(_ body: [UInt8]) async throws -> RawHTTPClient.Response {
            try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signer.signature(for: body))])
        }
        #expect(try await post(first).status == 200)

        Self.fill(disk + "/filler")
        let refused = try await post(second)
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") == "5")
        #expect(refused.bodyText.contains("storage_unavailable"))
        #expect(!FileManager.default.fileExists(atPath: disk + "/data/events/evt_bldg_0001.json"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: disk + "/data/tmp")) ?? ["?"]).isEmpty)
        #expect(try await eventually { (try? await serve.client.request("GET", "/readyz").status) == 503 })
        #expect(try await serve.client.request("GET", "/healthz").status == 200)
        // Every JSON file that is there is whole.
        let root = URL(fileURLWithPath: disk + "/data")
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)! where url.pathExtension == "json" {
            let data = try #require(FileManager.default.contents(atPath: url.path))
            #expect((try? JSONSerialization.jsonObject(with: data)) != nil, "\(url.path)")
        }

        try FileManager.default.removeItem(atPath: disk + "/filler")
        #expect(try await eventually { (try? await serve.client.request("GET", "/readyz").status) == 200 })
        let retried = try await post(second)
        #expect(retried.status == 200)
        #expect(retried.bodyText.contains("accepted"))
        #expect(FileManager.default.contents(atPath: disk + "/data/events/evt_bldg_0001.json").map(Array.init) == second)
        #expect(try await serve.terminate() == 0)
    }
}
