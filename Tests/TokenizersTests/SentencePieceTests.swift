import Testing
@testable import Tokenizers

/// Synthetic SentencePiece (`tokenizer.ggml.model = llama`) vocabularies: score-ordered merging,
/// the space prefix, byte fallback, decoding rules and robustness on malformed vocabularies.
@Suite("SentencePiece tokenizer")
struct SentencePieceTests {
    static let byteTokens = (0..<256).map { String(format: "<0x%02X>", $0) }

    /// `<unk> <s> </s>`, the 256 byte tokens (ids 3…258), then `pieces` with their scores.
    static func vocabulary(
        _ pieces: [(String, Float)], extraSpecial: [(String, Int32)] = [], addSpacePrefix: Bool? = nil,
        withByteTokens: Bool = true, name: String? = nil
    ) -> Vocabulary {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [Int32] = [2, 3, 3]
        var scores: [Float] = [0, 0, 0]
        if withByteTokens {
            tokens += byteTokens
            types += [Int32](repeating: 6, count: 256)
            scores += [Float](repeating: 0, count: 256)
        }
        for (p, s) in pieces {
            tokens.append(p)
            types.append(1)
            scores.append(s)
        }
        for (p, t) in extraSpecial {
            tokens.append(p)
            types.append(t)
            scores.append(0)
        }
        return Vocabulary(
            model: "llama", tokens: tokens, tokenTypes: types, scores: scores, unknownTokenID: 0,
            addSpacePrefix: addSpacePrefix, generalName: name)
    }

    static let basic: [(String, Float)] = [
        ("▁", -1), ("h", -2), ("e", -2), ("l", -2), ("o", -2), ("▁h", -3), ("▁he", -3.5), ("he", -4), ("ll", -1),
        ("llo", -2), ("hello", -5), ("▁hello", -6), ("x", -9),
    ]

    func id(_ t: Tokenizer, _ text: String) throws -> Int32 {
        try #require(t.tokenID(forText: text), "no token \(text)")
    }

    @Test("defaults: BOS 1, EOS 2, unknown 0, add BOS, space prefix")
    func defaults() throws {
        let t = try Tokenizer(vocabulary: Self.vocabulary(Self.basic))
        #expect(t.bosTokenID == 1)
        #expect(t.eosTokenID == 2)
        #expect(t.unknownTokenID == 0)
        #expect(t.addBOS)
        #expect(!t.addEOS)
        #expect(t.addSpacePrefix)
        #expect(t.warnings.isEmpty)
        #expect(t.encode("", addSpecial: true, parseSpecial: false) == [1])
        #expect(t.encode("", addSpecial: false, parseSpecial: false) == [])
    }

