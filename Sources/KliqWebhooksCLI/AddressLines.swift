import Foundation
import NIOCore
import Synchronization

/// `serve`'s address lines on stdout, printed once every listener has bound — the webhook listener's
/// first, then the metrics one — so a listener that cannot bind leaves no line claiming that serve is
/// up. Also says which listeners bound, for the one-line error when one did not.
final class AddressLines: Sendable {
    private struct State {
        var webhook: String?
        var metrics: String?
        var printed = false
    }

    private let expectsMetrics: Bool
    private let state = Mutex(State())

    init(expectsMetrics: Bool) { self.expectsMetrics = expectsMetrics }

    /// The webhook listener bound.
    func webhook(_ line: String) { self.bound { $0.webhook = line } }

    /// The metrics listener bound.
    func metrics(_ line: String) { self.bound { $0.metrics = line } }

    private func bound(_ change: (inout State) -> Void) {
        let lines = self.state.withLock { state -> [String] in
            change(&state)
            guard !state.printed, let webhook = state.webhook, !self.expectsMetrics || state.metrics != nil else { return [] }
            state.printed = true
            return [webhook] + (state.metrics.map { [$0] } ?? [])
        }
        for line in lines { Self.write(line) }
    }

    var webhookBound: Bool { self.state.withLock { $0.webhook != nil } }
    var metricsBound: Bool { self.state.withLock { $0.metrics != nil } }

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
