/// A CV job's status: `queued` → `processing` → `completed` | `failed`. Unknown statuses are kept.
public struct JobStatus: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { self.rawValue }

    public static var queued: Self { .init("queued") }
    public static var processing: Self { .init("processing") }
    public static var completed: Self { .init("completed") }
    public static var failed: Self { .init("failed") }

    /// Whether the job is finished: `completed` or `failed`.
    public var isTerminal: Bool { self == .completed || self == .failed }

    /// Progress along the lifecycle, to order two states with the same timestamp.
    var rank: Int {
        switch self {
        case .queued: 0
        case .completed, .failed: 2
        default: 1
        }
    }
}
