import ArgumentParser
import Foundation
import KliqWebhooks

/// Where `serve` gets its signing secrets: `--secret-file` when given, else `KLIQ_WEBHOOK_SECRET`.
enum SecretSource {
    static let environmentVariable = "KLIQ_WEBHOOK_SECRET"

    /// The configured secrets and a description of where they came from (never the secrets themselves).
    /// Prints one line and exits with status 2 when there are none.
    static func load(file: String?, environment: [String: String]) throws -> (secrets: [Secret], origin: String) {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                fail("cannot read --secret-file \(file): check the path and its permissions")
            }
            let secrets = Secret.lines(String(decoding: data, as: UTF8.self))
            guard !secrets.isEmpty else { fail("--secret-file \(file) holds no secret (one secret a line)") }
            return (secrets, "--secret-file \(file)")
        }
        let secrets = Secret.list(environment[environmentVariable] ?? "")
        guard !secrets.isEmpty else {
            fail("no signing secret: set \(environmentVariable) (comma-separated for rotation) or pass --secret-file PATH")
        }
        return (secrets, environmentVariable)
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("kliq-webhooks: \(message)\n".utf8))
        exit(2)
    }
}
