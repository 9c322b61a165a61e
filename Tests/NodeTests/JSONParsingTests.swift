import Foundation
import Testing
@testable import Node

@Suite("JSON parsing that keeps key order")
struct JSONParsingTests {
    @Test("a value survives serializing and parsing, keys in their order")
    func roundTrip() throws {
        let value: JSON = ["id": "chatcmpl-1", "z": 1, "a": [true, false, nil, .double(2.5), -7, "é\n\"🦙\\"], "nested": ["b": ["c": .double(1e-7)]]]
        let parsed = try JSON.parse(Data(value.serialized().utf8))
        #expect(parsed == value)
        #expect(parsed.serialized().hasPrefix(#"{"id":"chatcmpl-1","z":1,"a""#))
    }

    @Test("escapes, surrogate pairs and numbers read as JSON means them")
    func escapes() throws {
        let parsed = try JSON.parse(Data(#"{"s": "\u00e9\ud83e\udd99\t", "n": 12345678901, "f": 1.5e3, "neg": -0.25}"#.utf8))
        #expect(parsed["s"]?.stringValue == "é🦙\t")
        #expect(parsed["n"] == .int(12_345_678_901))
        #expect(parsed["f"] == .double(1500))
        #expect(parsed["neg"] == .double(-0.25))
    }

    @Test("malformed text is an error naming the byte", arguments: [#"{"a": }"#, "[1, 2", #"{"a" 1}"#, "nul", #""\ud800""#, "1 2", ""])
    func malformed(_ text: String) {
        #expect(throws: JSON.ParseError.self) { try JSON.parse(Data(text.utf8)) }
    }

    @Test("setting replaces a key in place, adds a new one at the end, and removes with nil")
    func setting() {
        let value: JSON = ["a": 1, "b": 2]
        #expect(value.setting("a", 3).serialized() == #"{"a":3,"b":2}"#)
        #expect(value.setting("c", 4).serialized() == #"{"a":1,"b":2,"c":4}"#)
        #expect(value.setting("a", nil).serialized() == #"{"b":2}"#)
    }
}
