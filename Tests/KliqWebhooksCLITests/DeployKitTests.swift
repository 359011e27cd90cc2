import Foundation
import KliqWebhooksTesting
import Testing

/// The files in `deploy/`: checked by the tools that read them, where this machine has those tools, and
/// for the properties the README promises.
struct DeployKitTests {
    let dir = TemporaryDirectory()

    func read(_ path: String) throws -> String {
        try String(contentsOf: NginxIntegrationTests.repository.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func systemdUnitVerifiesAndIsHardened() async throws {
        let unit = try self.read("deploy/systemd/kliq-webhooks.service")
        for line in [
            "User=kliq-webhooks", "Environment=KLIQ_SECRET_FILE=/etc/kliq-webhooks/secrets", "StateDirectory=kliq-webhooks", "ProtectSystem=strict", "Restart=on-failure", "RestartPreventExitStatus=2",
            "NoNewPrivileges=yes", "ExecReload=/bin/kill -HUP $MAINPID", "UMask=0077", "Environment=KLIQ_DATA_DIR=/var/lib/kliq-webhooks",
        ] {
            #expect(unit.split(separator: "\n").contains { $0 == line }, "missing \(line)")
        }
        guard let analyze = NginxIntegrationTests.find("systemd-analyze") else {
            print("DeployKitTests: systemd-analyze is not installed; the unit was checked as text only")
            return
        }
        // `verify` needs ExecStart to exist: point it at the built binary.
        let local = unit.replacingOccurrences(of: "/usr/local/bin/kliq-webhooks", with: ServeProcess.executable.path)
        try local.write(toFile: self.dir.file("kliq-webhooks.service"), atomically: true, encoding: .utf8)
        let result = try await NginxIntegrationTests.run(analyze, ["verify", self.dir.file("kliq-webhooks.service")])
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.output.contains("kliq-webhooks.service:"), "\(result.output)")

        // The check can fail: a misspelt directive is reported.
        try local.replacingOccurrences(of: "ProtectSystem=strict", with: "ProtectSystem=strictly")
            .write(toFile: self.dir.file("broken.service"), atomically: true, encoding: .utf8)
        let broken = try await NginxIntegrationTests.run(analyze, ["verify", self.dir.file("broken.service")])
        #expect(broken.output.contains(/broken\.service:\d+: Failed to parse protect system value/), "\(broken.output)")
    }

    @Test func exampleConfigFileIsValidForServe() async throws {
        let path = NginxIntegrationTests.repository.appendingPathComponent("deploy/systemd/kliq-webhooks.conf").path
        let serve = try await ServeProcess(["serve", "--config", path, "--print-config"], environment: [:], workingDirectory: self.dir.path)
        #expect(try await serve.waitForExit() == 0, "\(serve.errors)")
        #expect(serve.output.contains("trusted-proxy = 127.0.0.1"))
        #expect(serve.output.contains("log-format = json"))
    }

    @Test func dockerfileRunsAsNonRootWithAVolumeAndAHealthCheck() throws {
        let dockerfile = try self.read("deploy/docker/Dockerfile")
        let lines = dockerfile.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.filter { $0.hasPrefix("FROM ") }.count == 2, "multi-stage")
        #expect(lines.contains { $0.hasPrefix("FROM debian:bookworm-slim") })
        let user = try #require(lines.last { $0.hasPrefix("USER ") })
        #expect(!user.contains("root") && !user.hasPrefix("USER 0"))
        #expect(lines.contains("VOLUME /data"))
        #expect(lines.contains { $0.hasPrefix("HEALTHCHECK ") })
        #expect(dockerfile.contains("/readyz"))
        #expect(lines.contains { $0.hasPrefix("ENTRYPOINT [\"/usr/local/bin/kliq-webhooks\", \"serve\"]") })
        // Every folder the manifest names is copied in, or `swift build` fails in the image.
        for folder in ["Sources", "Tests", "Examples", "Fixtures"] {
            #expect(lines.contains("COPY \(folder) ./\(folder)"), "\(folder)")
        }
        // The nginx body limit matches serve's default --max-body-bytes.
        let nginx = try self.read("deploy/nginx/kliq-webhooks.conf")
        #expect(nginx.contains("client_max_body_size 4m;") && 4 * 1024 * 1024 == 4_194_304)
    }
}