    @Test("merges follow scores, not order; the space prefix joins the first word")
    func mergesByScore() throws {
        let t = try Tokenizer(vocabulary: Self.vocabulary(Self.basic))
        // "▁hello": ll (-1), llo (-2), ▁h (-3), ▁he (-3.5) beats he (-4), then ▁hello (-6).
        #expect(t.encode("hello", addSpecial: false, parseSpecial: false) == [try id(t, "▁hello")])
        #expect(t.encode("hello", addSpecial: true, parseSpecial: false) == [1, try id(t, "▁hello")])
        // Without the prefix "hello" merges to the "hello" token.
        let np = try Tokenizer(vocabulary: Self.vocabulary(Self.basic, addSpacePrefix: false))
        #expect(np.encode("hello", addSpecial: false, parseSpecial: false) == [try id(np, "hello")])
        #expect(np.encode("hello hello", addSpecial: false, parseSpecial: false)
            == [try id(np, "hello"), try id(np, "▁hello")])
    }

    @Test("equal scores merge the leftmost pair first")
    func tiesLeftmost() throws {
        // "aaa": "aa" can form at 0-1 or 1-2; the leftmost wins, leaving "aa" + "a".
        let t = try Tokenizer(vocabulary: Self.vocabulary([("a", -1), ("aa", -1)], addSpacePrefix: false))
        #expect(t.encode("aaa", addSpecial: false, parseSpecial: false) == [try id(t, "aa"), try id(t, "a")])
    }

    @Test("byte fallback for characters without a token, reassembled when decoding")
    func byteFallback() throws {
        let t = try Tokenizer(vocabulary: Self.vocabulary(Self.basic))
        let ids = t.encode("hé😀", addSpecial: false, parseSpecial: false)
        // é = C3 A9, 😀 = F0 9F 98 80; byte token for 0xNN has id 3 + NN.
        let bytes: [Int32] = [0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80].map { 3 + $0 }
        let h = try id(t, "▁h")
        #expect(ids == [h] + bytes)
        #expect(t.decode(ids) == "hé😀")
        #expect(t.pieceBytes(3 + 0xC3) == [0xC3])
    }

    @Test("space prefix after special tokens only; decode drops one leading space")
    func prefixAfterSpecial() throws {
        let t = try Tokenizer(vocabulary: Self.vocabulary(Self.basic, extraSpecial: [("<x>", 3)]))
        let sp = try id(t, "▁")
        let x = try id(t, "<x>")
        let ids = t.encode("hello<x>hello", addSpecial: false, parseSpecial: true)
        #expect(ids == [try id(t, "▁hello"), x, try id(t, "▁hello")])
        // Only the first token's leading space is dropped.
        #expect(t.decode(ids) == "hello<x> hello")
        #expect(t.decode(ids, skipSpecial: true) == "hello hello")
        // A hidden first token still uses up the strip.
        #expect(t.decode([1, try id(t, "▁hello")], skipSpecial: true) == " hello")
        #expect(t.decode([sp, sp]) == " ")
        // Two spaces at the start: prefix + two ▁.
        #expect(t.encode("  x", addSpecial: false, parseSpecial: false).prefix(3) == [sp, sp, sp])
    }

    @Test("Phi-3: special tokens swallow the whitespace after them")
    func phi3RStrip() throws {
        let specials: [(String, Int32)] = [("<|end|>", 3), ("<|endoftext|>", 3), ("<|user|>", 4)]
        let phi = try Tokenizer(vocabulary: Self.vocabulary(Self.basic, extraSpecial: specials, name: "Phi3"))
        let other = try Tokenizer(vocabulary: Self.vocabulary(Self.basic, extraSpecial: specials, name: "llama"))
        let sp = try id(phi, "▁")
        let end = try id(phi, "<|end|>")
        let eot = try id(phi, "<|endoftext|>")
        let hello = try id(phi, "▁hello")
        #expect(phi.encode("<|end|>  \n hello", addSpecial: false, parseSpecial: true) == [end, hello])
        #expect(phi.encode("<|endoftext|> hello", addSpecial: false, parseSpecial: true) == [eot, sp, hello])
        #expect(other.encode("<|end|> hello", addSpecial: false, parseSpecial: true) == [end, sp, hello])
        // User-defined tokens are split out even without parseSpecial.
        #expect(phi.encode("<|user|>   hello", addSpecial: false, parseSpecial: false) == [try id(phi, "<|user|>"), hello])
    }

    @Test("no byte tokens: unknown token instead of a crash")
    func missingByteTokens() throws {
        let t = try Tokenizer(vocabulary: Self.vocabulary(Self.basic, withByteTokens: false))
        let ids = t.encode("hé", addSpecial: false, parseSpecial: false)
        #expect(ids == [try id(t, "▁h"), 0, 0])
    }

    @Test("malformed vocabularies are errors or degrade, never crash")
    func malformed() throws {
        expectTokenizerError(.invalidVocabulary) {
            var v = Self.vocabulary(Self.basic)
            v.scores = [1, 2, 3]
            _ = try Tokenizer(vocabulary: v)
        }
        // No scores, odd byte-token texts, out-of-range specials, duplicate texts.
        var v = Vocabulary(
            model: "llama", tokens: ["<0x", "<0xZZ>", "<0x4", "a", "a", "▁"], tokenTypes: [6, 6, 6, 1, 1, 1],
            bosTokenID: 99, eosTokenID: -5, unknownTokenID: 1000)
        let t = try Tokenizer(vocabulary: v)
        #expect(t.bosTokenID == 1)
        #expect(t.decode([0, 1, 2, 3, 4, 5, 77, -1]) == "\0\0\u{4}aa ")
        #expect(t.encode("a a", addSpecial: true, parseSpecial: true) == [1, 5, 4, 5, 4])
        #expect(!t.warnings.isEmpty)
        v.tokens = ["x"]
        v.tokenTypes = [1]
        let tiny = try Tokenizer(vocabulary: v)
        #expect(tiny.encode("é x", addSpecial: true, parseSpecial: true).allSatisfy { $0 == 0 })
    }

    @Test("streaming holds back byte-fallback characters")
    func streaming() throws {
        let t = try Tokenizer(vocabulary: Self.vocabulary(Self.basic, addSpacePrefix: false))
        let text = "hello 😀é hello 👨‍👩‍👧"
        let ids = t.encode(text, addSpecial: false, parseSpecial: false)
        var stream = StreamingDetokenizer(tokenizer: t)
        var out = ""
        for id in ids {
            let chunk = stream.append(id)
            #expect(!chunk.unicodeScalars.contains("\u{FFFD}"))
            out += chunk
        }
        out += stream.finish()
        #expect(out == text)
        #expect(t.decode(ids) == text)
    }
}
