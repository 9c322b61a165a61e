import ModelFormats
import Models
import Testing

@Suite("llama architecture on tiny random models")
struct LlamaModelTests {
    static let tokens = [3, 17, 5, 42, 0, 9, 9, 31, 12, 7, 25, 1]

    func load(_ tiny: TinyLlama) throws -> any LanguageModel {
        try ModelRegistry.load(try GGUFFile(bytes: tiny.gguf()))
    }

    @Test("batched forward matches a double-precision reference", arguments: [true, false])
    func matchesReference(tied: Bool) throws {
        var tiny = TinyLlama()
        tiny.tiedOutput = tied
        let model = try load(tiny)
        let ctx = try model.makeContext(capacity: 32, threads: 2)
        let logits = Array(try model.forward(Self.tokens.map(Int32.init), context: ctx, logits: .all))
        let reference = tiny.referenceLogits(Self.tokens)
        var worst = 0.0
        for (t, row) in reference.enumerated() {
            for (i, r) in row.enumerated() { worst = max(worst, abs(Double(logits[t * tiny.vocab + i]) - r)) }
        }
        // The KV cache, query and probabilities are half precision (as llama.cpp's), so allow ~1e-2.
        #expect(worst < 2e-2, "largest logit difference \(worst)")
        #expect(ctx.count == Self.tokens.count)
    }

    @Test("token-by-token decoding gives the same logits as one batch")
    func incrementalEqualsBatch() throws {
        let tiny = TinyLlama()
        let model = try load(tiny)
        let batch = try model.makeContext(capacity: 32, threads: 1)
        let all = Array(try model.forward(Self.tokens.map(Int32.init), context: batch, logits: .all))
        let step = try model.makeContext(capacity: 32, threads: 2)
        for (t, token) in Self.tokens.enumerated() {
            let row = Array(try model.forward([Int32(token)], context: step, logits: .last))
            for i in 0..<tiny.vocab { #expect(abs(row[i] - all[t * tiny.vocab + i]) < 1e-4) }
        }
    }

    @Test("truncating the context rewinds it: re-evaluating gives the same logits")
    func truncateRewinds() throws {
        let model = try load(TinyLlama())
        let ctx = try model.makeContext(capacity: 32, threads: 1)
        let first = Array(try model.forward(Self.tokens.map(Int32.init), context: ctx, logits: .last))
        ctx.truncate(to: 5)
        let again = Array(try model.forward(Self.tokens[5...].map(Int32.init), context: ctx, logits: .last))
        #expect(first == again)
    }

    @Test("a full context, an out-of-range token and an empty batch are errors")
    func contextErrors() throws {
        let model = try load(TinyLlama())
        let ctx = try model.makeContext(capacity: 4, threads: 1)
        #expect { try model.forward([1, 2, 3, 4, 5], context: ctx, logits: .last) } throws: { ($0 as? ModelError)?.code == .contextFull }
        #expect { try model.forward([48], context: ctx, logits: .last) } throws: { ($0 as? ModelError)?.code == .invalidToken }
        #expect { try model.forward([-1], context: ctx, logits: .last) } throws: { ($0 as? ModelError)?.code == .invalidToken }
        #expect { try model.forward([], context: ctx, logits: .last) } throws: { ($0 as? ModelError)?.code == .invalidToken }
    }

    @Test("a missing tensor is named in the error")
    func missingTensor() throws {
        let bytes = try TinyLlama().gguf(skipping: ["blk.1.ffn_up.weight"])
        #expect { try ModelRegistry.load(try GGUFFile(bytes: bytes)) } throws: {
            ($0 as? ModelError)?.code == .missingTensor && "\($0)".contains("blk.1.ffn_up.weight")
        }
    }

    @Test("an unknown architecture is named, with the supported list")
    func unknownArchitecture() throws {
        let bytes = try TinyLlama().gguf(architecture: "mamba9")
        #expect { try ModelRegistry.load(try GGUFFile(bytes: bytes)) } throws: {
            ($0 as? ModelError)?.code == .unsupportedArchitecture && "\($0)".contains("mamba9") && "\($0)".contains("llama")
        }
    }
}
