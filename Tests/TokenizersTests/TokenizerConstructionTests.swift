import Testing
@testable import Tokenizers

/// Synthetic vocabularies: construction errors, defaults and robustness on malformed input.
@Suite("Tokenizer construction")
struct TokenizerConstructionTests {
    /// The 256 byte characters as tokens 0…255, then `extra`.
    static func byteVocabulary(
        extra: [String] = [], types: [Int32]? = nil, merges: [String] = ["h e", "l l", "he ll", "hell o"],
        pre: String? = "gpt-2"
    ) -> Vocabulary {
        let bytes = (0..<256).map { ByteLevelEncoding.encode([UInt8($0)]) }
        return Vocabulary(model: "gpt2", preTokenizer: pre, tokens: bytes + extra, tokenTypes: types, merges: merges)
    }

    @Test("merges are applied by rank")
    func mergesByRank() throws {
        let v = Self.byteVocabulary(extra: ["he", "ll", "hell", "hello"])
        let t = try Tokenizer(vocabulary: v)
        #expect(t.encode("hello", addSpecial: false, parseSpecial: false) == [259])
        #expect(t.encode("hellx", addSpecial: false, parseSpecial: false) == [258, Int32(UInt8(ascii: "x"))])
        #expect(t.decode([259, 32]) == "hello ")
        #expect(t.tokenText(259) == "hello")
        #expect(t.pieceBytes(Int32(ByteLevelEncoding.byteToScalar[32] == 0x120 ? 32 : 0)) == [32])
    }

    @Test("unknown pre-tokenizer names the value and the supported list")
    func unknownPre() {
        let error = expectTokenizerError(.unknownPreTokenizer) {
            _ = try Tokenizer(vocabulary: Self.byteVocabulary(pre: "made-up-pre"))
        }
        #expect(error?.message.contains("made-up-pre") == true)
        #expect(error?.message.contains("smollm") == true)
        #expect(Tokenizer.supportedPreTokenizers.contains("llama-bpe"))
    }

    @Test("missing pre-tokenizer falls back to 'default' with a warning")
    func missingPre() throws {
        let t = try Tokenizer(vocabulary: Self.byteVocabulary(pre: nil))
        #expect(t.preTokenizerName == "default")
        #expect(t.warnings.contains { $0.contains("tokenizer.ggml.pre") })
    }

    @Test("unsupported models, missing merges and short type arrays are errors")
    func constructionErrors() {
        expectTokenizerError(.unsupportedModel) {
            var v = Self.byteVocabulary()
            v.model = "bert"
            _ = try Tokenizer(vocabulary: v)
        }
        expectTokenizerError(.missingKey) {
            _ = try Tokenizer(vocabulary: Self.byteVocabulary(merges: []))
        }
        expectTokenizerError(.invalidVocabulary) {
            _ = try Tokenizer(vocabulary: Self.byteVocabulary(types: [1, 1, 1]))
        }
        expectTokenizerError(.invalidVocabulary) {
            _ = try Tokenizer(vocabulary: Vocabulary(model: "gpt2", tokens: [], merges: ["a b"]))
        }
    }

    @Test("malformed merges and strange tokens never crash")
    func malformedMerges() throws {
        let v = Self.byteVocabulary(
            extra: ["", "", "zz"],
            merges: ["", "nospace", " leading", "a b", "a b", "q w e", "z z", "zz zz", "Ā ā"])
        let t = try Tokenizer(vocabulary: v)
        #expect(t.tokenText(256) == "[EMPTY_256]")
        // "zz" is a token; "zzzz" is not, so the merge result falls back to single characters.
        #expect(t.encode("zz", addSpecial: false, parseSpecial: false) == [258])
        let ids = t.encode("zzzz ab qwe \u{0}\u{1}", addSpecial: false, parseSpecial: false)
        // The merge "Ā ā" (bytes 0x00 0x01) yields a string that is no token and has no
        // single-ASCII-character fallback, so llama.cpp (and this port) drop those bytes.
        #expect(t.decode(ids) == "zzzz ab qwe ")
    }

