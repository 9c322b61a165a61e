import Testing
@testable import ModelFormats

@Suite struct RawJSONTests {
    @Test func keepsCanonicallyEquivalentKeysApartAndInOrder() throws {
        // ";" and the Greek question mark, composed and decomposed "é": Swift's String equality
        // (and Foundation's dictionaries) would merge each pair.
        let json = try RawJSON.parse(Array(#"{";": 1, "\u037e": 2, "é": 3, "e\u0301": 4}"#.utf8))
        let members = try #require(json.members)
        #expect(members.map(\.key) == [[0x3B], [0xCD, 0xBE], [0xC3, 0xA9], [0x65, 0xCC, 0x81]])
        #expect(members.map { $0.value.int } == [1, 2, 3, 4])
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let json = try RawJSON.parse(Array(#"["a\"b\\c\/d\n\t", "\ud83d\ude00", "\u00e9", 1.5e3, -2, true, false, null, {}, []]"#.utf8))
        let items = try #require(json.array)
        #expect(items[0].string == "a\"b\\c/d\n\t")
        #expect(items[1].string == "😀")
        #expect(items[2].bytes == [0xC3, 0xA9])
        #expect(items[3].double == 1500 && items[4].int == -2)
        #expect(items[5].bool == true && items[6].bool == false && items[7].isNull)
        #expect(items[8].members?.isEmpty == true && items[9].array?.isEmpty == true)
    }

    @Test(arguments: ["", "{", "[1,", #"{"a" 1}"#, #""\ud800""#, #""\x""#, "tru", "[1] 2", "\"a\u{01}\"", String(repeating: "[", count: 600)])
    func rejectsMalformedJSON(_ text: String) {
        #expect(throws: GGUFError.self) { try RawJSON.parse(Array(text.utf8)) }
    }
}
