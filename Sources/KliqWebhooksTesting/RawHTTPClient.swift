#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A deliberately small HTTP/1.1 client over a plain socket, for black-box tests of a running receiver
/// on loopback. It sends exactly the bytes it is given (so tests can send chunked, oversized or broken
/// requests) and reads one response. The blocking socket work runs on a thread of its own, never on
/// Swift's cooperative pool, so a server in the same process keeps being served while a test waits.
public struct RawHTTPClient: Sendable {
    /// A parsed response.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public var bodyText: String { String(decoding: self.body, as: UTF8.self) }
        public func header(_ name: String) -> String? { self.headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    public var host: String
    public var port: Int
    /// Receive time-out in seconds.
    public var timeout: Int

    public init(host: String = "127.0.0.1", port: Int, timeout: Int = 10) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    /// Sends a `POST` of `body` to `path` with `headers` (Content-Length is added unless `chunked`).
    public func post(_ path: String, body: [UInt8], headers: [(String, String)] = [], chunked: Bool = false) async throws -> Response {
        var head = "POST \(path) HTTP/1.1\r\nHost: \(self.host):\(self.port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var bytes: [UInt8]
        if chunked {
            head += "Transfer-Encoding: chunked\r\n\r\n"
            bytes = Array(head.utf8)
            var offset = 0
            while offset < body.count {
                let chunk = body[offset..<min(body.count, offset + 16 * 1024)]
                bytes += Array((String(chunk.count, radix: 16) + "\r\n").utf8) + chunk + Array("\r\n".utf8)
                offset += chunk.count
            }
            bytes += Array("0\r\n\r\n".utf8)
        } else {
            head += "Content-Length: \(body.count)\r\n\r\n"
            bytes = Array(head.utf8) + body
        }
        return try await self.send(bytes)
    }

    /// Sends a request with no body.
    public func request(_ method: String, _ path: String) async throws -> Response {
        try await self.send(Array("\(method) \(path) HTTP/1.1\r\nHost: \(self.host):\(self.port)\r\nConnection: close\r\n\r\n".utf8))
    }

    /// Sends `bytes` as they are and reads one response (until the server closes or the body is complete).
    public func send(_ bytes: [UInt8]) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try self.exchange(bytes) }) }
            thread.start()
        }
    }

    /// Sends `parts` one after the other, pausing `pause` between two (calling `duringPause` at the start of
    /// each pause), then reads one response: a slow client, e.g. one whose upload spans a shutdown.
    public func send(_ parts: [[UInt8]], pausing pause: Duration, duringPause: @escaping @Sendable () -> Void = {}) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    try self.exchange(parts.first ?? []) { fd in
                        for part in parts.dropFirst() {
                            duringPause()
                            let (seconds, attoseconds) = pause.components
                            usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
                            guard Self.write(part, to: fd) else { return }
                        }
                    }
                })
            }
            thread.start()
        }
    }

    private static func write(_ bytes: [UInt8], to fd: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            // The server may answer (e.g. 413) and close before reading everything: read what it said.
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// A connected TCP socket to the server, sending nothing (e.g. to hold a connection open, or to see
    /// whether the server still accepts). The caller closes it.
    public func connect() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(self.port).bigEndian)
        inet_pton(AF_INET, self.host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw Failure("connect \(self.host):\(self.port): errno \(code)")
        }
        return fd
    }

    private func exchange(_ bytes: [UInt8], more: (Int32) -> Void = { _ in }) throws -> Response {
        let fd = try self.connect()
        defer { close(fd) }
        var tv = timeval(tv_sec: self.timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // A server that answered early (a 413 before reading) stops reading: stop sending after a stall of
        // a few seconds and read its answer.
        var stall = timeval(tv_sec: min(self.timeout, 3), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &stall, socklen_t(MemoryLayout<timeval>.size))
        if Self.write(bytes, to: fd) { more(fd) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            received += buffer[0..<n]
            if let response = Self.parse(received), response.complete { return response.response }
        }
        guard let response = Self.parse(received) else { throw Failure("no HTTP response (\(received.count) bytes)") }
        return response.response
    }

    private static func parse(_ bytes: [UInt8]) -> (response: Response, complete: Bool)? {
        let separator = Array("\r\n\r\n".utf8)
        guard let end = bytes.firstRange(of: separator) else { return nil }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        var headers: [(String, String)] = []
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")))
        }
        let body = Array(bytes[end.upperBound...])
        let length = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) }
        let response = Response(status: status, headers: headers, body: length.map { Array(body.prefix($0)) } ?? body)
        return (response, length.map { body.count >= $0 } ?? false)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

extension String {
    fileprivate func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }

    fileprivate func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text.removeFirst() }
        while text.last == set { text.removeLast() }
        return String(text)
    }
}
