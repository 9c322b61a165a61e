import Foundation
import Testing
@testable import Export
import Kernels
import ModelFormats
import TestSupport

/// The Hugging Face folder writer: the inverse tensor map, Q/K un-permutation, shard planning and
/// the index, and round trips through HFCheckpoint (export, load back, same metadata and tensors).
@Suite struct HFExportTests {
    static func fixture(_ name: String) -> String { TestPaths.cacheDirectory + "/hf-fixtures/" + name }
    static func hasFixture(_ name: String) -> Bool { FileManager.default.fileExists(atPath: fixture(name) + "/config.json") }
    static let tiny = ["tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3", "tiny-phi3"]
    static var hasTinyFixtures: Bool { tiny.allSatisfy(hasFixture) }

    /// A folder's tokenizer files, handed to the writer in place of HFTokenizerExport's.
    static func tokenizer(from dir: String) -> (GGUFFile) throws(ExportError) -> [(name: String, contents: Data)] {
        { _ throws(ExportError) in
            ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"].compactMap { name in
                FileManager.default.contents(atPath: dir + "/" + name).map { (name, $0) }
            }
        }
    }

    static func export(_ model: GGUFFile, _ options: HFExport.Options, tokenizerFrom dir: String) throws -> (String, [String]) {
        let out = TestPaths.temporaryDirectory("hfexport").path
        let names = try HFExport.write(model, to: out, options: options, tokenizerFiles: tokenizer(from: dir), progress: { _ in })
        return (out, names)
    }

    /// `x` rounded to BF16 (nearest even), as a Float.
    static func bf16(_ x: Float) -> Float {
        let b = x.bitPattern
        return Float(bitPattern: ((b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16) << 16)
    }

    /// Same metadata (as a dictionary) and the same tensors, bit for bit.
    static func expectSame(_ a: GGUFFile, _ b: GGUFFile, ignoring: Set<String> = [], sourceLocation: SourceLocation = #_sourceLocation) {
        let keysA = Set(a.metadataKeys).subtracting(ignoring), keysB = Set(b.metadataKeys).subtracting(ignoring)
        #expect(keysA == keysB, "metadata keys differ: \(keysA.symmetricDifference(keysB).sorted())", sourceLocation: sourceLocation)
        for key in keysA.intersection(keysB).sorted() where a.metadata[key] != b.metadata[key] {
            Issue.record("metadata '\(key)': \(String(describing: a.metadata[key]).prefix(200)) vs \(String(describing: b.metadata[key]).prefix(200))", sourceLocation: sourceLocation)
        }
        #expect(Set(a.tensors.map(\.name)) == Set(b.tensors.map(\.name)), sourceLocation: sourceLocation)
        for info in a.tensors {
            guard let other = b.tensor(named: info.name) else { continue }
            #expect(info.dimensions == other.dimensions && info.type == other.type, "\(info.name): \(info.dimensions) \(info.type.name) vs \(other.dimensions) \(other.type.name)", sourceLocation: sourceLocation)
            if !a.tensorData(info).elementsEqual(b.tensorData(other)) {
                Issue.record("tensor \(info.name) differs", sourceLocation: sourceLocation)
            }
        }
    }

    static func names(arch: String, layers: Int = 2) -> HFTensorNames {
        let hf = ["llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "gemma3": "Gemma3ForCausalLM", "phi3": "Phi3ForCausalLM"][arch]!
        return HFTensorNames(directory: "test", hfArchitecture: hf, arch: arch, layers: layers, heads: 4, kvHeads: 2)
    }

    // MARK: - Names and transforms

    @Test("every checkpoint name the forward map takes comes back with the inverse transform", arguments: ["llama", "qwen2", "qwen3", "gemma3", "phi3"])
    func inverseNames(arch: String) throws {
        let n = Self.names(arch: arch)
        var hfNames = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
        for layer in 0..<2 {
            let p = "model.layers.\(layer)."
            hfNames += ["input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.o_proj.weight", "mlp.down_proj.weight"].map { p + $0 }
            if arch == "phi3" {
                hfNames += [p + "self_attn.qkv_proj.weight", p + "mlp.gate_up_proj.weight"]
            } else {
                hfNames += ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                            "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"].map { p + $0 }
            }
            if arch == "gemma3" || arch == "qwen3" { hfNames += [p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight"] }
            if arch == "gemma3" { hfNames += [p + "pre_feedforward_layernorm.weight", p + "post_feedforward_layernorm.weight"] }
        }
        var seen = Set<String>()
        for hf in hfNames {
            let (gguf, forward) = try #require(try n.ggufName(hf))
            #expect(seen.insert(gguf).inserted, "\(gguf) twice")
            let (back, inverse) = try #require(try n.hfName(gguf))
            #expect(back == hf)
            switch forward {
            case .none: #expect(inverse == .none, "\(hf)")
            case .plusOne: #expect(inverse == .minusOne, "\(hf)")
            case .permuteRows(let heads): #expect(inverse == .unpermuteRows(heads: heads), "\(hf)")
            }
        }
        // Gemma 3's multimodal names come back as the text model's.
        if arch == "gemma3" {
            let (gguf, _) = try #require(try n.ggufName("language_model.model.layers.1.mlp.up_proj.weight"))
            #expect(try n.hfName(gguf)?.0 == "model.layers.1.mlp.up_proj.weight")
        }
    }

    @Test func unknownGGUFTensorsAreRefused() throws {
        let n = Self.names(arch: "llama")
        for bad in ["blk.0.ffn_gate_exps.weight", "blk.2.attn_q.weight", "blk.01.attn_q.weight", "blk.0.attn_qkv.weight", "pos_embd.weight", "blk.0.post_ffw_norm.weight"] {
            #expect(throws: GGUFError.self, "\(bad)") { try n.hfName(bad) }
        }
        #expect(throws: GGUFError.self) { try Self.names(arch: "phi3").hfName("blk.0.ffn_gate.weight") }
        #expect(try n.hfName("rope_freqs.weight") == nil)
    }

    @Test("un-permuting a permutation is the identity, on odd shapes", arguments: [(1, 2, 1), (3, 6, 5), (2, 10, 7), (5, 4, 3), (4, 18, 13)])
    func permutationRoundTrip(heads: Int, headRows: Int, rowBytes: Int) {
        let rows = heads * headRows
        var rng = SplitMix64(seed: UInt64(rows * 31 + rowBytes))
        let source = (0..<rows * rowBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var permuted = [UInt8](repeating: 0, count: source.count), back = permuted
        source.withUnsafeBytes { src in
            permuted.withUnsafeMutableBytes { HFTensorNames.permuteRows(src, into: $0, rows: rows, rowBytes: rowBytes, heads: heads) }
        }
        permuted.withUnsafeBytes { src in
            back.withUnsafeMutableBytes { HFTensorNames.unpermuteRows(src, into: $0, rows: rows, rowBytes: rowBytes, heads: heads) }
        }
        #expect(back == source)
        if headRows > 2 { #expect(permuted != source) }
    }

    // MARK: - Shards

    @Test func shardPlanning() {
        typealias W = SafetensorsShardWriter
        #expect(W.plan([3, 3, 3], maxShardBytes: 5) == [0..<1, 1..<2, 2..<3])
        #expect(W.plan([2, 2, 7, 1, 1], maxShardBytes: 5) == [0..<2, 2..<3, 3..<5])
        #expect(W.plan([2, 3, 5], maxShardBytes: 5) == [0..<2, 2..<3])
        #expect(W.plan([1, 1, 1], maxShardBytes: 100) == [0..<3])
        #expect(W.plan([], maxShardBytes: 5) == [0..<0])
        #expect(W.shardNames(count: 1) == ["model.safetensors"])
        #expect(W.shardNames(count: 3) == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"])
        let header = W.header([W.Tensor(name: "a", dtype: .bf16, shape: [2, 3])][...])
        #expect(header.count % 8 == 0)
        #expect(String(decoding: header[8...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                == #"{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}"#)
    }

    @Test("streamed shards read back, with transformers' index")
    func shardedWriteReadsBack() throws {
        let dir = TestPaths.temporaryDirectory("shards").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tensors = [
            SafetensorsShardWriter.Tensor(name: "model.embed_tokens.weight", dtype: .f32, shape: [5, 7]),
            SafetensorsShardWriter.Tensor(name: "model.layers.0.x.weight", dtype: .f16, shape: [3]),
            SafetensorsShardWriter.Tensor(name: "model.empty", dtype: .bf16, shape: [0, 4]),
            SafetensorsShardWriter.Tensor(name: "model.layers.0.y.weight", dtype: .bf16, shape: [9, 11]),
            SafetensorsShardWriter.Tensor(name: "lm_head.weight", dtype: .f32, shape: [2, 2]),
        ]
        var rng = SplitMix64(seed: 7)
        let contents = tensors.map { t in (0..<t.byteCount).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        var writer = try SafetensorsShardWriter(directory: dir, tensors: tensors, maxShardBytes: 150)
        #expect(writer.fileNames == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json"])
        // Odd-sized pieces that straddle tensors.
        let all = contents.flatMap { $0 }
        var offset = 0, piece = 1
        while offset < all.count {
            let n = min(piece, all.count - offset)
            try all[offset..<offset + n].withUnsafeBytes { try writer.append($0) }
            offset += n
            piece = piece * 3 % 37 + 1
        }
        let staged = try writer.finish()
        for s in staged {
            #expect(!FileManager.default.fileExists(atPath: s.final))
            #expect(rename(s.temporary, s.final) == 0)
        }
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))) as? [String: Any])
        #expect((index["metadata"] as? [String: Any])?["total_size"] as? Int == tensors.reduce(0) { $0 + $1.byteCount })
        let map = try #require(index["weight_map"] as? [String: String])
        #expect(map.count == tensors.count)
        for (t, bytes) in zip(tensors, contents) {
            let file = try SafetensorsFile(path: dir + "/" + map[t.name]!)
            #expect(file.metadata == ["format": "pt"])
            let read = try #require(file.tensors[t.name])
            #expect(read.dtype == t.dtype && read.shape == t.shape)
            #expect(Array(file.data(read)) == bytes)
        }
        #expect(map["model.embed_tokens.weight"] == "model-00001-of-00003.safetensors")
        #expect(map["lm_head.weight"] == "model-00003-of-00003.safetensors")
    }

    @Test func writerRefusesMissingOrExtraBytes() throws {
        let dir = TestPaths.temporaryDirectory("shards").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var writer = try SafetensorsShardWriter(directory: dir, tensors: [.init(name: "a", dtype: .f32, shape: [2])], maxShardBytes: 100)
        try [UInt8](repeating: 1, count: 4).withUnsafeBytes { try writer.append($0) }
        #expect(throws: ExportError.self) { _ = try writer.finish() }
        #expect(throws: ExportError.self) { try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try writer.append($0) } }
        writer.abort()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    // MARK: - config.json

    @Test func jsonKeepsNumbersAndEscapes() throws {
        let text = #"{"a": 10000.0, "b": 64, "c": 1e-06, "d": [true, null, "x\"\u00e9\ud83d\ude00"], "e": {}}"#
        let json = try HFJSON.parse(Array(text.utf8))
        #expect(json["a"] == .number("10000.0") && json["b"] == .number("64") && json["c"] == .number("1e-06"))
        #expect(json["d"] == .array([.bool(true), .null, .string("x\"é😀")]))
        let rendered = json.rendered()
        #expect(rendered.contains(#""x\"\u00e9\ud83d\ude00""#))
        #expect(try HFJSON.parse(Array(rendered.utf8)) == json)
        #expect(HFJSON.float(Float(1e-5)) == .number("1e-05"))
        #expect(HFJSON.float(10000) == .number("10000.0"))
        #expect(HFConfigExport.partialRotaryFactor(32, of: 96) * 96 >= 32)
        #expect(Int(96 * HFConfigExport.partialRotaryFactor(32, of: 96)) == 32)
    }

    @Test("Llama 3 RoPE parameters come back from the frequency factors")
    func llama3Inversion() throws {
        for p in [HFConfigExport.Llama3Parameters(factor: 8, low: 1, high: 4, original: 8192),
                  HFConfigExport.Llama3Parameters(factor: 32, low: 1, high: 4, original: 8192),
                  HFConfigExport.Llama3Parameters(factor: 8, low: 1, high: 4, original: 64)] {
            for (theta, dims) in [(Float(500_000), 128), (Float(500_000), 64), (Float(10_000), 16)] {
                let factors = HFConfigExport.llama3Factors(p, theta: theta, dims: dims)
                let back = try #require(HFConfigExport.llama3Parameters(factors, theta: theta, dims: dims, context: 131_072))
                #expect(HFConfigExport.llama3Factors(back, theta: theta, dims: dims) == factors, "\(p) θ \(theta) dims \(dims) → \(back)")
            }
        }
    }

    /// Exports `model` with a generated config and the tokenizer files of `tokenizerDir`, loads the
    /// folder back and expects the same model.
    static func roundTrip(_ model: GGUFFile, tokenizerDir: String, dtype: SafetensorsFile.DType = .f32, maxShardBytes: Int = HFExport.defaultMaxShardBytes,
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> (GGUFFile, String) {
        let (out, names) = try export(model, HFExport.Options(dtype: dtype, maxShardBytes: maxShardBytes, threads: 2), tokenizerFrom: tokenizerDir)
        #expect(names.last == "config.json", sourceLocation: sourceLocation)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: out)).contains { $0.hasSuffix(".partial") }, sourceLocation: sourceLocation)
        let back = try HFCheckpoint.load(directory: out)
        return (back, out)
    }

    @Test("a tiny model of each architecture round-trips through config.json and safetensors", .enabled(if: hasTinyFixtures),
          arguments: tiny + ["tiny-llama3-rope", "tiny-llama-odd", "tiny-mistral"])
    func fixtureRoundTrip(name: String) throws {
        guard Self.hasFixture(name) else { return }
        let dir = Self.fixture(name)
        let model = try HFCheckpoint.load(directory: dir)
        let (back, out) = try Self.roundTrip(model, tokenizerDir: dir)
        defer { try? FileManager.default.removeItem(atPath: out) }
        Self.expectSame(model, back)
        // The weights are the checkpoint's own, with the original names, shapes and bytes.
        let original = try SafetensorsFile(path: dir + "/model.safetensors")
        let written = try SafetensorsFile(path: out + "/model.safetensors")
        let expected = Set(original.tensors.keys.filter { !$0.hasSuffix("rotary_emb.inv_freq") })
        #expect(Set(written.tensors.keys) == expected)
        let isGemma = (model.metadata["general.architecture"]?.stringValue ?? "").hasPrefix("gemma")
        for (tensorName, t) in original.tensors where t.dtype == .f32 {
            guard let w = written.tensors[tensorName] else { continue }
            #expect(w.shape == t.shape, "\(tensorName)")
            if isGemma, tensorName.hasSuffix("norm.weight") {
                // Gemma's norms are loaded as 1 + w (llama.cpp's converter does the same): what
                // comes back is (1 + w) − 1, exact in F32 but for w's bits below 1's ulp.
                let a = Self.floats(original.data(t)), b = Self.floats(written.data(w))
                #expect(a.map { ($0 + 1) - 1 } == b, "\(tensorName) differs")
            } else {
                #expect(written.data(w).elementsEqual(original.data(t)), "\(tensorName) differs")
            }
        }
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as? [String: Any])
        let source = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any])
        for key in ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size", "tie_word_embeddings", "max_position_embeddings"] {
            #expect((config[key] as? NSNumber) == (source[key] as? NSNumber), "\(key)")
        }
        #expect(config["torch_dtype"] as? String == "float32")
    }

    static func floats(_ bytes: UnsafeRawBufferPointer) -> [Float] {
        (0..<bytes.count / 4).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    @Test("sharded BF16: index, shard sizes, and the same model back", .enabled(if: hasFixture("tiny-gemma3")))
    func shardedBF16RoundTrip() throws {
        let dir = Self.fixture("tiny-gemma3")
        let model = try HFCheckpoint.load(directory: dir)
        var progress: [ExportProgress] = []
        let out = TestPaths.temporaryDirectory("hfexport").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let names = try HFExport.write(model, to: out, options: HFExport.Options(dtype: .bf16, maxShardBytes: 1_000_000, threads: 2),
                                       tokenizerFiles: Self.tokenizer(from: dir), progress: { progress.append($0) })
        let shards = names.filter { $0.hasSuffix(".safetensors") }
        #expect(shards.count >= 2)  // the 6.3 MB embedding alone, the rest (0.4 MB) together
        #expect(names.contains("model.safetensors.index.json"))
        #expect(progress.count == model.tensors.count)
        #expect(progress.last?.stage == "writing" && progress.last?.total == model.tensors.count)
        let back = try HFCheckpoint.load(directory: out)
        // BF16 of the F32 model: each tensor is the rounded original (norms, w = g − 1 rounded, + 1).
        for info in model.tensors {
            let other = try #require(back.tensor(named: info.name))
            #expect(other.dimensions == info.dimensions)
            let a = try HFConfigExport.floats(model, info), b = try HFConfigExport.floats(back, other)
            let isNorm = info.name.hasSuffix("norm.weight")
            for (x, y) in zip(a, b) {
                let expected = isNorm ? Self.bf16(x - 1) + 1 : Self.bf16(x)
                if expected.bitPattern != y.bitPattern { Issue.record("\(info.name): \(x) → \(y), expected \(expected)"); break }
            }
        }
        for shard in shards {
            let file = try SafetensorsFile(path: out + "/" + shard)
            let size = file.tensors.values.reduce(0) { $0 + $1.range.count }
            #expect(size <= 1_000_000 || file.tensors.count == 1)
        }
    }

    @Test("RoPE scaling and Gemma 3 / Phi-3 specifics survive the round trip", .enabled(if: hasTinyFixtures))
    func syntheticMetadataRoundTrip() throws {
        func variant(_ name: String, metadata extra: [(String, GGUFValue)], drop: Set<String> = [], tensors more: [(String, [Float])] = []) throws -> GGUFFile {
            let base = try HFCheckpoint.load(directory: Self.fixture(name))
            let keys = Set(extra.map(\.0))
            var metadata = base.metadataKeys.filter { !keys.contains($0) && !drop.contains($0) }.map { ($0, base.metadata[$0]!) }
            metadata += extra
            var tensors = base.tensors.map { info in
                let location = base.tensorLocation(info)
                return (name: info.name, dimensions: info.dimensions, type: info.type, owner: location.owner, offset: location.offset)
            }
            for (tensorName, values) in more {
                let owner = MappedFile(allocating: values.count * 4) { buffer in values.withUnsafeBytes { buffer.copyMemory(from: $0) } }
                tensors.append((tensorName, [values.count], .f32, owner, 0))
            }
            return try GGUFFile(metadata: metadata, tensors: tensors)
        }
        // Linear RoPE scaling on a Llama.
        let linear = try variant("tiny-llama", metadata: [("llama.rope.scaling.type", .string("linear")), ("llama.rope.scaling.factor", .float32(4))])
        // Gemma 3: pattern 3, soft-capping, another local base, linear scaling on the global layers.
        let gemma = try variant("tiny-gemma3", metadata: [
            ("gemma3.attention.sliding_window_pattern", .uint32(3)), ("gemma3.final_logit_softcapping", .float32(30)),
            ("gemma3.rope.freq_base_swa", .float32(20_000)), ("gemma3.rope.scaling.type", .string("linear")), ("gemma3.rope.scaling.factor", .float32(8)),
        ])
        // Phi-3: LongRoPE and a partial rotary factor.
        let context = 256, original = 64
        let scale = Double(context) / Double(original)
        let phi = try variant("tiny-phi3", metadata: [
            ("phi3.rope.dimension_count", .uint32(12)),
            ("phi3.rope.scaling.type", .string("longrope")), ("phi3.rope.scaling.original_context_length", .uint32(UInt32(original))),
            ("phi3.rope.scaling.attn_factor", .float32(Float((1 + log(scale) / log(Double(original))).squareRoot()))),
        ], tensors: [("rope_factors_short.weight", (0..<6).map { 1 + Float($0) / 7 }), ("rope_factors_long.weight", (0..<6).map { 2 + Float($0) / 3 })])
        for (model, dir) in [(linear, "tiny-llama"), (gemma, "tiny-gemma3"), (phi, "tiny-phi3")] {
            let (back, out) = try Self.roundTrip(model, tokenizerDir: Self.fixture(dir))
            defer { try? FileManager.default.removeItem(atPath: out) }
            Self.expectSame(model, back)
        }
    }

    @Test("generation_config.json: end-of-turn and sampling defaults come back", .enabled(if: hasFixture("tiny-llama")))
    func generationConfigRoundTrip() throws {
        let base = try HFCheckpoint.load(directory: Self.fixture("tiny-llama"))
        var metadata = base.metadataKeys.map { ($0, base.metadata[$0]!) }
        metadata += [("tokenizer.ggml.eot_token_id", .uint32(5)), ("general.sampling.temp", .float32(0.7)), ("general.sampling.top_p", .float32(0.9)),
                     ("general.sampling.top_k", .int32(40)), ("general.sampling.min_p", .float32(0.05)), ("general.sampling.penalty_repeat", .float32(1.1))]
        let tensors = base.tensors.map { info in
            let location = base.tensorLocation(info)
            return (name: info.name, dimensions: info.dimensions, type: info.type, owner: location.owner, offset: location.offset)
        }
        let model = try GGUFFile(metadata: metadata, tensors: tensors)
        let (back, out) = try Self.roundTrip(model, tokenizerDir: Self.fixture("tiny-llama"))
        defer { try? FileManager.default.removeItem(atPath: out) }
        Self.expectSame(model, back)
        let greedy = try GGUFFile(metadata: base.metadataKeys.map { ($0, base.metadata[$0]!) } + [("general.sampling.temp", .float32(0))], tensors: tensors)
        let generation = try HFConfigExport.generationConfig(for: greedy)
        #expect(generation["do_sample"] == .bool(false) && generation["temperature"] == nil)
    }

    @Test("a source folder's files are copied; its config loses quantization_config and gets the dtype", .enabled(if: hasFixture("bnb-tiny-llama-nf4-f32")))
    func sourceFolderCopy() throws {
        let dir = Self.fixture("bnb-tiny-llama-nf4-f32")
        let model = try HFCheckpoint.load(directory: dir)
        let out = TestPaths.temporaryDirectory("hfexport").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let names = try HFExport.write(model, to: out, options: HFExport.Options(dtype: .f32, sourceDirectory: dir, modelCard: "# card\n", threads: 1), progress: { _ in })
        #expect(Set(names) == ["model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json", "README.md", "config.json"])
        for copied in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"] {
            #expect(FileManager.default.contents(atPath: out + "/" + copied) == FileManager.default.contents(atPath: dir + "/" + copied))
        }
        #expect(FileManager.default.contents(atPath: out + "/README.md") == Data("# card\n".utf8))
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as? [String: Any])
        #expect(config["quantization_config"] == nil)
        #expect(config["dtype"] as? String == "float32" && config["torch_dtype"] as? String == "float32")
        // The dequantized weights, as HFCheckpoint read them; the rest of the model as well.
        let back = try HFCheckpoint.load(directory: out)
        Self.expectSame(model, back, ignoring: ["general.name"])
    }

    @Test("existing files are not replaced unless asked; stale shards go", .enabled(if: hasFixture("tiny-llama")))
    func overwritePolicy() throws {
        let dir = Self.fixture("tiny-llama")
        let model = try HFCheckpoint.load(directory: dir)
        let out = TestPaths.temporaryDirectory("hfexport").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        var options = HFExport.Options(dtype: .bf16, maxShardBytes: 2_000_000, threads: 1)
        _ = try HFExport.write(model, to: out, options: options, tokenizerFiles: Self.tokenizer(from: dir), progress: { _ in })
        let before = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(before.contains("model.safetensors.index.json"))
        options.maxShardBytes = HFExport.defaultMaxShardBytes
        do {
            _ = try HFExport.write(model, to: out, options: options, tokenizerFiles: Self.tokenizer(from: dir), progress: { _ in })
            Issue.record("a second export into the same folder was not refused")
        } catch {
            #expect(error.code == .invalidOption)
        }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out)) == Set(before))
        options.overwrite = true
        let names = try HFExport.write(model, to: out, options: options, tokenizerFiles: Self.tokenizer(from: dir), progress: { _ in })
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out)) == Set(names))
        #expect(!names.contains("model.safetensors.index.json") && names.contains("model.safetensors"))
        _ = try HFCheckpoint.load(directory: out)
    }

    @Test func unsupportedModelsAreRefused() throws {
        let owner = MappedFile(allocating: 64) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        let gpt2 = try GGUFFile(metadata: [("general.architecture", .string("gpt2"))], tensors: [("token_embd.weight", [4, 4], .f32, owner, 0)])
        let out = TestPaths.temporaryDirectory("hfexport").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let notSupported = #expect(throws: ExportError.self) {
            _ = try HFExport.write(gpt2, to: out, options: .init(dtype: .f32), tokenizerFiles: { _ throws(ExportError) in [] }, progress: { _ in })
        }
        #expect(notSupported?.code == .unsupported)
        let llama = try GGUFFile(metadata: [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint32(1)), ("llama.embedding_length", .uint32(4)),
            ("llama.feed_forward_length", .uint32(8)), ("llama.attention.head_count", .uint32(2)),
        ], tensors: [("token_embd.weight", [4, 4], .f32, owner, 0), ("blk.0.ffn_gate_exps.weight", [4, 4], .f32, owner, 0)])
        let noName = #expect(throws: ExportError.self) {
            _ = try HFExport.write(llama, to: out, options: .init(dtype: .f32), tokenizerFiles: { _ throws(ExportError) in [] }, progress: { _ in })
        }
        #expect(noName?.code == .unsupported && noName?.message.contains("ffn_gate_exps") == true)
        let badType = #expect(throws: ExportError.self) {
            _ = try HFExport.write(llama, to: out, options: .init(dtype: .u8), tokenizerFiles: { _ throws(ExportError) in [] }, progress: { _ in })
        }
        #expect(badType?.code == .invalidOption)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).isEmpty)
    }

    @Test("a quantized GGUF comes back as its dequantized values", .enabled(if: TestPaths.hasSmolLM2 && hasFixture("smollm2-bf16")))
    func quantizedGGUFSource() throws {
        let model = try GGUFFile(path: TestPaths.smolLM2)
        let (back, out) = try Self.roundTrip(model, tokenizerDir: Self.fixture("smollm2-bf16"), maxShardBytes: 200_000_000)
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors.index.json"))
        for info in model.tensors {
            let other = try #require(back.tensor(named: info.name))
            #expect(other.dimensions == info.dimensions && other.type == .f32)
            var expected = [Float](repeating: 0, count: info.elementCount)
            let data = model.tensorData(info)
            expected.withUnsafeMutableBufferPointer { out in
                for r in 0..<info.rowCount {
                    Kernels.dequantize(info.type, data.baseAddress! + r * info.rowBytes, into: out.baseAddress! + r * info.rowLength, count: info.rowLength)
                }
            }
            #expect(expected.withUnsafeBytes { $0.elementsEqual(back.tensorData(other)) }, "\(info.name)")
        }
        for key in ["llama.block_count", "llama.context_length", "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
                    "llama.attention.head_count_kv", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"] {
            #expect(model.metadata[key]?.doubleValue == back.metadata[key]?.doubleValue, "\(key)")
        }
    }

    /// Writes F32 exports of the fixtures (and SmolLM2's GGUF) to $VERITY_HFEXPORT_E2E/NAME for
    /// checking with transformers (scripts outside the test suite).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VERITY_HFEXPORT_E2E"] != nil))
    func writeEndToEndExports() throws {
        let root = ProcessInfo.processInfo.environment["VERITY_HFEXPORT_E2E"]!
        for name in Self.tiny + ["smollm2-bf16", "gemma3-bf16", "tiny-llama3-rope", "bnb-tiny-qwen2-nf4-dq-f16"] where Self.hasFixture(name) {
            let out = root + "/" + name
            try? FileManager.default.removeItem(atPath: out)
            _ = try HFExport.write(try HFCheckpoint.load(directory: Self.fixture(name)), to: out,
                                   options: .init(dtype: .f32, sourceDirectory: Self.fixture(name), threads: 2), progress: { _ in })
            let generated = root + "/" + name + "-generated"
            try? FileManager.default.removeItem(atPath: generated)
            _ = try HFExport.write(try HFCheckpoint.load(directory: Self.fixture(name)), to: generated,
                                   options: .init(dtype: .f32, threads: 2), tokenizerFiles: Self.tokenizer(from: Self.fixture(name)), progress: { _ in })
        }
        if TestPaths.hasSmolLM2 {
            let out = root + "/smollm2-q4_1-gguf"
            try? FileManager.default.removeItem(atPath: out)
            let tokenizer: (GGUFFile) throws(ExportError) -> [(name: String, contents: Data)] = { model throws(ExportError) in
                if ProcessInfo.processInfo.environment["VERITY_HFEXPORT_E2E_TOKENIZER"] != nil { return try HFExport.tokenizerFiles(from: model) }
                return try Self.tokenizer(from: Self.fixture("smollm2-bf16"))(model)
            }
            _ = try HFExport.write(try GGUFFile(path: TestPaths.smolLM2), to: out, options: .init(dtype: .f32, threads: 2), tokenizerFiles: tokenizer, progress: { _ in })
        }
    }
}
