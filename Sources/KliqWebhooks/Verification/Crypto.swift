import COpenSSL

/// The three libcrypto primitives the package uses, through the `COpenSSL` shim.
package enum Crypto {
    /// HMAC-SHA256 of `message` keyed with `key` (32 bytes).
    static func hmacSHA256(key: [UInt8], message: UnsafeRawBufferPointer) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        // OpenSSL rejects a NULL key even for length 0: an empty key still gets a valid pointer.
        let keyBytes = key.isEmpty ? [0] : key
        let ok = keyBytes.withUnsafeBytes { keyBuffer in
            mac.withUnsafeMutableBytes { out in
                kliq_hmac_sha256(
                    keyBuffer.baseAddress, key.count,
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count,
                    out.baseAddress?.assumingMemoryBound(to: UInt8.self)
                )
            }
        }
        precondition(ok == 1, "libcrypto HMAC-SHA256 failed")
        return mac
    }

    static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { Self.hmacSHA256(key: key, message: $0) }
    }

    /// SHA-256 of `message` (32 bytes).
    package static func sha256(_ message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let ok = message.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { out in
                kliq_sha256(input.baseAddress, input.count, out.baseAddress)
            }
        }
        precondition(ok == 1, "libcrypto SHA-256 failed")
        return digest
    }

    /// Compares two byte arrays in time that depends only on their length.
    package static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in kliq_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }
}
