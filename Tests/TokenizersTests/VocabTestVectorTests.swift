import Foundation
import ModelFormats
import Testing
@testable import Tokenizers

/// llama.cpp's `tests/test-tokenizer-0` vectors: every `ggml-vocab-NAME.gguf` with `.inp`/`.out`
/// files in the cache. Inputs are separated by `\n__ggml_vocab_test__\n`; each output line holds
/// the expected ids, tokenized with `add_special = false`, `parse_special = false`.
@Suite("llama.cpp vocab test vectors")
struct VocabTestVectorTests {
    /// Vocabulary files that come with test vectors, by file name.
    static let vocabFiles: [String] = {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: vocabDir) else { return [] }
        return names
            .filter { $0.hasPrefix("ggml-vocab-") && $0.hasSuffix(".gguf") }
            .filter { FileManager.default.fileExists(atPath: "\(vocabDir)/\($0).inp") && FileManager.default.fileExists(atPath: "\(vocabDir)/\($0).out") }
            .sorted()
    }()

    /// `tokenizer.ggml.model` values the tokenizer implements: byte-level BPE and SentencePiece.
    static let supportedModels: Set<String> = ["gpt2", "llama"]

    /// Parses the `.inp` / `.out` pair exactly as test-tokenizer-0.cpp does.
    static func readVectors(_ path: String) throws -> [(input: String, ids: [Int32])] {
        let raw = try Data(contentsOf: URL(fileURLWithPath: path + ".inp"))
        let out = try String(contentsOfFile: path + ".out", encoding: .utf8)
        let sep = Array("\n__ggml_vocab_test__\n".utf8)
        let bytes = [UInt8](raw)
        var inputs: [String] = []
        var pos = 0
        while pos < bytes.count {
            var next = -1
            if bytes.count >= sep.count {
                var i = pos
                while i + sep.count <= bytes.count {
                    if bytes[i] == sep[0] && Array(bytes[i..<(i + sep.count)]) == sep {
                        next = i
                        break
                    }
                    i += 1
                }
            }
            if next < 0 {
                inputs.append(String(decoding: bytes[pos...], as: UTF8.self))
                break
            }
            inputs.append(String(decoding: bytes[pos..<next], as: UTF8.self))
            pos = next + sep.count
        }
        var lines = out.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        guard lines.count == inputs.count else {
            throw TokenizerError(.invalidVocabulary, "\(path): \(inputs.count) inputs but \(lines.count) output lines")
        }
        return zip(inputs, lines).map { input, line in
            (input, line.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) })
        }
    }

    @Test("vocab file matches llama.cpp", .enabled(if: !vocabFiles.isEmpty, "no vocab test files in \(vocabDir)"),
          arguments: vocabFiles)
    func vocabularyMatches(_ file: String) throws {
        let path = "\(vocabDir)/\(file)"
        let gguf = try GGUFFile(path: path)
        let model = try gguf.string(Vocabulary.Key.model)
        guard Self.supportedModels.contains(model) else {
            print("\(file): skipped, tokenizer.ggml.model = \(model) is not supported")
            try Test.cancel("\(file): tokenizer.ggml.model = \(model), not supported (later issue)")
        }
        let tokenizer = try Tokenizer(gguf: gguf)
        let vectors = try Self.readVectors(path)
        var failures = 0
        for (input, expected) in vectors {
            let got = tokenizer.encode(input, addSpecial: false, parseSpecial: false)
            if got != expected {
                failures += 1
                Issue.record("\(file) [\(tokenizer.preTokenizerName)]: \(String(reflecting: input))\n expected \(expected)\n got      \(got)")
            }
        }
        print("\(file) (model=\(model), pre=\(tokenizer.preTokenizerName)): \(vectors.count - failures)/\(vectors.count) vectors match")
    }
}
