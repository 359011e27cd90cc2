import ArgumentParser
import Foundation
import KliqWebhooks
import Logging
import ServiceLifecycle
import UnixSignals

/// Where `serve` gets its signing secrets: `--secret-file` when given, else `KLIQ_WEBHOOK_SECRET`.
enum SecretSource {
    static let environmentVariable = "KLIQ_WEBHOOK_SECRET"

    /// The configured secrets and a description of where they came from (never the secrets themselves).
    /// Prints one line and exits with status 2 when there are none. Warns when the secret file can be
    /// read by other users.
    static func load(file: String?, environment: [String: String], logger: Logger) throws -> (secrets: [Secret], origin: String) {
        if let file {
            let secrets: [Secret]
            do {
                secrets = try self.read(file)
            } catch {
                fail(error.description)
            }
            if let mode = self.looseMode(file) {
                logger.warning("other users can read or change the secret file; run: chmod 600 \(file)",
                               metadata: ["kliq.file_mode": .string(String(mode, radix: 8))])
            }
            return (secrets, "--secret-file \(file)")
        }
        let secrets = Secret.list(environment[environmentVariable] ?? "")
        guard !secrets.isEmpty else {
            fail("no signing secret: set \(environmentVariable) (comma-separated for rotation) or pass --secret-file PATH")
        }
        return (secrets, environmentVariable)
    }

    struct FileProblem: Error, CustomStringConvertible {
        var description: String
    }

    /// The secrets in `file`, one a line.
    static func read(_ file: String) throws(FileProblem) -> [Secret] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw FileProblem(description: "cannot read --secret-file \(file): check the path and its permissions")
        }
        let secrets = Secret.lines(String(decoding: data, as: UTF8.self))
        guard !secrets.isEmpty else { throw FileProblem(description: "--secret-file \(file) holds no secret (one secret a line)") }
        return secrets
    }

    /// The file's permission bits when other users may read it, or anyone but its owner may write it
    /// (`0640` with a dedicated group, as in deploy/systemd, is fine).
    static func looseMode(_ file: String) -> mode_t? {
        var info = stat()
        guard stat(file, &info) == 0 else { return nil }
        let mode = info.st_mode & 0o777
        return mode & 0o027 == 0 ? nil : mode
    }

    /// For `--print-config`: how many secrets there are and where from, never the values.
    static func describe(file: String?, environment: [String: String]) -> String {
        if let file {
            do {
                let count = try self.read(file).count
                return "\(count) from secret-file \(file) (values not shown)"
            } catch {
                return "none usable: \(error.description)"
            }
        }
        let count = Secret.list(environment[environmentVariable] ?? "").count
        return count == 0
            ? "none: serve refuses to start until \(environmentVariable) or secret-file is set"
            : "\(count) from \(environmentVariable) (values not shown)"
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("kliq-webhooks: \(message)\n".utf8))
        exit(2)
    }
}

/// Re-reads `--secret-file` on SIGHUP and swaps the receiver's verifier, so secrets rotate without a
/// restart. A file that cannot be read, or holds no secret, leaves the current secrets in place.
struct SecretReload: Service {
    let file: String
    let receiver: Receiver
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                let secrets = try SecretSource.read(self.file)
                self.receiver.replaceVerifier(try SignatureVerifier(secrets: secrets))
                self.logger.notice("secrets reloaded on SIGHUP", metadata: ["kliq.secrets": "\(secrets.count)"])
            } catch {
                self.logger.error("SIGHUP: secrets not reloaded, the current ones stay: \(error)")
            }
        }
    }
}
