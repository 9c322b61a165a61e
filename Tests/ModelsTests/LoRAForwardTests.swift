import Foundation
import Kernels
@testable import ModelFormats
import Models
import Testing

/// LoRA adapters in the forward pass: a GGUF LoRA (as llama.cpp's convert_lora_to_gguf.py writes
/// one) on the tiny llama, against the double-precision reference of the merged weights, and
/// sequences with different adapters (and none) batched together against each alone.
@Suite("LoRA adapters in the forward pass")
struct LoRAForwardTests {
    static let tokens = [3, 17, 5, 42, 0, 9, 9, 31, 12, 7, 25, 1]
    static let alpha: Float = 8

    /// A rank-`rank` pair for each adapted weight (name → rows, columns), deterministic in `seed`.
    struct Pairs {
        var a: [String: [[Float]]] = [:]   // rank × columns
        var b: [String: [[Float]]] = [:]   // rows × rank
    }

    static func pairs(_ tiny: TinyLlama, seed: UInt64, rank: Int) -> Pairs {
        var state = seed
        func rnd() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        let shapes: [String: (Int, Int)] = [
            "blk.0.attn_q.weight": (tiny.heads * tiny.headDim, tiny.embd), "blk.0.attn_v.weight": (tiny.kvHeads * tiny.headDim, tiny.embd),
            "blk.1.ffn_down.weight": (tiny.embd, tiny.ff), "blk.1.ffn_up.weight": (tiny.ff, tiny.embd),
        ]
        var p = Pairs()
        for (name, (rows, columns)) in shapes.sorted(by: { $0.key < $1.key }) {
            p.a[name] = (0..<rank).map { _ in (0..<columns).map { _ in rnd() * 0.3 } }
            p.b[name] = (0..<rows).map { _ in (0..<rank).map { _ in rnd() * 0.3 } }
        }
        return p
    }

    /// The adapter as a GGUF LoRA file on disk.
    static func write(_ p: Pairs, rank: Int, to path: String) throws {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.type", .string("adapter"))
        writer.set("adapter.type", .string("lora"))
        writer.set("adapter.lora.alpha", .float32(alpha))
        for name in p.a.keys.sorted() {
            let a = p.a[name]!, b = p.b[name]!
            try writer.addTensor(name: name + ".lora_a", type: .f32, dimensions: [a[0].count, rank], data: TinyLlama.bytes(a))
            try writer.addTensor(name: name + ".lora_b", type: .f32, dimensions: [rank, b.count], data: TinyLlama.bytes(b))
        }
        try Data(try writer.serialize()).write(to: URL(fileURLWithPath: path))
    }

