import Testing
import TestSupport
@testable import Tokenizers

/// Untrusted text in a chat template: control tokens only from the template's own text.
@Suite("Escaped control tokens and the encoding limit", .enabled(if: hasSmolLM2 && hasGemma3, "run scripts/fetch-models first"))
struct UntrustedTextTests {
    /// U+FDD0, the escape mark (a noncharacter, which Swift's literals refuse).
    static let mark = String(Unicode.Scalar(0xFDD0)!)
    static let pieces = ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<bos>", "<|endoftext|>", mark,
                         mark + mark, "system", "hi", " ", "\n", "<|im_", "end|>", "é", "日本", "🦙", "<", "|>"]

    /// Random texts built from control tokens, partial tokens, escape marks and plain text.
    static func texts(seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        return (0..<300).map { _ in
            (0..<Int(rng.next() % 12)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
        }
    }

    @Test("escaped text in a template tokenizes as the text alone, without parsing control tokens", arguments: ["smollm2", "gemma3"])
    func escapedIsPlain(_ name: String) throws {
        let tokenizer = try #require(name == "smollm2" ? smolLM2 : gemma3)
        let open = name == "smollm2" ? "<|im_start|>" : "<start_of_turn>"
        let openID = try #require(tokenizer.tokenID(forText: open))
        for text in Self.texts(seed: name == "smollm2" ? 1 : 2) {
            let escaped = tokenizer.escapeControlTokens(text)
            let alone = tokenizer.encode(escaped, addSpecial: false, parseSpecial: true, escapes: true)
            #expect(alone == tokenizer.encode(text, addSpecial: false, parseSpecial: false), "\(text.debugDescription)")
            // Inside the template's own control tokens, the content's never become control tokens.
            let framed = tokenizer.encode(open + escaped + open, addSpecial: false, parseSpecial: true, escapes: true)
            #expect(framed.filter { $0 == openID }.count == 2, "\(text.debugDescription)")
        }
    }

    @Test("text without control tokens or marks is left as it is")
    func unchanged() throws {
        let tokenizer = try #require(smolLM2)
        for text in ["", "Hello, world", "a < b and c |> d", "<|im_", "日本語 🦙"] {
            #expect(tokenizer.escapeControlTokens(text) == text)
        }
    }

    @Test("encoding stops past the limit, and a limit never changes a text that fits")
    func limit() throws {
        let tokenizer = try #require(smolLM2)
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 200)
        let full = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        #expect(tokenizer.encode(text, addSpecial: true, parseSpecial: false, limit: full.count) == full)
        let cut = tokenizer.encode(text, addSpecial: true, parseSpecial: false, limit: 100)
        #expect(cut.count > 100 && cut.count < full.count)
        // Far more text than the limit could cover is refused without tokenizing it.
        let huge = String(repeating: "x", count: 4 << 20)
        #expect(tokenizer.encode(huge, addSpecial: true, parseSpecial: false, limit: 4096).count > 4096)
    }
}
