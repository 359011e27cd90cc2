#if canImport(Glibc)
import Glibc
#endif
import KliqWebhooks

/// libFuzzer targets for the code that reads bytes from the wire. Each checks invariants and traps
/// (a finding) when one breaks; libFuzzer with AddressSanitizer also catches crashes, overflows and hangs.
///
/// Built with `Fuzz/run.sh` (`-sanitize=fuzzer,address -DFUZZING`); `KLIQ_FUZZ_TARGET` picks the target.
/// Built normally, `kliq-webhooks-fuzz TARGET FILE…` runs inputs through a target once (the corpus
/// regression run).
enum FuzzTargets {
    static let names = ["header", "envelope", "job", "storage-name"]
    static let verifier = try! SignatureVerifier(secrets: [Secret("whsec_fuzz")])

    static func run(_ target: String, _ bytes: [UInt8]) {
        switch target {
        case "header": self.header(bytes)
        case "envelope": self.envelope(bytes)
        case "job": self.job(bytes)
        case "storage-name": self.storageName(bytes)
        default: fatalError("unknown fuzz target \(target); one of \(self.names)")
        }
    }

    /// The signature header parser and hex decoder: a header is accepted as a digest exactly when it is
    /// 64 hex digits, and verification never matches a body it was not computed for.
    static func header(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let looksRight = text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) }
        let decoded = try? SignatureVerifier.decodeHeader(text)
        precondition((decoded != nil) == looksRight, "decodeHeader disagrees with the 64-hex rule")
        if let decoded { precondition(decoded.count == 32) }
        // The input as a body: its own signature matches, the fuzzed header (almost surely) does not.
        let own = SignatureVerifier.signature(for: bytes, secret: Secret("whsec_fuzz"))
        precondition((try? self.verifier.verify(signature: own, body: bytes)) != nil, "own signature rejected")
        if text != own, let _ = try? self.verifier.verify(signature: text, body: bytes) {
            preconditionFailure("a foreign header verified")
        }
    }

    /// Envelope decoding: never crashes; what it accepts has non-empty id and type and keeps the bytes.
    static func envelope(_ bytes: [UInt8]) {
        guard let event = try? Event(decoding: bytes) else { return }
        precondition(!event.id.isEmpty && !event.type.rawValue.isEmpty)
        precondition(event.rawBody == bytes)
        _ = event.data
        _ = event.observationId
        _ = event.visitId
        _ = try? JSONValue(parsing: bytes)
    }

    /// The job document built from a `cv.job.*` event: always valid JSON that reads back with its order.
    static func job(_ bytes: [UInt8]) {
        guard let event = try? Event(decoding: bytes), let record = JobRecord(event: event) else { return }
        precondition((try? JSONValue(parsing: record.bytes)) != nil, "job document is not valid JSON")
        precondition(JobRecord.order(ofStored: record.bytes) != nil, "job document order unreadable")
        precondition(!record.jobId.isEmpty)
    }

    /// Id to file name: always one safe path component, the same for the same id, different for different ids.
    static func storageName(_ bytes: [UInt8]) {
        let id = String(decoding: bytes, as: UTF8.self)
        let name = StorageName.fileName(for: id)
        precondition(!name.isEmpty && name.utf8.count <= 255, "file name length \(name.utf8.count)")
        precondition(!name.hasPrefix("."), "hidden or dot name")
        precondition(name.utf8.allSatisfy { $0 != UInt8(ascii: "/") && $0 != 0 }, "separator or NUL in a file name")
        precondition(name.hasSuffix(".json"))
        precondition(StorageName.fileName(for: id) == name, "not deterministic")
        if StorageName.isSafe(id) {
            precondition(name == id + ".json", "a safe id was encoded")
        } else {
            precondition(name != id + ".json", "an unsafe id was used as it is")
            // Flipping the last byte of the id changes the name (no two ids share a file).
            var other = Array(id.utf8)
            if !other.isEmpty {
                other[other.count - 1] ^= 0x01
                let otherId = String(decoding: other, as: UTF8.self)
                if otherId != id { precondition(StorageName.fileName(for: otherId) != name, "two ids share a file") }
            }
        }
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// libFuzzer's entry: one input through the target named by `KLIQ_FUZZ_TARGET`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTargets.run(selectedTarget, bytes)
    return 0
}

let selectedTarget: String = {
    guard let name = getenv("KLIQ_FUZZ_TARGET").map({ String(cString: $0) }), FuzzTargets.names.contains(name) else {
        print("set KLIQ_FUZZ_TARGET to one of \(FuzzTargets.names)")
        exit(2)
    }
    return name
}()

/// Whichever `main` the link keeps (libFuzzer's, or this one under SwiftPM's entry-point naming) runs
/// libFuzzer's driver.
@main
struct FuzzDriver {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
    }
}
#else
/// `kliq-webhooks-fuzz TARGET FILE…`: runs each file through TARGET once; exit 0 when none trips.
@main
struct FuzzReplay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let target = arguments.first, FuzzTargets.names.contains(target) else {
            print("usage: kliq-webhooks-fuzz {\(FuzzTargets.names.joined(separator: "|"))} FILE…")
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            guard let file = fopen(path, "rb") else { continue }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&buffer, 1, buffer.count, file)
                if n <= 0 { break }
                bytes += buffer[0..<n]
            }
            fclose(file)
            FuzzTargets.run(target, bytes)
            count += 1
        }
        print("\(target): \(count) inputs, no finding")
    }
}
#endif