    static func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "verity-lora-\(name)-\(UUID().uuidString).gguf"
    }

    /// Loads the tiny model and the adapter (seed, rank, user scale).
    func setUp(seed: UInt64, rank: Int = 4, scale: Float = 1) throws -> (TinyLlama, any LanguageModel, ModelAdapter, Pairs) {
        let tiny = TinyLlama()
        let file = try GGUFFile(bytes: tiny.gguf())
        let model = try ModelRegistry.load(file, attention: .f32)
        let p = Self.pairs(tiny, seed: seed, rank: rank)
        let path = Self.temporaryPath("\(seed)-\(rank)")
        try Self.write(p, rank: rank, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let adapter = try model.makeAdapter(try LoRAFile.load(path: path, base: file), scale: scale)
        return (tiny, model, adapter, p)
    }

    @Test("logits equal the merged weights' double-precision reference", arguments: [1, 4, 9])
    func matchesMergedReference(rank: Int) throws {
        let (tiny, model, adapter, p) = try setUp(seed: 7, rank: rank, scale: 0.5)
        let ctx = try model.makeContext(capacity: 32, threads: 2)
        let logits = Array(try model.forward(Self.tokens.map(Int32.init), context: ctx, logits: .all, adapter: adapter))
        var merged = tiny
        let scale = Self.alpha / Float(rank) * 0.5
        merged.adjust = { w in
            func add(_ m: inout [[Float]], _ name: String) {
                let a = p.a[name]!, b = p.b[name]!
                for r in m.indices {
                    for c in m[r].indices {
                        var d: Float = 0
                        for j in 0..<a.count { d += b[r][j] * a[j][c] }
                        m[r][c] += d * scale
                    }
                }
            }
            add(&w.wq[0], "blk.0.attn_q.weight")
            add(&w.wv[0], "blk.0.attn_v.weight")
            add(&w.down[1], "blk.1.ffn_down.weight")
            add(&w.up[1], "blk.1.ffn_up.weight")
        }
        let reference = merged.referenceLogits(Self.tokens)
        let base = tiny.referenceLogits(Self.tokens)
        var worst = 0.0, moved = 0.0
        for (t, row) in reference.enumerated() {
            for (i, r) in row.enumerated() {
                worst = max(worst, abs(Double(logits[t * tiny.vocab + i]) - r))
                moved = max(moved, abs(base[t][i] - r))
            }
        }
        #expect(moved > 0.05, "the adapter must move the logits for this test to mean anything (moved \(moved))")
        #expect(worst < 1e-3, "largest logit difference \(worst)")
    }

    @Test("sequences with different adapters, and none, batched: bit-identical to each alone", arguments: [1, 2])
    func mixedBatches(threads: Int) throws {
        let (_, model, first, _) = try setUp(seed: 11)
        let (_, _, second, _) = try setUp(seed: 12, rank: 9)
        let adapters: [ModelAdapter?] = [first, nil, second, first]
        let prompts: [[Int32]] = [[3, 17, 5, 42, 0, 9], [9, 31, 2], [12, 7, 25, 1, 4, 4, 8], [6, 6, 1]]
        let expected = try zip(prompts, adapters).map { prompt, adapter in
            let ctx = try model.makeContext(capacity: 32, threads: 1)
            return try prompt.map { Array(try model.forward([$0], context: ctx, logits: .last, adapter: adapter)) }
        }
        let workspace = try model.makeWorkspace(batch: 16, maxPositions: 32, threads: threads)
        let sequences = try prompts.map { _ in try model.makeSequence(capacity: 32) }
        var fed = Array(repeating: 0, count: prompts.count)
        var step = 0
        while fed.enumerated().contains(where: { $0.element < prompts[$0.offset].count }) {
            var entries: [BatchEntry] = []
            var owners: [Int] = []
            for (i, prompt) in prompts.enumerated() where fed[i] < prompt.count {
                let chunk = min(prompt.count - fed[i], 1 + (i + step) % 3)
                entries.append(BatchEntry(sequence: sequences[i], tokens: prompt[fed[i]..<(fed[i] + chunk)], wantsLogits: true,
                                          adapter: adapters[i]))
                owners.append(i)
                fed[i] += chunk
            }
            let logits = Array(try model.forward(batch: entries, workspace: workspace))
            for (row, i) in owners.enumerated() {
                let got = Array(logits[(row * model.vocabularySize)..<((row + 1) * model.vocabularySize)])
                #expect(got == expected[i][fed[i] - 1], "sequence \(i) at position \(fed[i] - 1) differs")
            }
            step += 1
        }
        #expect(expected[0] != expected[1], "the adapters must change the logits")
    }

    @Test("a zero B leaves the base's logits bit for bit")
    func zeroDelta() throws {
        let tiny = TinyLlama()
        let file = try GGUFFile(bytes: tiny.gguf())
        let model = try ModelRegistry.load(file)
        var p = Self.pairs(tiny, seed: 3, rank: 2)
        for key in p.b.keys { p.b[key] = p.b[key]!.map { $0.map { _ in 0 } } }
        let path = Self.temporaryPath("zero")
        try Self.write(p, rank: 2, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let adapter = try model.makeAdapter(try LoRAFile.load(path: path, base: file), scale: 1)
        let tokens = Self.tokens.map(Int32.init)
        // The logits live in the context: keep each alive while they are read.
        let first = try model.makeContext(capacity: 32, threads: 1), second = try model.makeContext(capacity: 32, threads: 1)
        let bare = Array(try model.forward(tokens, context: first, logits: .all))
        let adapted = Array(try model.forward(tokens, context: second, logits: .all, adapter: adapter))
        #expect(bare == adapted)
    }

    @Test("adapters for another base are refused with the reason")
    func refusals() throws {
        let tiny = TinyLlama()
        let file = try GGUFFile(bytes: tiny.gguf())
        var other = tiny
        other.embd = 32
        other.heads = 2
        other.kvHeads = 1
        let path = Self.temporaryPath("other")
        try Self.write(Self.pairs(other, seed: 5, rank: 2), rank: 2, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { _ = try LoRAFile.load(path: path, base: file) } throws: { error in
            (error as? GGUFError)?.message.contains("another base model") == true
        }
        // A model file is not an adapter.
        let modelPath = Self.temporaryPath("model")
        try Data(try tiny.gguf()).write(to: URL(fileURLWithPath: modelPath))
        defer { try? FileManager.default.removeItem(atPath: modelPath) }
        #expect { _ = try LoRAFile.load(path: modelPath, base: file) } throws: { error in
            (error as? GGUFError)?.message.contains("not a LoRA adapter") == true
        }
    }

    @Test("an adapter's base model name is compared by model family and size")
    func baseNames() throws {
        func file(base: String?) -> LoRAFile {
            LoRAFile(path: "x", format: .peft, pairs: [:], replacements: [:], baseModelName: base, files: [])
        }
        let smol = ["SmolLM2 135M Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"]
        #expect(!file(base: "HuggingFaceTB/SmolLM2-135M-Instruct").namesOtherBase(than: smol))
        #expect(!file(base: "HuggingFaceTB/SmolLM2-135M-Instruct").namesOtherBase(than: ["smollm2-f32", "Smollm2 135M 8k Lc100K Mix1 Ep2"]))
        #expect(file(base: "meta-llama/Llama-3.1-70B").namesOtherBase(than: smol))
        #expect(!file(base: "unsloth/Llama-3.2-1B-Instruct-bnb-4bit").namesOtherBase(than: ["meta-llama/Llama-3.2-1B-Instruct"]))
        #expect(file(base: "unsloth/Llama-3.2-3B-Instruct-bnb-4bit").namesOtherBase(than: ["meta-llama/Llama-3.2-1B-Instruct"]))
        #expect(!file(base: "Qwen/Qwen2.5-0.5B").namesOtherBase(than: ["qwen2.5-0.5b-instruct-q8_0.gguf"]))
        #expect(file(base: "Qwen/Qwen3-0.6B").namesOtherBase(than: ["Qwen2.5 0.5B Instruct"]))
        // Names that say nothing leave it to the shapes.
        #expect(!file(base: "/home/me/runs/checkpoint-500").namesOtherBase(than: smol))
        #expect(!file(base: "meta-llama/Llama-3.1-8B").namesOtherBase(than: ["my-run", "0f3a9c1e"]))
        #expect(!file(base: nil).namesOtherBase(than: smol))
    }
}
