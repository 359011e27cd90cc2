#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A fresh temporary directory for one test, removed when released, with helpers to read what a store
/// wrote into it.
public final class TemporaryDirectory: Sendable {
    /// The directory's path.
    public let path: String

    public init() {
        var template = Array("/tmp/kliq-test-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        self.path = String(cString: result!)
    }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }

    /// The path of `relative` inside the directory.
    public func file(_ relative: String) -> String { relative.isEmpty ? self.path : self.path + "/" + relative }

    /// The bytes of `relative`, or `nil` when it does not exist.
    public func contents(_ relative: String) -> [UInt8]? {
        FileManager.default.contents(atPath: self.file(relative)).map { Array($0) }
    }

    /// The names in the folder `relative`, sorted (empty when it does not exist).
    public func names(_ relative: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: self.file(relative))) ?? []).sorted()
    }
}
