/// One detection in a completed job's result.
public struct Detection: Sendable {
    public var objectName: String
    /// 0…1.
    public var confidence: Double?
    public var boundingBox: BoundingBox?
    public var attributes: Attributes
    /// The detection as sent.
    public var raw: JSONValue

    public init(json: JSONValue) throws(WebhookError) {
        guard let objectName = json["objectName"]?.stringValue else {
            throw WebhookError(.unexpectedShape, "a detection has no string \"objectName\"")
        }
        self.objectName = objectName
        self.confidence = json["confidence"]?.doubleValue
        self.boundingBox = json["boundingBox"].flatMap(BoundingBox.init(json:))
        self.attributes = Attributes(values: json["attributes"]?.objectValue ?? [:])
        self.raw = json
    }
}

/// A detection's box, in pixels.
public struct BoundingBox: Sendable, Hashable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    init?(json: JSONValue) {
        guard let x = json["x"]?.doubleValue, let y = json["y"]?.doubleValue,
            let width = json["width"]?.doubleValue, let height = json["height"]?.doubleValue
        else { return nil }
        self.init(x: x, y: y, width: width, height: height)
    }
}

/// A detection's model-specific `attributes`: open-ended JSON, with accessors for the shelf models'.
///
/// `null` and absent differ: `priceTag` is `nil` in both cases, `self["priceTag"]` is `.null` only
/// when KLIQ sent `null` (no price tag seen), and ``hasNullPriceTag`` says so directly.
public struct Attributes: Sendable, Hashable {
    public var values: [String: JSONValue]

    public init(values: [String: JSONValue]) { self.values = values }

    public subscript(key: String) -> JSONValue? { self.values[key] }

    /// Number of facings (shelf models).
    public var facings: Int? { self.values["facings"]?.intValue }
    /// Shelf position, e.g. `eye-level` (shelf models).
    public var shelfPosition: String? { self.values["shelfPosition"]?.stringValue }
    /// The price on the tag, e.g. `2.49`; `nil` when the tag was `null` or absent.
    public var priceTag: String? { self.values["priceTag"]?.stringValue }
    /// Whether KLIQ reported `priceTag: null` (the tag was looked for and not found).
    public var hasNullPriceTag: Bool { self.values["priceTag"] == .null }
}
