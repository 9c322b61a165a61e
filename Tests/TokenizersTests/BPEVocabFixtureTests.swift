import Foundation
import ModelFormats
import Testing
@testable import Tokenizers

/// Every byte-level BPE test vocabulary (including the ones without llama.cpp test vectors,
/// which use the `default` pre-tokenizer) against llama.cpp on tricky strings: Unicode
/// whitespace, CJK, emoji, the vocabulary's own special and user-defined tokens with
/// `parseSpecial` on and off, and decoding with llama.cpp's clean-up of spaces.
/// References: `Fixtures/bpe-vocabs-tokens.json` from `scripts/gen-tokenizer-fixtures.py`.
@Suite("BPE vocabularies vs llama.cpp")
struct BPEVocabFixtureTests {
    struct Info: Decodable {
        var bos: Int32
        var eos: Int32
        var eot: Int32
        var add_bos: Bool
        var add_eos: Bool
        var eog: [Int32]
    }

    struct File: Decodable {
        var llama_cpp_version: String
        var vocabs: [String: [FixtureCase]]
        var info: [String: Info]
    }

    static let fixture: File? = {
        let url = fixturesDir.appendingPathComponent("bpe-vocabs-tokens.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(File.self, from: data)
    }()

    static let names: [String] = (fixture?.vocabs.keys.sorted() ?? [])
        .filter { FileManager.default.fileExists(atPath: "\(vocabDir)/\($0)") }

    @Test("fixture is present")
    func fixturePresent() throws {
        let f = try #require(Self.fixture, "missing or unreadable Fixtures/bpe-vocabs-tokens.json")
        #expect(f.vocabs.count >= 11)
    }

    @Test("encode and decode match llama.cpp", .enabled(if: !names.isEmpty, "no vocab files in \(vocabDir)"),
          arguments: names)
    func matches(_ name: String) throws {
        let cases = try #require(Self.fixture?.vocabs[name])
        let info = try #require(Self.fixture?.info[name])
        let t = try Tokenizer(gguf: GGUFFile(path: "\(vocabDir)/\(name)"))
        #expect((t.bosTokenID ?? -1) == info.bos, "\(name) bos")
        #expect((t.eosTokenID ?? -1) == info.eos, "\(name) eos")
        #expect((t.eotTokenID ?? -1) == info.eot, "\(name) eot")
        #expect(t.addBOS == info.add_bos, "\(name) add_bos")
        #expect(t.addEOS == info.add_eos, "\(name) add_eos")
        #expect(t.endOfGenerationTokenIDs == Set(info.eog), "\(name) end-of-generation set")
        var ok = 0
        for c in cases {
            let ids = t.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special)
            #expect(ids == c.ids, "\(name) [\(t.preTokenizerName)] \(c.testDescription)")
            #expect(t.decode(c.ids) == c.detokenized, "\(name) decode \(c.testDescription)")
            #expect(t.decode(c.ids, skipSpecial: true) == c.detokenized_skip, "\(name) decode skip \(c.testDescription)")
            if ids == c.ids { ok += 1 }
        }
        print("\(name) (pre=\(t.preTokenizerName)): \(ok)/\(cases.count) strings match")
    }
}
