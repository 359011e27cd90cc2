/// A CV model name, e.g. `shelf-detection-v2`. New model names appear over time and are never rejected.
public struct Model: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { self.rawValue }

    /// Product detection on retail shelves (ShelfSignal).
    public static var shelfDetectionV2: Self { .init("shelf-detection-v2") }
    /// Building component identification (BuildingScan).
    public static var buildingInspectionV1: Self { .init("building-inspection-v1") }
    /// Damage and condition grading (BuildingScan).
    public static var damageAssessmentV1: Self { .init("damage-assessment-v1") }
    /// A customer-trained model.
    public static var custom: Self { .init("custom") }
}
