import Foundation
import ModelFormats
import Testing
import TestSupport
@testable import Tokenizers

/// llama.cpp's tokenizer test vectors (`ggml-vocab-*.gguf` with `.inp` / `.out`).
let vocabDir = TestPaths.vocabDirectory

/// The SmolLM2 model whose vocabulary the fixture tests use.
let smolLM2Path = TestPaths.smolLM2

let hasSmolLM2 = TestPaths.hasSmolLM2

/// The SmolLM2 tokenizer, loaded once per test process (nil when the model file is absent).
let smolLM2: Tokenizer? = {
    guard hasSmolLM2 else { return nil }
    do {
        return try Tokenizer(gguf: GGUFFile(path: smolLM2Path))
    } catch {
        print("failed to load \(smolLM2Path): \(error)")
        return nil
    }
}()

/// `Tests/TokenizersTests/Fixtures`, found relative to this source file.
let fixturesDir = TestPaths.fixture("")

/// One reference tokenization produced by `scripts/gen-tokenizer-fixtures.py`.
struct FixtureCase: Decodable, Sendable, CustomTestStringConvertible {
    var text: String
    var add_special: Bool
    var parse_special: Bool
    var ids: [Int32]
    var detokenized: String
    var detokenized_skip: String

    var testDescription: String {
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        return "\(String(reflecting: shown)) add=\(add_special) parse=\(parse_special)"
    }
}

struct FixtureFile: Decodable, Sendable {
    var llama_cpp_version: String
    var model: String
    var cases: [FixtureCase]
    var pieces: [String: String]
}

/// The SmolLM2 fixture (nil if unreadable, which the fixture tests report as a failure).
let smolLM2Fixture: FixtureFile? = {
    let url = fixturesDir.appendingPathComponent("smollm2-tokens.json")
    guard let data = try? Data(contentsOf: url) else { return nil }
    return try? JSONDecoder().decode(FixtureFile.self, from: data)
}()

/// Bytes from a lowercase hex string.
func bytes(fromHex hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return c - UInt8(ascii: "A") + 10
        }
    }
    while let h = it.next(), let l = it.next() {
        out.append(nibble(h) << 4 | nibble(l))
    }
    return out
}

/// Asserts that `body` throws a `TokenizerError` with `code`, and returns it.
@discardableResult
func expectTokenizerError(
    _ code: TokenizerError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> TokenizerError? {
    do {
        try body()
        Issue.record("expected TokenizerError.\(code), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as TokenizerError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected TokenizerError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The Gemma 3 model whose SentencePiece vocabulary the Gemma fixture tests use.
let gemma3Path = TestPaths.gemma3

let hasGemma3 = TestPaths.hasGemma3

/// The Gemma 3 tokenizer, loaded once per test process (nil when the model file is absent).
let gemma3: Tokenizer? = {
    guard hasGemma3 else { return nil }
    do {
        return try Tokenizer(gguf: GGUFFile(path: gemma3Path))
    } catch {
        print("failed to load \(gemma3Path): \(error)")
        return nil
    }
}()

/// The Gemma 3 fixture (nil if unreadable, which the fixture tests report as a failure).
let gemma3Fixture: FixtureFile? = {
    let url = fixturesDir.appendingPathComponent("gemma3-tokens.json")
    guard let data = try? Data(contentsOf: url) else { return nil }
    return try? JSONDecoder().decode(FixtureFile.self, from: data)
}()