    @Test("special ids: defaults, out-of-range values, BOS/EOS flags")
    func specialIDs() throws {
        var v = Self.byteVocabulary(extra: ["<s>", "</s>", "<|im_end|>"],
                                    types: Array(repeating: 1, count: 256) + [3, 3, 3])
        v.bosTokenID = 256
        v.eosTokenID = 99_999
        v.addBOS = true
        v.addEOS = true
        let t = try Tokenizer(vocabulary: v)
        #expect(t.bosTokenID == 256)
        // 99,999 is out of range: llama.cpp keeps its default (11) and warns.
        #expect(t.eosTokenID == 11)
        #expect(t.warnings.contains { $0.contains("99999") })
        #expect(t.eotTokenID == 258)
        #expect(t.isEndOfGeneration(257))  // "</s>" is in llama.cpp's EOG list
        #expect(t.isEndOfGeneration(258))
        #expect(t.isEndOfGeneration(11))
        #expect(!t.isEndOfGeneration(256))
        #expect(t.encode("hi", addSpecial: true, parseSpecial: false) == [256, 104, 105, 11])
        #expect(t.encode("hi", addSpecial: false, parseSpecial: false) == [104, 105])
        // Control tokens are text unless parseSpecial.
        #expect(t.encode("<s>", addSpecial: false, parseSpecial: true) == [256])
        #expect(t.encode("<s>", addSpecial: false, parseSpecial: false).count == 3)
        #expect(t.decode([256, 104, 258], skipSpecial: true) == "h")
        #expect(t.decode([256, 104, 258]) == "<s>h<|im_end|>")
        #expect(t.isControl(256))
        #expect(!t.isControl(104))
    }

    @Test("out-of-range ids decode to nothing")
    func outOfRangeIDs() throws {
        let t = try Tokenizer(vocabulary: Self.byteVocabulary())
        #expect(t.decode([-1, 104, 1_000_000, 105]) == "hi")
        #expect(t.pieceBytes(-5).isEmpty)
        #expect(t.tokenText(Int32.max) == "")
        #expect(!t.isEndOfGeneration(-1))
    }

    @Test("user-defined tokens split the text even without parseSpecial; longest first")
    func userDefinedTokens() throws {
        let v = Self.byteVocabulary(extra: ["  ", "    ", "<tag>"],
                                    types: Array(repeating: 1, count: 256) + [4, 4, 4])
        let t = try Tokenizer(vocabulary: v)
        #expect(t.encode("a     b<tag>", addSpecial: false, parseSpecial: false) == [97, 257, 32, 98, 258])
        #expect(t.decode([97, 257, 32, 98, 258], skipSpecial: true) == "a     b<tag>")
    }
}

@Suite("Unicode classification")
struct CodepointFlagsTests {
    @Test("categories used by the pre-tokenizers", arguments: [
        (UInt32(0x41), "L"), (0x7A, "L"), (0x30, "N"), (0x21, "P"), (0x24, "S"), (0x20, "Z"), (0x0A, "C"),
        (0xE9, "L"), (0x0301, "M"), (0x0663, "N"), (0x4E2D, "L"), (0x3000, "Z"), (0x00A0, "Z"),
        (0x1F600, "S"), (0x1F3FD, "S"), (0x200D, "C"), (0xFE0F, "M"), (0x20E3, "M"), (0x2164, "N"),
        (0xFF08, "P"), (0x10400, "L"), (0x1C89, "U"),  // U+1C89 is new in Unicode 16: unassigned for llama.cpp
    ])
    func category(_ cp: UInt32, _ expected: String) {
        let f = CodepointFlags.of(cp)
        let got: String
        if f.contains(.letter) { got = "L" } else if f.contains(.number) { got = "N" } else if f.contains(.punctuation) { got = "P" } else if f.contains(.symbol) { got = "S" } else if f.contains(.mark) { got = "M" } else if f.contains(.separator) { got = "Z" } else if f.contains(.control) { got = "C" } else { got = "U" }
        #expect(got == expected, "U+\(String(cp, radix: 16))")
    }

    @Test("whitespace set is llama.cpp's")
    func whitespace() {
        let expected: Set<UInt32> = [9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                     0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
        let got = Set((UInt32(0)..<0x10000).filter { CodepointFlags.of($0).isWhitespace })
        #expect(got == expected)
    }
}
