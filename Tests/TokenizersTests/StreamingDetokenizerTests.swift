import Testing
@testable import Tokenizers

@Suite("Streaming detokenizer")
struct StreamingDetokenizerTests {
    @Test("streams every fixture text without splitting a character",
          .enabled(if: hasSmolLM2, "SmolLM2 model not found at \(smolLM2Path)"),
          arguments: SmolLM2FixtureTests.cases)
    func streamsFixture(_ c: FixtureCase) throws {
        let t = try #require(smolLM2)
        var stream = StreamingDetokenizer(tokenizer: t)
        var text = ""
        for id in c.ids {
            let chunk = stream.append(id)
            #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "partial character emitted after token \(id)")
            #expect(stream.pendingByteCount <= 3)
            text += chunk
        }
        text += stream.finish()
        #expect(text == t.decode(c.ids, skipSpecial: true))
        #expect(text == c.detokenized_skip)
    }

    @Test("emoji split across byte tokens are held back until complete",
          .enabled(if: hasSmolLM2, "SmolLM2 model not found at \(smolLM2Path)"))
    func emojiHeldBack() throws {
        let t = try #require(smolLM2)
        let text = "family: 👨‍👩‍👧‍👦 flags 🇺🇸🇯🇵 and 🦀!"
        let ids = t.encode(text, addSpecial: false, parseSpecial: false)
        var stream = StreamingDetokenizer(tokenizer: t)
        var out = ""
        var heldBack = 0
        for id in ids {
            let chunk = stream.append(id)
            if chunk.isEmpty && !t.pieceBytes(id).isEmpty { heldBack += 1 }
            for scalar in chunk.unicodeScalars {
                #expect(scalar != "\u{FFFD}")
            }
            out += chunk
        }
        out += stream.finish()
        #expect(out == text)
        #expect(heldBack > 0, "expected at least one token that ends inside a character")
    }

    @Test("special tokens are skipped by default and rendered on request",
          .enabled(if: hasSmolLM2, "SmolLM2 model not found at \(smolLM2Path)"))
    func specialTokens() throws {
        let t = try #require(smolLM2)
        let ids = t.encode("<|im_start|>assistant\nHi<|im_end|>", addSpecial: false, parseSpecial: true)
        var skipping = StreamingDetokenizer(tokenizer: t)
        var rendering = StreamingDetokenizer(tokenizer: t, skipSpecial: false)
        var a = ""
        var b = ""
        for id in ids {
            a += skipping.append(id)
            b += rendering.append(id)
        }
        a += skipping.finish()
        b += rendering.finish()
        #expect(a == "assistant\nHi")
        #expect(b == "<|im_start|>assistant\nHi<|im_end|>")
    }

    @Test("incomplete and invalid UTF-8 tails")
    func prefixLength() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        #expect(StreamingDetokenizer.completePrefixLength([0x61]) == 1)
        #expect(StreamingDetokenizer.completePrefixLength([0x61] + euro.prefix(1)) == 1)
        #expect(StreamingDetokenizer.completePrefixLength([0x61] + euro.prefix(2)) == 1)
        #expect(StreamingDetokenizer.completePrefixLength([0x61] + euro) == 4)
        #expect(StreamingDetokenizer.completePrefixLength([0xF0, 0x9F, 0xA6]) == 0)
        // A stray continuation byte or an impossible second byte is not waited for.
        #expect(StreamingDetokenizer.completePrefixLength([0x80]) == 1)
        #expect(StreamingDetokenizer.completePrefixLength([0xE0, 0x80]) == 2)
        #expect(StreamingDetokenizer.completePrefixLength([0xFF]) == 1)
        #expect(StreamingDetokenizer.completePrefixLength([]) == 0)
    }

    @Test("finish turns an unfinished character into U+FFFD",
          .enabled(if: hasSmolLM2, "SmolLM2 model not found at \(smolLM2Path)"))
    func finishFlushes() throws {
        let t = try #require(smolLM2)
        // The first byte token of a 4-byte emoji: "ð" is byte 0xF0 in GPT-2's byte mapping.
        let lead = try #require(t.tokenID(forText: "ð"))
        var stream = StreamingDetokenizer(tokenizer: t)
        #expect(stream.append(lead) == "")
        #expect(stream.pendingByteCount == 1)
        #expect(stream.finish() == "\u{FFFD}")
        #expect(stream.pendingByteCount == 0)
    }
}
