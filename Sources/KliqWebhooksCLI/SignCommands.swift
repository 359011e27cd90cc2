import ArgumentParser
import Foundation
import KliqWebhooks
import Logging

/// Where `sign`/`verify` get secrets: `--secret-file`, else `KLIQ_WEBHOOK_SECRET` (like `serve`).
struct SecretOptions: ParsableArguments {
    @Option(help: "File with the signing secrets, one a line (instead of KLIQ_WEBHOOK_SECRET).") var secretFile: String?

    func load() throws -> [Secret] {
        try SecretSource.load(file: self.secretFile, environment: ProcessInfo.processInfo.environment, logger: Logger(label: "kliq-webhooks")).secrets
    }
}

func readBody(_ path: String) throws -> [UInt8] {
    if path == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read \(path): check the path and its permissions")
    }
    return Array(data)
}

/// `kliq-webhooks sign FILE`: the `X-Kliq-Signature` KLIQ would send for a body.
struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print the X-Kliq-Signature for a body (the file's exact bytes), signed with the first secret.")
    @OptionGroup var secrets: SecretOptions
    @Argument(help: "The body file, or - for standard input.") var file: String
    @Option(help: "Print a ready curl command that POSTs the body to URL instead.") var curl: String?

    func run() throws {
        let body = try readBody(self.file)
        let signature = SignatureVerifier.signature(for: body, secret: try self.secrets.load()[0])
        guard let url = self.curl else {
            print(signature)
            return
        }
        let file = self.file == "-" ? "body.json" : self.file
        print("curl -sS -X POST \(Self.quote(url)) -H 'Content-Type: application/json' -H 'X-Kliq-Signature: \(signature)' --data-binary @\(Self.quote(file))")
    }

    static func quote(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "/:._-@=".contains($0) } ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// `kliq-webhooks verify FILE --signature S`: whether a signature is valid for a body, and if not, why.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an X-Kliq-Signature against a body and explain a failure.",
        discussion: "Exit status: 0 valid, 1 invalid (the explanation says what to fix).")
    @OptionGroup var secrets: SecretOptions
    @Argument(help: "The body file, or - for standard input.") var file: String
    @Option(help: "The X-Kliq-Signature value, as received.") var signature: String

    func run() throws {
        let body = try readBody(self.file)
        let secrets = try self.secrets.load()
        let diagnosis = SignatureDiagnosis.diagnose(signature: self.signature, body: body, secrets: secrets)
        print(diagnosis.explanation)
        if !diagnosis.valid { throw ExitCode(1) }
    }
}

/// Works out why a signature does not verify, by trying what usually goes wrong.
enum SignatureDiagnosis {
    struct Result {
        var valid: Bool
        var explanation: String
    }

    static func diagnose(signature: String, body: [UInt8], secrets: [Secret]) -> Result {
        let verifier = try! SignatureVerifier(secrets: secrets)
        func matches(_ header: String, _ body: [UInt8]) -> Int? { try? verifier.verify(signature: header, body: body).secretIndex }
        let count = secrets.count == 1 ? "the configured secret" : "configured secret"
        let all = secrets.count == 1 ? "the configured secret" : "any of the \(secrets.count) configured secrets"

        if let index = matches(signature, body) {
            return Result(valid: true, explanation: "valid: the signature matches the body under \(count) #\(index + 1)")
        }
        var cleaned = signature.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"'")))
        for prefix in ["sha256=", "SHA256=", "X-Kliq-Signature:", "x-kliq-signature:"] where cleaned.hasPrefix(prefix) {
            cleaned = String(cleaned.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
        }
        if cleaned != signature, let index = matches(cleaned, body) {
            return Result(valid: false, explanation: "header mangled: '\(cleaned)' is valid (secret #\(index + 1)), but the header "
                + "carried extra characters (quotes, whitespace or a prefix); send the 64 hex digits alone")
        }
        guard cleaned.count == 64, cleaned.allSatisfy(\.isHexDigit) else {
            return Result(valid: false, explanation: "header malformed: X-Kliq-Signature must be 64 hexadecimal digits "
                + "(HMAC-SHA256), got \(signature.count) characters")
        }
        for (description, variant) in self.variants(of: body) {
            if let index = matches(cleaned, variant) {
                return Result(valid: false, explanation: "body changed: the signature (secret #\(index + 1)) is for \(description); "
                    + "verify the raw bytes exactly as received, before any parsing or re-encoding")
            }
        }
        return Result(valid: false, explanation: "no match: the signature fits neither this body nor its usual re-encodings under "
            + "\(all); most likely the secret is wrong (each subscription has its own whsec_…), or the body was altered in transit")
    }

    /// The usual ways a body gets changed between KLIQ and the verifier.
    static func variants(of body: [UInt8]) -> [(String, [UInt8])] {
        var variants: [(String, [UInt8])] = []
        if body.last == 0x0A {
            variants.append(("these bytes without the trailing newline (one was added, e.g. by an editor or echo)", Array(body.dropLast())))
            if body.suffix(2) == [0x0D, 0x0A] { variants.append(("these bytes without the trailing CRLF (one was added)", Array(body.dropLast(2)))) }
        } else {
            variants.append(("these bytes plus a trailing newline (it was stripped, e.g. by curl -d or a trim)", body + [0x0A]))
        }
        if body.contains(0x0D) { variants.append(("these bytes with LF line endings (they were turned into CRLF)", body.filter { $0 != 0x0D })) }
        // Re-laid out from the bytes themselves, so key order and number text stay as sent.
        let compact = JSONLayout.minified(body)
        for (layout, bytes) in [("compact", compact), ("pretty-printed with 2 spaces", JSONLayout.pretty(compact)),
                                ("pretty-printed with 4 spaces", JSONLayout.pretty(compact, indent: 4))] where bytes != body {
            variants.append(("the same JSON laid out differently (\(layout)): these bytes were parsed and re-encoded", bytes))
            variants.append(("the same JSON laid out differently (\(layout), with a trailing newline)", bytes + [0x0A]))
        }
        return variants
    }
}

/// Re-lays out JSON text token by token: whitespace outside strings is all that changes.
enum JSONLayout {
    static func minified(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                out.append(byte)
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
                out.append(byte)
            } else if ![0x20, 0x0A, 0x0D, 0x09].contains(byte) {
                out.append(byte)
            }
        }
        return out
    }

    /// `JSON.stringify(value, null, indent)` / Python's `json.dumps(value, indent=indent)` layout of minified JSON.
    static func pretty(_ compact: [UInt8], indent: Int = 2) -> [UInt8] {
        var out: [UInt8] = []
        var depth = 0
        var inString = false
        var escaped = false
        func newline() { out.append(0x0A); out.append(contentsOf: Array(repeating: 0x20, count: depth * indent)) }
        var index = 0
        while index < compact.count {
            let byte = compact[index]
            defer { index += 1 }
            if inString {
                out.append(byte)
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                out.append(byte)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if index + 1 < compact.count, compact[index + 1] == close {
                    out += [byte, close]
                    index += 1
                } else {
                    out.append(byte)
                    depth += 1
                    newline()
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                newline()
                out.append(byte)
            case UInt8(ascii: ","):
                out.append(byte)
                newline()
            case UInt8(ascii: ":"):
                out += [byte, 0x20]
            default:
                out.append(byte)
            }
        }
        return out
    }
}
