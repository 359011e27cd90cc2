import Foundation
import KliqWebhooksTesting
import Testing

/// `--exec` under load: every run ends reaped and leaves no descriptor behind, whatever way it ends
/// (exit 0, a failure that is retried, a timeout, a command that never reads its input).
@Suite(.serialized)
struct ExecHandlerTests {
    let dir = TemporaryDirectory()
    let secret = "whsec_exec_test"

    func post(_ serve: ServeProcess, _ index: Int, bytes: Int = 0) async throws -> Int {
        let body = Array(CrashRecoveryTests.body(index).dropLast()) + Array(#","padding":"\#(String(repeating: "x", count: bytes))"}"#.utf8)
        let signature = Signer(secret: self.secret).signature(for: body)
        return try await serve.client.post("/webhooks/kliq", body: body, headers: [("X-Kliq-Signature", signature)]).status
    }

    /// Descriptors `pid` holds, by what they point to.
    static func descriptors(of pid: Int32) -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }.sorted()
    }

    /// Children of `pid` that ended and were never reaped.
    static func zombies(of pid: Int32) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) }.compactMap { entry in
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // After "(comm)": state, ppid, …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, fields[0] == "Z", Int32(fields[1]) == pid else { return nil }
            return stat
        }
    }

    @Test func manyRunsEndingEveryWayLeaveNoZombieAndNoDescriptor() async throws {
        let handled = self.dir.file("handled.txt")
        // Event 3k+1 fails once, then succeeds; 3k+2 exits without reading its (large) input; every 25th
        // sleeps past the time limit on its first try.
        let command = #"""
            n=${KLIQ_EVENT_ID#evt_crash_}
            if [ $((n % 25)) = 0 ] && [ ! -e "$MARKS/slow-$n" ]; then touch "$MARKS/slow-$n"; sleep 30; fi
            if [ $((n % 3)) = 1 ] && [ ! -e "$MARKS/fail-$n" ]; then touch "$MARKS/fail-$n"; exit 7; fi
            [ $((n % 3)) = 2 ] || cat > /dev/null
            echo "$KLIQ_EVENT_ID" >> "$HANDLED"
            """#
        let marks = self.dir.file("marks")
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        let serve = try await ServeProcess(
            ["serve", "--port", "0", "--exec", command, "--exec-timeout", "2", "--retry-delay", "0.05", "--retry-attempts", "5"],
            environment: ["KLIQ_WEBHOOK_SECRET": self.secret, "HANDLED": handled, "MARKS": marks], workingDirectory: self.dir.path)
        try await serve.waitUntilListening()
        let pid = serve.process.processIdentifier

        // Warm up (the first runs open what serve keeps open: the pidfd poller, the journal…), then measure.
        for index in 1000..<1010 { #expect(try await self.post(serve, index) == 200) }
        #expect(try await eventually { Self.lines(handled).count == 10 })
        let before = Self.descriptors(of: pid)

        let total = 300
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<8 {
                group.addTask {
                    for index in stride(from: sender, to: total, by: 8) {
                        // 256 KiB for the commands that never read: more than a pipe holds.
                        let status = try await self.post(serve, index, bytes: index % 3 == 2 ? 256 << 10 : 0)
                        #expect(status == 200)
                    }
                }
            }
            try await group.waitForAll()
        }
        // Every event handled. (At least once: a run that wrote its line but had not exited when its time
        // was up is retried, so on a busy machine a line may appear twice.)
        let all = Set((0..<total).map { "evt_crash_\($0)" } + (1000..<1010).map { "evt_crash_\($0)" })
        #expect(try await eventually(timeout: .seconds(120)) { Set(Self.lines(handled).map(String.init)) == all })
        // Every run has been reaped; serve holds what it held before the load, no pipe or pidfd more. (A
        // retry of a run that timed out after writing its line may still be running: wait for the end.)
        var after: [String] = []
        #expect(try await eventually(timeout: .seconds(30)) {
            after = Self.descriptors(of: pid)
            return after.count <= before.count
        }, "descriptors before: \(before)\nafter: \(after)")
        #expect(Self.zombies(of: pid).isEmpty)
        #expect(serve.errors.contains("exited with status 7"))
        #expect(serve.errors.contains("ran longer than"))
        #expect(try await serve.terminate() == 0)
    }

    static func lines(_ path: String) -> [Substring] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
    }
}
