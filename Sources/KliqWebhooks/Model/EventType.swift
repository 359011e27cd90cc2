/// An event type, e.g. `cv.job.completed`. Unknown types still decode, are stored, and can be
/// subscribed to with `EventType("…")`.
public struct EventType: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { self.rawValue }

    public static var observationCreated: Self { .init("observation.created") }
    public static var observationUpdated: Self { .init("observation.updated") }
    public static var cvJobCompleted: Self { .init("cv.job.completed") }
    public static var cvJobFailed: Self { .init("cv.job.failed") }
    public static var visitSubmitted: Self { .init("visit.submitted") }

    /// Whether this is a CV-job event (`cv.job.*`), whose payload is a job and updates `jobs/`.
    public var isCVJob: Bool { self.rawValue.hasPrefix("cv.job.") }
}
