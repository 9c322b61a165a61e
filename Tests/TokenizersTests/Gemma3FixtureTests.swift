import Foundation
import Testing
@testable import Tokenizers

/// Gemma 3's SentencePiece vocabulary against reference ids and text from llama.cpp
/// (`scripts/gen-tokenizer-fixtures.py` → `Fixtures/gemma3-tokens.json`): Unicode, emoji,
/// byte fallback, whitespace runs (Gemma has user-defined tokens for them), code, and the turn
/// markers with `parseSpecial` and `addSpecial` on and off.
@Suite("Gemma 3 vs llama.cpp", .enabled(if: hasGemma3, "Gemma 3 model not found at \(gemma3Path)"))
struct Gemma3FixtureTests {
    static let cases: [FixtureCase] = gemma3Fixture?.cases ?? []

    @Test("fixture is present and large enough")
    func fixtureLoaded() throws {
        let fixture = try #require(gemma3Fixture, "missing or unreadable Fixtures/gemma3-tokens.json")
        #expect(Set(fixture.cases.map(\.text)).count >= 50)
        #expect(fixture.cases.contains { $0.add_special && !$0.parse_special })
        #expect(fixture.cases.contains { $0.add_special && $0.parse_special })
    }

    @Test("vocabulary facts match llama.cpp")
    func vocabularyFacts() throws {
        let t = try #require(gemma3)
        #expect(t.modelName == "llama")
        #expect(t.preTokenizerName == "default")
        #expect(t.vocabularySize == 262144)
        #expect(t.bosTokenID == 2)
        #expect(t.eosTokenID == 1)
        #expect(t.unknownTokenID == 3)
        #expect(t.paddingTokenID == 0)
        #expect(t.addBOS == true)
        #expect(t.addEOS == false)
        #expect(t.addSpacePrefix == false)
        #expect(t.tokenText(2) == "<bos>")
        #expect(t.tokenText(106) == "<end_of_turn>")
        #expect(t.eotTokenID == 106)
        // llama.cpp 0.3.36: <eos>, <end_of_turn> and "</s>" (212, detected by text, made control).
        #expect(t.endOfGenerationTokenIDs == [1, 106, 212])
        #expect(t.isControl(212))
        #expect(t.isControl(105))
        #expect(t.tokenID(forText: "<start_of_turn>") == 105)
        #expect(t.tokenID(forText: "<0x0A>") == 248)
        #expect(t.warnings.isEmpty, "\(t.warnings)")
    }

    @Test("encode matches llama_tokenize", arguments: cases)
    func encodeMatches(_ c: FixtureCase) throws {
        let t = try #require(gemma3)
        let got = t.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special)
        #expect(got == c.ids)
    }

    @Test("decode matches llama_detokenize", arguments: cases)
    func decodeMatches(_ c: FixtureCase) throws {
        let t = try #require(gemma3)
        #expect(t.decode(c.ids) == c.detokenized)
        #expect(t.decode(c.ids, skipSpecial: true) == c.detokenized_skip)
    }

    /// Every case without BOS, except texts with a literal `▁`, which decodes as a space.
    @Test("round trip decode(encode(x)) == x", arguments: cases.filter { !$0.add_special && !$0.text.contains("▁") })
    func roundTrip(_ c: FixtureCase) throws {
        let t = try #require(gemma3)
        // No space prefix, no BOS: SentencePiece with byte fallback is lossless.
        let ids = t.encode(c.text, addSpecial: false, parseSpecial: c.parse_special)
        #expect(t.decode(ids) == c.text)
    }

    @Test("piece bytes match llama_token_to_piece")
    func piecesMatch() throws {
        let t = try #require(gemma3)
        let fixture = try #require(gemma3Fixture)
        #expect(fixture.pieces.count > 300)
        for (key, hex) in fixture.pieces {
            let id = try #require(Int32(key))
            #expect(t.pieceBytes(id) == bytes(fromHex: hex), "token \(id) \(String(reflecting: t.tokenText(id)))")
        }
    }

    @Test("streams every fixture text without splitting a character", arguments: cases)
    func streams(_ c: FixtureCase) throws {
        let t = try #require(gemma3)
        var stream = StreamingDetokenizer(tokenizer: t)
        var text = ""
        for id in c.ids {
            let chunk = stream.append(id)
            #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "partial character emitted after token \(id)")
            #expect(stream.pendingByteCount <= 3)
            text += chunk
        }
        text += stream.finish()
        #expect(text == c.detokenized_skip)
    }

    @Test("byte-fallback characters are held back until complete")
    func byteFallbackHeldBack() throws {
        let t = try #require(gemma3)
        // Characters Gemma has no token for come out as <0xNN> tokens, one per byte.
        let text = "rare: \u{2FD5}\u{1D11E} x \u{E0041}"
        let ids = t.encode(text, addSpecial: false, parseSpecial: false)
        let byteTokens = ids.filter { t.tokenText($0).hasPrefix("<0x") }
        #expect(byteTokens.count >= 7, "expected byte fallback, got \(ids)")
        var stream = StreamingDetokenizer(tokenizer: t)
        var out = ""
        var heldBack = 0
        for id in ids {
            let chunk = stream.append(id)
            if chunk.isEmpty && !t.pieceBytes(id).isEmpty { heldBack += 1 }
            #expect(!chunk.unicodeScalars.contains("\u{FFFD}"))
            out += chunk
        }
        out += stream.finish()
        #expect(out == text)
        #expect(heldBack >= 5)
    }

    @Test("encoding 100 KB completes; prints the rate")
    func encode100KB() throws {
        let t = try #require(gemma3)
        let text = PerformanceTests.corpus
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure {
            ids = t.encode(text, addSpecial: false, parseSpecial: true)
        }
        print("gemma3: encoded \(text.utf8.count) bytes into \(ids.count) tokens in \(elapsed)")
        #expect(ids.count > 10_000)
        #expect(t.decode(ids) == text)
    }
}
