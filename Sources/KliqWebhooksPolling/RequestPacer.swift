import DequeModule
import Synchronization

/// Paces requests to one API: at most `rate` in any one-second window, as the API sees them arrive,
/// and none while a pause the API asked for (`Retry-After`) runs. One for all of a client's requests,
/// whoever makes them.
///
/// A request counts from when it starts until one second after it ends. Since it reaches the API
/// somewhere in between, `rate` requests that arrive within one second were all counted at once when
/// the last of them started — so the limit holds at the API, whatever the network's delays.
final class RequestPacer: Sendable {
    private struct State {
        var inFlight = 0
        var ended: Deque<ContinuousClock.Instant> = []
        var pausedUntil: ContinuousClock.Instant?
    }

    /// Requests per second; `nil`: no limit (pauses still hold).
    let rate: Int?
    private let state = Mutex(State())

    init(rate: Int?) {
        precondition(rate.map { $0 > 0 } ?? true, "a rate is at least 1")
        self.rate = rate
    }

    /// Runs `request` once its turn has come.
    func paced<T>(_ request: () async throws -> T) async throws -> T {
        try await self.start()
        defer { self.end() }
        return try await request()
    }

    private func start() async throws {
        while true {
            let wait: Duration? = self.state.withLock { state in
                let now = ContinuousClock.now
                if let until = state.pausedUntil, until > now { return now.duration(to: until) }
                guard let rate = self.rate else {
                    state.inFlight += 1
                    return nil
                }
                while let first = state.ended.first, first + .seconds(1) <= now { state.ended.removeFirst() }
                guard state.inFlight + state.ended.count >= rate else {
                    state.inFlight += 1
                    return nil
                }
                return state.ended.first.map { now.duration(to: $0 + .seconds(1)) } ?? .milliseconds(10)
            }
            guard let wait else { return }
            try await Task.sleep(for: wait)
        }
    }

    private func end() {
        self.state.withLock { state in
            state.inFlight -= 1
            if self.rate != nil { state.ended.append(.now) }
        }
    }

    /// Whether a pause the API asked for runs now.
    var isPaused: Bool { self.state.withLock { state in state.pausedUntil.map { $0 > .now } ?? false } }

    /// Holds every request back for `duration` (or longer, if a longer pause runs).
    func pause(for duration: Duration) {
        self.state.withLock { state in
            let until = ContinuousClock.now + duration
            if state.pausedUntil.map({ $0 < until }) ?? true { state.pausedUntil = until }
        }
    }
}
