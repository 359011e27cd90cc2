@testable import KliqWebhooks
import KliqWebhooksTesting
import Testing

struct JSONReaderTests {
    static let invalid: [(String, [UInt8])] = [
        ("empty", []),
        ("truncated object", Array(#"{"id":"a""#.utf8)),
        ("trailing comma", Array(#"{"a":1,}"#.utf8)),
        ("trailing data", Array(#"{"a":1} x"#.utf8)),
        ("single quotes", Array("{'a':1}".utf8)),
        ("leading zero", Array(#"{"a":01}"#.utf8)),
        ("plus sign", Array(#"{"a":+1}"#.utf8)),
        ("bare fraction", Array(#"{"a":1.}"#.utf8)),
        ("NaN", Array(#"{"a":NaN}"#.utf8)),
        ("raw newline in string", Array("{\"a\":\"x\ny\"}".utf8)),
        ("raw NUL in string", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0x00, 0x22, 0x7D]),
        ("invalid escape", Array(#"{"a":"\q"}"#.utf8)),
        ("lone high surrogate", Array(#"{"a":"\ud800"}"#.utf8)),
        ("lone low surrogate", Array(#"{"a":"\udc00"}"#.utf8)),
        ("invalid UTF-8", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D]),
        ("overlong UTF-8", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC0, 0xAF, 0x22, 0x7D]),
        ("UTF-8 surrogate", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D]),
        ("duplicate key", Array(#"{"id":"a","id":"b"}"#.utf8)),
        ("duplicate key, one escaped", Array(#"{"id":"a","\u0069d":"b"}"#.utf8)),
        ("duplicate key in a nested, skipped object", Array(#"{"data":{"result":[{"x":1,"y":2,"x":3}]}}"#.utf8)),
        ("duplicate key after sixteen others", Array(("{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"k7\":0}").utf8)),
        ("too deep", Array((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8)),
        ("huge number", Array(("[1" + String(repeating: "0", count: 600) + "]").utf8)),
    ]

    @Test(arguments: invalid.map(\.0))
    func refusesInvalidJSONWithAReason(_ name: String) {
        let bytes = Self.invalid.first { $0.0 == name }!.1
        #expect(throws: JSONReader.SyntaxError.self) { try JSONReader(bytes).validate() }
    }

    @Test func readsMembersAsByteRangesWithoutReencoding() throws {
        let text = #"{ "a" : 1.50 , "b":{"c":[true,null]}, "\u0064":"x\"y" }"#
        let bytes = Array(text.utf8)
        let reader = JSONReader(bytes)
        try reader.validate()
        let members = try reader.members()
        #expect(members.map(\.key) == ["a", "b", "d"])
        #expect(String(decoding: bytes[members[0].value], as: UTF8.self) == "1.50")
        #expect(String(decoding: bytes[members[1].value], as: UTF8.self) == #"{"c":[true,null]}"#)
        #expect(reader.string(at: members[2].value) == "x\"y")
    }

    @Test func buildsValues() throws {
        let value = try JSONValue(parsing: Array(#"{"s":"\u00e9\ud83c\udf4a","n":-1.5e2,"a":[1,false,null],"o":{}}"#.utf8))
        #expect(value["s"] == .string("é🍊"))
        #expect(value["n"] == .number(-150))
        #expect(value["a"] == .array([.number(1), .bool(false), .null]))
        #expect(value["o"] == .object([:]))
        #expect(value["missing"] == nil)
    }

    @Test func keysThatOnlyLookAlikeAreNotDuplicates() throws {
        // Same length, different bytes; a prefix; sibling objects reusing keys; escapes that differ.
        let text = #"{"ab":1,"ba":2,"a":3,"o":[{"ab":1},{"ab":2}],"\u0061c":4,"x":{"ab":{"ab":1}}}"#
        try JSONReader(Array(text.utf8)).validate()
        let many = "{" + (0..<40).map { "\"k\($0)\":{\"k\($0)\":1}" }.joined(separator: ",") + "}"
        try JSONReader(Array(many.utf8)).validate()
    }

    /// Members of a range inside already-checked text, read without checking again, are the same.
    @Test func checkedMembersMatchFullyCheckedOnes() throws {
        for fixture in try fixtures.all() {
            let body = fixture.body
            let reader = JSONReader(body)
            guard let data = try reader.members().first(where: { $0.key == "data" })?.value, body[data.lowerBound] == UInt8(ascii: "{") else {
                continue
            }
            let full = try reader.members(of: data)
            let quick = try reader.members(of: data, checked: true)
            #expect(full.map(\.key) == quick.map(\.key), "\(fixture.name)")
            #expect(full.map(\.value) == quick.map(\.value), "\(fixture.name)")
        }
    }

    @Test func acceptsModerateNesting() throws {
        let depth = 100
        let bytes = Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        try JSONReader(bytes).validate()
    }
}
