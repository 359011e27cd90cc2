import HTTPTypes

/// The reverse proxies whose forwarding headers are believed, and how the client address is found.
///
/// A request's client address is its peer address, unless the peer is a trusted proxy: then it is the
/// nearest untrusted address the proxies recorded, read right to left from `Forwarded` (`for=`),
/// else `X-Forwarded-For`, else `X-Real-IP`. A client that is not a trusted proxy cannot choose the
/// address it is logged under, whatever headers it sends.
///
/// ```swift
/// let proxies = try TrustedProxies(["127.0.0.1", "::1", "10.0.0.0/8"])
/// ```
public struct TrustedProxies: Sendable, Hashable, CustomStringConvertible {
    /// One address or network (`CIDR`), parsed.
    struct Network: Sendable, Hashable {
        var bytes: [UInt8]
        var prefixLength: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == self.bytes.count else { return false }
            var remaining = self.prefixLength
            for index in self.bytes.indices where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if address[index] & mask != self.bytes[index] & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    let networks: [Network]
    /// The entries as given, for `--print-config` and logs.
    public let entries: [String]

    /// No proxy is trusted: the peer address is always the client address. The default.
    public static var none: Self { .init(networks: [], entries: []) }

    private init(networks: [Network], entries: [String]) {
        self.networks = networks
        self.entries = entries
    }

    /// Parses addresses (`127.0.0.1`, `::1`) and networks (`10.0.0.0/8`, `fd00::/8`).
    /// - Throws: ``TrustedProxiesError`` naming the first entry that is neither.
    public init(_ entries: [String]) throws(TrustedProxiesError) {
        var networks: [Network] = []
        for entry in entries {
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bytes = IPAddress.parse(String(parts[0])) else { throw TrustedProxiesError(entry: entry) }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                guard let length = Int(parts[1]), (0...prefix).contains(length), !parts[1].hasPrefix("+") else {
                    throw TrustedProxiesError(entry: entry)
                }
                prefix = length
            }
            networks.append(Network(bytes: bytes, prefixLength: prefix))
        }
        self.init(networks: networks, entries: entries)
    }

    public var description: String { self.entries.isEmpty ? "none" : self.entries.joined(separator: ",") }

    /// Whether `address` (text form) is a trusted proxy.
    public func trusts(_ address: String) -> Bool {
        guard !self.networks.isEmpty, let bytes = IPAddress.parse(address) else { return false }
        return self.networks.contains { $0.contains(bytes) }
    }

    /// The client address of a request that came from `peer` with `headers`.
    public func clientAddress(peer: String?, headers: HTTPFields) -> String? {
        guard let peer, self.trusts(peer) else { return peer }
        let hops = Self.forwardedFor(headers)
        var client = peer
        for hop in hops.reversed() {
            guard IPAddress.parse(hop) != nil else { break }
            client = hop
            if !self.trusts(hop) { break }
        }
        return client
    }

    /// The proxy-recorded addresses, nearest last.
    static func forwardedFor(_ headers: HTTPFields) -> [String] {
        let forwarded = headers[values: .forwarded]
        if !forwarded.isEmpty {
            return forwarded.flatMap { $0.split(separator: ",") }.compactMap { element in
                for pair in element.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[0].trimmingWhitespace().lowercased() == "for" else { continue }
                    return Self.unbracket(parts[1].trimmingWhitespace().trimmingQuotes())
                }
                return nil
            }
        }
        let xff = headers[values: .xForwardedFor]
        if !xff.isEmpty {
            return xff.flatMap { $0.split(separator: ",") }.map { Self.unbracket(String($0.trimmingWhitespace())) }
        }
        return headers[.xRealIP].map { [Self.unbracket($0.trimmingWhitespace())] } ?? []
    }

    /// `[2001:db8::1]:4711` → `2001:db8::1`; `192.0.2.1:4711` → `192.0.2.1`; others unchanged.
    static func unbracket(_ value: some StringProtocol) -> String {
        if value.hasPrefix("["), let end = value.firstIndex(of: "]") {
            return String(value[value.index(after: value.startIndex)..<end])
        }
        if value.filter({ $0 == ":" }).count == 1, let colon = value.firstIndex(of: ":") {
            return String(value[..<colon])
        }
        return String(value)
    }
}

/// A `--trusted-proxy` entry that is neither an IP address nor a network.
public struct TrustedProxiesError: Error, Sendable, CustomStringConvertible {
    /// The entry as given.
    public var entry: String
    public var description: String {
        "'\(self.entry)' is not an IP address or network (e.g. 127.0.0.1, ::1, 10.0.0.0/8, fd00::/8)"
    }
}

extension HTTPField.Name {
    static var forwarded: Self { .init("Forwarded")! }
    static var xForwardedFor: Self { .init("X-Forwarded-For")! }
    static var xRealIP: Self { .init("X-Real-IP")! }
    /// `X-Request-Id`.
    public static var xRequestID: Self { .init("X-Request-Id")! }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        let text = Substring(self)
        guard let start = text.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let end = text.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return text[start...end]
    }

    func trimmingQuotes() -> Substring {
        let text = Substring(self)
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") else { return text }
        return text.dropFirst().dropLast()
    }
}

/// Textual IP addresses to bytes (4 for IPv4, 16 for IPv6), by inet_pton's rules.
enum IPAddress {
    static func parse(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.count <= 45 else { return nil }
        if let v4 = self.parseV4(Substring(text)) { return v4 }
        return self.parseV6(text)
    }

    static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part.count == 1 || !part.hasPrefix("0"), let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    static func parseV6(_ text: String) -> [UInt8]? {
        var text = Substring(text)
        if let percent = text.firstIndex(of: "%") {  // a zone id, e.g. fe80::1%eth0
            let zone = text[text.index(after: percent)...]
            guard !zone.isEmpty, zone.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }) else { return nil }
            text = text[..<percent]
        }
        var tail: [UInt8] = []
        // An embedded IPv4 address at the end (`::ffff:192.0.2.1`).
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = self.parseV4(text[text.index(after: lastColon)...]) else { return nil }
            tail = v4
            text = text[...lastColon]
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
        }
        var halves = [String(text)]
        if let gap = text.firstRange(of: "::") {
            halves = [String(text[..<gap.lowerBound]), String(text[gap.upperBound...])]
            guard halves[1].firstRange(of: "::") == nil else { return nil }
        }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), let value = UInt16(group, radix: 16), group.allSatisfy(\.isHexDigit) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        let rest = halves.count == 2 ? groups(halves[1]) : []
        guard let rest else { return nil }
        let total = 8 - tail.count / 2
        var all: [UInt16]
        if halves.count == 2 {
            guard head.count + rest.count < total else { return nil }
            all = head + Array(repeating: 0, count: total - head.count - rest.count) + rest
        } else {
            guard head.count == total else { return nil }
            all = head
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } + tail
    }
}
