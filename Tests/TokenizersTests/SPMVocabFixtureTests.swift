import Foundation
import ModelFormats
import Testing
@testable import Tokenizers

/// Every SentencePiece test vocabulary (llama-spm, phi-3, and baichuan, which has no llama.cpp
/// test vectors) against llama.cpp on the same tricky strings as the BPE vocabularies, including
/// each vocabulary's own special and user-defined tokens with `parseSpecial` on and off (Phi-3's
/// special tokens swallow the whitespace after them). Decoding covers the leading-space removal
/// of `add_space_prefix`. References: `Fixtures/spm-vocabs-tokens.json`.
@Suite("SentencePiece vocabularies vs llama.cpp")
struct SPMVocabFixtureTests {
    static let fixture: BPEVocabFixtureTests.File? = {
        let url = fixturesDir.appendingPathComponent("spm-vocabs-tokens.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(BPEVocabFixtureTests.File.self, from: data)
    }()

    static let names: [String] = (fixture?.vocabs.keys.sorted() ?? [])
        .filter { FileManager.default.fileExists(atPath: "\(vocabDir)/\($0)") }

    @Test("fixture is present")
    func fixturePresent() throws {
        let f = try #require(Self.fixture, "missing or unreadable Fixtures/spm-vocabs-tokens.json")
        #expect(f.vocabs.count >= 3)
    }

    @Test("encode and decode match llama.cpp", .enabled(if: !names.isEmpty, "no vocab files in \(vocabDir)"),
          arguments: names)
    func matches(_ name: String) throws {
        let cases = try #require(Self.fixture?.vocabs[name])
        let info = try #require(Self.fixture?.info[name])
        let t = try Tokenizer(gguf: GGUFFile(path: "\(vocabDir)/\(name)"))
        #expect(t.modelName == "llama")
        #expect((t.bosTokenID ?? -1) == info.bos, "\(name) bos")
        #expect((t.eosTokenID ?? -1) == info.eos, "\(name) eos")
        #expect((t.eotTokenID ?? -1) == info.eot, "\(name) eot")
        #expect(t.addBOS == info.add_bos, "\(name) add_bos")
        #expect(t.addEOS == info.add_eos, "\(name) add_eos")
        #expect(t.endOfGenerationTokenIDs == Set(info.eog), "\(name) end-of-generation set")
        var ok = 0
        for c in cases {
            let ids = t.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special)
            #expect(ids == c.ids, "\(name) \(c.testDescription)")
            #expect(t.decode(c.ids) == c.detokenized, "\(name) decode \(c.testDescription)")
            #expect(t.decode(c.ids, skipSpecial: true) == c.detokenized_skip, "\(name) decode skip \(c.testDescription)")
            if ids == c.ids { ok += 1 }
        }
        print("\(name) (spm): \(ok)/\(cases.count) strings match")
    }
}
