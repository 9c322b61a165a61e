import Foundation
import Testing
@testable import Tokenizers

/// SmolLM2-135M-Instruct against reference ids and text from llama.cpp
/// (`scripts/gen-tokenizer-fixtures.py` → `Fixtures/smollm2-tokens.json`).
@Suite("SmolLM2 vs llama.cpp", .enabled(if: hasSmolLM2, "SmolLM2 model not found at \(smolLM2Path)"))
struct SmolLM2FixtureTests {
    static let cases: [FixtureCase] = smolLM2Fixture?.cases ?? []

    @Test("fixture is present and large enough")
    func fixtureLoaded() throws {
        let fixture = try #require(smolLM2Fixture, "missing or unreadable Fixtures/smollm2-tokens.json")
        #expect(Set(fixture.cases.map(\.text)).count >= 50)
    }

    @Test("vocabulary facts match llama.cpp")
    func vocabularyFacts() throws {
        let t = try #require(smolLM2)
        #expect(t.modelName == "gpt2")
        #expect(t.preTokenizerName == "smollm")
        #expect(t.vocabularySize == 49152)
        #expect(t.bosTokenID == 1)
        #expect(t.eosTokenID == 2)
        #expect(t.addBOS == false)
        #expect(t.addEOS == false)
        #expect(t.tokenText(1) == "<|im_start|>")
        #expect(t.tokenText(2) == "<|im_end|>")
        #expect(t.tokenText(0) == "<|endoftext|>")
        for id: Int32 in [0, 2] {
            #expect(t.isEndOfGeneration(id), "\(t.tokenText(id)) should end generation")
        }
        #expect(!t.isEndOfGeneration(1))
        #expect(!t.isEndOfGeneration(19556))
        #expect(t.eotTokenID.map(t.tokenText) == "<|im_end|>")
        #expect(t.tokenID(forText: "Hello") == 19556)
        #expect(t.tokenID(forText: "no-such-token-text") == nil)
    }

    @Test("encode matches llama_tokenize", arguments: cases)
    func encodeMatches(_ c: FixtureCase) throws {
        let t = try #require(smolLM2)
        let got = t.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special)
        #expect(got == c.ids)
    }

    @Test("decode matches llama_detokenize", arguments: cases)
    func decodeMatches(_ c: FixtureCase) throws {
        let t = try #require(smolLM2)
        #expect(t.decode(c.ids) == c.detokenized)
        #expect(t.decode(c.ids, skipSpecial: true) == c.detokenized_skip)
    }

    @Test("round trip decode(encode(x)) == x", arguments: cases)
    func roundTrip(_ c: FixtureCase) throws {
        let t = try #require(smolLM2)
        let ids = t.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special)
        // SmolLM2 adds no BOS/EOS and does not clean up spaces, so decoding is exact.
        #expect(t.decode(ids) == c.text)
    }

    @Test("piece bytes match llama_token_to_piece")
    func piecesMatch() throws {
        let t = try #require(smolLM2)
        let fixture = try #require(smolLM2Fixture)
        #expect(fixture.pieces.count > 300)
        for (key, hex) in fixture.pieces {
            let id = try #require(Int32(key))
            #expect(t.pieceBytes(id) == bytes(fromHex: hex), "token \(id) \(String(reflecting: t.tokenText(id)))")
        }
    }
}
