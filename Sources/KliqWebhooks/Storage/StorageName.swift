/// Maps an id from the wire (event id, job id) to a file name, safely.
///
/// A safe id — only `A-Z a-z 0-9 _ - .`, 1…200 characters, not starting with `.` — is its own name. Any
/// other id (`../../x`, `a/b`, a NUL, 5,000 characters, non-ASCII) never becomes a path: it is stored as
/// `~` + the SHA-256 of its UTF-8 bytes in hex. `~` cannot occur in a safe id, so the two forms never
/// collide, and the mapping is a function of the id alone, so deduplication holds for both.
public enum StorageName {
    /// The longest id kept as its own file name.
    public static let maxSafeLength = 200

    /// Whether `id` is used as its own file name.
    public static func isSafe(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard (1...Self.maxSafeLength).contains(utf8.count), utf8.first != UInt8(ascii: ".") else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
                true
            default:
                false
            }
        }
    }

    /// The file name (without extension) under which `id` is stored.
    public static func stem(for id: String) -> String {
        Self.isSafe(id) ? id : "~" + Hex.encode(Crypto.sha256(Array(id.utf8)))
    }

    /// The JSON file name under which `id` is stored, e.g. `evt_abc123.json`.
    public static func fileName(for id: String) -> String {
        Self.stem(for: id) + ".json"
    }
}
