import Foundation
import Testing
import TestSupport
@testable import ModelFormats

@Suite("Real GGUF files")
struct GGUFRealFileTests {
    static let modelPresent = FileManager.default.fileExists(atPath: TestPaths.smolLM2)
    static let vocabPresent = FileManager.default.fileExists(atPath: TestPaths.vocabDirectory)

    /// Key order as listed by gguf-py's GGUFReader (gguf 0.19.0) for this file.
    static let smolKeys = [
        "general.architecture", "general.type", "general.name", "general.organization", "general.finetune",
        "general.basename", "general.size_label", "general.license", "general.languages", "llama.block_count",
        "llama.context_length", "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon",
        "general.file_type", "llama.vocab_size", "llama.rope.dimension_count", "tokenizer.ggml.add_space_prefix",
        "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
        "tokenizer.chat_template", "general.quantization_version",
    ]

    @Test("SmolLM2-135M Q4_1 loads (mapped) and matches gguf-py",
          .enabled(if: modelPresent, "model not found at \(TestPaths.smolLM2); run the model download to enable"))
    func smolLM2() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let f = try GGUFFile(path: TestPaths.smolLM2)
        let elapsed = clock.now - start
        #expect(elapsed < .milliseconds(500), "load took \(elapsed)")

        #expect(f.version == 3)
        #expect(f.alignment == 32)
        #expect(f.dataOffset == 1_785_664)
        #expect(f.fileSize == 98_362_432)
        #expect(f.metadataKeys == Self.smolKeys)
        #expect(try f.string("general.architecture") == "llama")
        #expect(try f.int("llama.block_count") == 30)
        #expect(try f.int("llama.embedding_length") == 576)
        #expect(try f.int("llama.attention.head_count") == 9)
        #expect(try f.int("llama.attention.head_count_kv") == 3)
        #expect(try f.float("llama.rope.freq_base") == 100_000)
        #expect(try f.float("llama.attention.layer_norm_rms_epsilon") == 1e-5)
        #expect(try f.bool("tokenizer.ggml.add_bos_token") == false)
        #expect(try f.string("tokenizer.ggml.model") == "gpt2")
        let tokens = try f.stringArray("tokenizer.ggml.tokens")
        #expect(tokens.count == 49_152)
        #expect(tokens[1] == "<|im_start|>")
        #expect(try f.intArray("tokenizer.ggml.token_type").count == 49_152)
        #expect(try f.stringArray("tokenizer.ggml.merges").count == 48_900)
        #expect(try f.stringArray("general.languages") == ["en"])
        #expect(try f.string("tokenizer.chat_template").hasPrefix("{% for message in messages %}"))

        #expect(f.tensors.count == 272)
        for i in 0 ..< 30 {
            for part in ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"] {
                #expect(f.tensor(named: "blk.\(i).\(part).weight") != nil, "blk.\(i).\(part).weight")
            }
        }
        #expect(f.tensor(named: "output_norm.weight") != nil)

        let embd = try #require(f.tensor(named: "token_embd.weight"))
        #expect(embd.type == .q8_0)
        #expect(embd.dimensions == [576, 49_152])
        #expect(embd.byteCount == 30_081_024)
        #expect(embd.offset == 0)
        #expect(f.tensorData(embd).count == 30_081_024)
        // Zero-copy: the tensor bytes live inside the mapping.
        let base = try #require(f.storage.buffer.baseAddress)
        #expect(f.tensorData(embd).baseAddress == base + f.dataOffset)

        let down = try #require(f.tensor(named: "blk.0.ffn_down.weight"))
        #expect(down.type == .q4_1 && down.dimensions == [1536, 576] && down.byteCount == 552_960)
        #expect(down.offset == 31_868_992 - 1_785_664)

        var counts: [GGMLType: Int] = [:]
        for t in f.tensors { counts[t.type, default: 0] += 1 }
        #expect(counts == [.q4_1: 210, .f32: 61, .q8_0: 1])
        // Tensors are packed: the last one ends at the end of the file (after padding).
        let endOfData = f.tensors.map { f.dataOffset + $0.offset + $0.byteCount }.max() ?? 0
        #expect(endOfData <= f.fileSize && f.fileSize - endOfData < 32)
    }

    @Test("every vocab-only GGUF parses",
          .enabled(if: vocabPresent, "vocab directory not found at \(TestPaths.vocabDirectory)"))
    func vocabFiles() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: TestPaths.vocabDirectory)
            .filter { $0.hasPrefix("ggml-vocab-") && $0.hasSuffix(".gguf") }
            .sorted()
        #expect(!names.isEmpty)
        for name in names {
            let path = TestPaths.vocabDirectory + "/" + name
            do {
                let f = try GGUFFile(path: path)
                let model = try f.string("tokenizer.ggml.model")
                #expect(!model.isEmpty, "\(name)")
                let tokens = try f.stringArray("tokenizer.ggml.tokens")
                #expect(tokens.count > 1000, "\(name): \(tokens.count) tokens")
                if let types = try f.optionalIntArray("tokenizer.ggml.token_type") {
                    #expect(types.count == tokens.count, "\(name)")
                }
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }
}
