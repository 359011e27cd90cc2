import Foundation
import NIOCore
import Synchronization

/// `serve`'s address lines on stdout, printed once every listener has bound — the webhook listener's
/// first, then metrics, then the console — so a listener that cannot bind leaves no line claiming that
/// serve is up. Also says which listeners bound, for the one-line error when one did not.
final class AddressLines: Sendable {
    /// serve's listeners, in the order their lines are printed.
    enum Listener: Int, Comparable, CaseIterable, Sendable {
        case webhook, metrics, console
        static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    private struct State {
        var lines: [Listener: String] = [:]
        var printed = false
    }

    private let expected: Set<Listener>
    private let state = Mutex(State())

    init(expecting expected: Set<Listener>) { self.expected = expected }

    /// `listener` bound; `line` says where.
    func bound(_ listener: Listener, _ line: String) {
        let lines = self.state.withLock { state -> [String] in
            state.lines[listener] = line
            guard !state.printed, self.expected.allSatisfy({ state.lines[$0] != nil }) else { return [] }
            state.printed = true
            return state.lines.sorted { $0.key < $1.key }.map(\.value)
        }
        for line in lines { Self.write(line) }
    }

    /// The expected listeners that have not bound.
    var unbound: [Listener] { self.state.withLock { state in self.expected.filter { state.lines[$0] == nil }.sorted() } }

    /// Unbuffered, so a supervisor or test reading a pipe sees the line at once.
    private static func write(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    /// Why a listener could not start, in words that say what to do.
    static func reason(_ error: any Error) -> String {
        if let error = error as? IOError {
            switch error.errnoCode {
            case EADDRINUSE: return "the port is in use by another process (choose another port, or 0 for a free one)"
            case EADDRNOTAVAIL: return "this machine has no such address (use 127.0.0.1, 0.0.0.0 or one of its own addresses)"
            case EACCES: return "permission denied (ports below 1024 need privileges; use a higher port behind a reverse proxy)"
            default: return "\(error)"
            }
        }
        if let error = error as? SocketAddressError.UnknownHost {
            return "'\(error.host)' is neither an IP address nor a host name this machine can resolve"
        }
        if let error = error as? SocketAddressError, case .unknown(let host, _) = error {
            return "'\(host)' is neither an IP address nor a host name this machine can resolve"
        }
        return "\(error)"
    }
}
