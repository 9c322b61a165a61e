import ModelFormats

// A port of llama.cpp's per-tensor type choice: what `llama-quantize` (llama_model_quantize)
// writes each tensor as for a file type such as Q4_K_M. Source: llama.cpp as vendored in
// llama-cpp-python 0.3.36, src/llama-quant.cpp (tensor_allows_quantization,
// llama_tensor_get_type, llama_tensor_get_type_impl, tensor_type_fallback,
// init_quantize_state_counters, llama_model_quantize_impl), include/llama.h (llama_ftype),
// tools/quantize/quantize.cpp (QUANT_OPTIONS, try_parse_ftype) and src/llama-model-loader.cpp
// (llama_ftype_name, weight_name_comparer). Checked against the real llama.cpp by
// Tests/ExportTests/QuantizationPlanTests.swift (fixture: Tests/ExportTests/Fixtures/quant_plan.json).

// MARK: - File types

/// A GGUF file type as `llama-quantize` names it (`Q4_K_M`, `F16`, …): llama.cpp's `llama_ftype`.
public struct GGUFFileType: Sendable, Hashable, CustomStringConvertible {
    /// The name as llama-quantize spells it (`"Q4_K_M"`); also the encoding label of llama.cpp's
    /// file naming convention (`Model-1B-Q4_K_M.gguf`).
    public let name: String
    /// `LLAMA_FTYPE_…` (llama.h), written as `general.file_type`: `LLAMA_FTYPE_MOSTLY_Q4_K_M` = 15.
    public let ftype: Int32
    /// The base tensor type (`llama_ftype_get_default_type`): Q4_K for Q4_K_M.
    public let defaultType: GGMLType
    /// llama.cpp's description (`llama_ftype_name`): `"Q4_K - Medium"`, `"all F32"`.
    public let llamaName: String

    /// llama.cpp's file naming convention's encoding label (`"Q4_K_M"`, `"F16"`, `"BF16"`).
    public var encodingLabel: String { name }
    public var description: String { name }

    init(_ name: String, _ ftype: Int32, _ defaultType: GGMLType, _ llamaName: String) {
        self.name = name
        self.ftype = ftype
        self.defaultType = defaultType
        self.llamaName = llamaName
    }

    public static let f32 = GGUFFileType("F32", 0, .f32, "all F32")
    public static let f16 = GGUFFileType("F16", 1, .f16, "F16")
    public static let bf16 = GGUFFileType("BF16", 32, .bf16, "BF16")
    public static let q8_0 = GGUFFileType("Q8_0", 7, .q8_0, "Q8_0")
    public static let q4_0 = GGUFFileType("Q4_0", 2, .q4_0, "Q4_0")
    public static let q4_1 = GGUFFileType("Q4_1", 3, .q4_1, "Q4_1")
    public static let q5_0 = GGUFFileType("Q5_0", 8, .q5_0, "Q5_0")
    public static let q5_1 = GGUFFileType("Q5_1", 9, .q5_1, "Q5_1")
    public static let q2_K = GGUFFileType("Q2_K", 10, .q2_K, "Q2_K - Medium")
    public static let q3_K_S = GGUFFileType("Q3_K_S", 11, .q3_K, "Q3_K - Small")
    public static let q3_K_M = GGUFFileType("Q3_K_M", 12, .q3_K, "Q3_K - Medium")
    public static let q3_K_L = GGUFFileType("Q3_K_L", 13, .q3_K, "Q3_K - Large")
    public static let q4_K_S = GGUFFileType("Q4_K_S", 14, .q4_K, "Q4_K - Small")
    public static let q4_K_M = GGUFFileType("Q4_K_M", 15, .q4_K, "Q4_K - Medium")
    public static let q5_K_S = GGUFFileType("Q5_K_S", 16, .q5_K, "Q5_K - Small")
    public static let q5_K_M = GGUFFileType("Q5_K_M", 17, .q5_K, "Q5_K - Medium")
    public static let q6_K = GGUFFileType("Q6_K", 18, .q6_K, "Q6_K")
    public static let iq4_nl = GGUFFileType("IQ4_NL", 25, .iq4_nl, "IQ4_NL - 4.5 bpw")
    public static let iq4_xs = GGUFFileType("IQ4_XS", 30, .iq4_xs, "IQ4_XS - 4.25 bpw")

    /// The file types Verity writes: those of llama-quantize that need no importance matrix and
    /// whose tensor types Verity's quantizers produce.
    public static let all: [GGUFFileType] = [
        .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1,
        .q2_K, .q3_K_S, .q3_K_M, .q3_K_L, .q4_K_S, .q4_K_M, .q5_K_S, .q5_K_M, .q6_K,
        .iq4_nl, .iq4_xs,
    ]

    /// The file type with this `LLAMA_FTYPE` value, if Verity supports it.
    public static func withFtype(_ ftype: Int32) -> GGUFFileType? {
        all.first { $0.ftype == ftype }
    }

    /// llama-quantize's QUANT_OPTIONS table, in its order (tools/quantize/quantize.cpp):
    /// the names it accepts, including its aliases Q3_K, Q4_K, Q5_K and the non-type COPY.
    static let llamaQuantizeOptions: [(name: String, ftype: Int32)] = [
        ("Q1_0", 40), ("Q2_0", 41), ("Q4_0", 2), ("Q4_1", 3), ("MXFP4_MOE", 38), ("Q5_0", 8), ("Q5_1", 9),
        ("IQ2_XXS", 19), ("IQ2_XS", 20), ("IQ2_S", 28), ("IQ2_M", 29), ("IQ1_S", 24), ("IQ1_M", 31),
        ("TQ1_0", 36), ("TQ2_0", 37), ("Q2_K", 10), ("Q2_K_S", 21), ("IQ3_XXS", 23), ("IQ3_S", 26),
        ("IQ3_M", 27), ("Q3_K", 12), ("IQ3_XS", 22), ("Q3_K_S", 11), ("Q3_K_M", 12), ("Q3_K_L", 13),
        ("IQ4_NL", 25), ("IQ4_XS", 30), ("Q4_K", 15), ("Q4_K_S", 14), ("Q4_K_M", 15), ("Q5_K", 17),
        ("Q5_K_S", 16), ("Q5_K_M", 17), ("Q6_K", 18), ("Q8_0", 7), ("F16", 1), ("BF16", 32), ("F32", 0),
        ("COPY", 0),
    ]

    /// llama-quantize's file types that fail without an importance matrix (`--imatrix`): their
    /// tensors get IQ1/IQ2/IQ3_XXS types, or Q2_K inside a Q2_K_S file (tensor_requires_imatrix).
    static let needsImatrix: Set<Int32> = [19, 20, 21, 22, 23, 24, 28, 29, 31]

    /// The file type llama-quantize means by `s`: one of its names, case-insensitive (its aliases
    /// `Q3_K`, `Q4_K`, `Q5_K` give Q3_K_M, Q4_K_M, Q5_K_M), or an `LLAMA_FTYPE` number as it
    /// accepts one. `nil` for an unknown name and for file types Verity does not write; see
    /// ``parse(_:)`` for the reason.
    public static func named(_ s: String) -> GGUFFileType? {
        try? parse(s)
    }

    /// Like ``named(_:)``, but says why a name is refused.
    public static func parse(_ s: String) throws(ExportError) -> GGUFFileType {
        // try_parse_ftype: upper-case (C locale), compare case-insensitively, then std::stoi.
        let upper = String(decoding: s.utf8.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 }, as: UTF8.self)
        var option = llamaQuantizeOptions.first { $0.name == upper }
        if option == nil, let number = stoi(upper) {
            option = llamaQuantizeOptions.first { Int($0.ftype) == number }
        }
        let supported = all.map(\.name).joined(separator: ", ")
        guard let option else {
            throw ExportError(.invalidOption, "unknown GGUF file type '\(s)' (supported: \(supported))")
        }
        if option.name == "COPY" {
            throw ExportError(.invalidOption, "COPY copies tensors without quantizing: it is not a file type (supported: \(supported))")
        }
        if let fileType = withFtype(option.ftype) { return fileType }
        if needsImatrix.contains(option.ftype) {
            throw ExportError(.invalidOption, "file type \(option.name) needs an importance matrix (llama-quantize --imatrix), which Verity does not compute; choose another (supported: \(supported))")
        }
        throw ExportError(.invalidOption, "file type \(option.name) is not supported by Verity's GGUF export (supported: \(supported))")
    }

    /// `std::stoi`: leading white space, an optional sign, at least one digit; the rest ignored.
    static func stoi(_ s: String) -> Int? {
        var bytes = Substring(s).utf8[...]
        while let c = bytes.first, c == 0x20 || (0x09...0x0D).contains(c) { bytes = bytes.dropFirst() }
        var negative = false
        if let c = bytes.first, c == 0x2B || c == 0x2D {
            negative = c == 0x2D
            bytes = bytes.dropFirst()
        }
        var value = 0
        var digits = 0
        while let c = bytes.first, (0x30...0x39).contains(c) {
            value = value * 10 + Int(c - 0x30)
            digits += 1
            if value > Int(Int32.max) + 1 { return nil }  // out of range: stoi throws
            bytes = bytes.dropFirst()
        }
        guard digits > 0 else { return nil }
        value = negative ? -value : value
        return value <= Int(Int32.max) ? value : nil
    }
}

// MARK: - The plan

/// The tensor type llama.cpp's quantizer picks for each tensor of a model and a file type.
public struct QuantizationPlan: Sendable {
    /// `llama_model_quantize_params` that change the types (llama-quantize's defaults: none).
    public struct Options: Sendable, Equatable {
        /// `--output-tensor-type`: the type of `output.weight` (and of the token embedding of a
        /// model without one, unless ``tokenEmbeddingType`` is set).
        public var outputType: GGMLType?
        /// `--token-embedding-type`: the type of `token_embd.weight`.
        public var tokenEmbeddingType: GGMLType?
        /// `--pure`: every quantized tensor gets the file type's base type (no mixture rules;
        /// the overrides above still apply).
        public var pure: Bool
        /// `false` is `--leave-output-tensor`: `output.weight` keeps its type.
        public var quantizeOutputTensor: Bool
        /// `--allow-requantize`: a tensor already quantized may be converted to another type
        /// (llama.cpp refuses otherwise: "requantizing from type … is disabled").
        public var allowRequantize: Bool

        public init(outputType: GGMLType? = nil, tokenEmbeddingType: GGMLType? = nil, pure: Bool = false,
                    quantizeOutputTensor: Bool = true, allowRequantize: Bool = false) {
            self.outputType = outputType
            self.tokenEmbeddingType = tokenEmbeddingType
            self.pure = pure
            self.quantizeOutputTensor = quantizeOutputTensor
            self.allowRequantize = allowRequantize
        }
    }

    /// What llama.cpp's rules read from the model's hyper-parameters.
    public struct Hyperparameters: Sendable, Equatable {
        /// `general.architecture`: `"llama"`, `"qwen2"`, `"gemma3"`, ….
        public var architecture: String
        /// `{arch}.block_count` (llama.cpp's `n_layer_all`, the number of ffn_down layers it assumes).
        public var blockCount: Int
        /// `{arch}.attention.head_count` (of layer 0 when per-layer).
        public var headCount: Int
        /// `{arch}.attention.head_count_kv` (of layer 0); defaults to ``headCount``.
        public var headCountKV: Int
        /// `{arch}.expert_count`, 0 for a dense model.
        public var expertCount: Int
        /// `{arch}.nextn_predict_layers` (MTP layers counted in block_count), usually 0.
        public var nextnPredictLayers: Int

        public init(architecture: String, blockCount: Int, headCount: Int, headCountKV: Int? = nil,
                    expertCount: Int = 0, nextnPredictLayers: Int = 0) {
            self.architecture = architecture
            self.blockCount = blockCount
            self.headCount = headCount
            self.headCountKV = headCountKV ?? headCount
            self.expertCount = expertCount
            self.nextnPredictLayers = nextnPredictLayers
        }

        /// Reads them from a GGUF's metadata as llama.cpp's `load_hparams` does.
        public init(_ file: GGUFFile) throws(ExportError) {
            // get_key_or_arr: a number, or one per layer (llama.cpp's rules read layer 0).
            func layer0(_ key: String) throws(GGUFError) -> Int? {
                guard let value = file[key] else { return nil }
                if case .array = value { return try file.intArray(key).first ?? 0 }
                return try file.int(key)
            }
            let arch: String, blocks: Int, heads: Int, headsKV: Int?, experts: Int?, nextn: Int?
            do {
                guard let name = try file.optionalString("general.architecture") else {
                    throw ExportError(.invalidSource, "the model has no general.architecture")
                }
                arch = name
                guard let count = try file.optionalInt("\(arch).block_count") else {
                    throw ExportError(.invalidSource, "the model has no \(arch).block_count")
                }
                blocks = count
                heads = try layer0("\(arch).attention.head_count") ?? 0
                headsKV = try layer0("\(arch).attention.head_count_kv")
                experts = try file.optionalInt("\(arch).expert_count")
                nextn = try file.optionalInt("\(arch).nextn_predict_layers")
            } catch let error as ExportError {
                throw error
            } catch {
                throw ExportError(.invalidSource, "\(error)")
            }
            self.init(architecture: arch, blockCount: blocks, headCount: heads, headCountKV: headsKV ?? heads,
                      expertCount: experts ?? 0, nextnPredictLayers: nextn ?? 0)
        }

        /// `hparams.n_gqa()`: heads per KV head (layer 0), 0 without KV heads.
        var nGQA: Int { headCountKV == 0 ? 0 : headCount / headCountKV }

        /// `model.type == LLM_TYPE_70B`, the only model size the rules look at: set by the
        /// architectures' load_arch_hparams from `n_layer()` (block_count less the MTP layers).
        var isLLMType70B: Bool {
            let nLayer = blockCount - nextnPredictLayers
            switch architecture {
            case "llama": return expertCount != 8 && nLayer == 80 && headCount != headCountKV
            case "qwen2", "deci", "olmo": return nLayer == 80
            case "jais2": return nLayer == 68
            default: return false
            }
        }
    }

    /// For each tensor of `model`, in the file's order: the type llama-quantize writes it as
    /// (its own type where llama.cpp leaves it alone, e.g. norms stay F32).
    ///
    /// Throws where llama.cpp's quantizer fails: a quantized source tensor that would change type
    /// without ``Options/allowRequantize``, a tensor type it cannot convert from, an override
    /// type whose block does not divide a row, missing hyper-parameters.
    public static func plan(_ model: GGUFFile, fileType: GGUFFileType,
                            options: Options = .init()) throws(ExportError) -> [(name: String, type: GGMLType)] {
        try plan(Hyperparameters(model), tensors: model.tensors.map { ($0.name, $0.dimensions, $0.type) },
                 fileType: fileType, options: options)
    }

    /// The same from the hyper-parameters and the tensor list (name, ggml-order dimensions,
    /// type), in the file's order; the result is in that order too.
    public static func plan(_ hparams: Hyperparameters, tensors: [(name: String, dimensions: [Int], type: GGMLType)],
                            fileType: GGUFFileType,
                            options: Options = .init()) throws(ExportError) -> [(name: String, type: GGMLType)] {
        for (what, type) in [("output", options.outputType), ("token embedding", options.tokenEmbeddingType)] {
            if let type, !writableTypes.contains(type) {
                throw ExportError(.invalidOption, "\(type.name) is not supported as the \(what) tensor type (supported: \(writableTypes.map(\.name).joined(separator: ", ")))")
            }
        }
        guard (1...maxLayers).contains(hparams.blockCount) else {
            throw ExportError(.invalidSource, "\(hparams.architecture).block_count is \(hparams.blockCount); llama.cpp needs 1...\(maxLayers)")
        }
        guard hparams.nextnPredictLayers >= 0, hparams.nextnPredictLayers <= hparams.blockCount else {
            throw ExportError(.invalidSource, "\(hparams.architecture).nextn_predict_layers (\(hparams.nextnPredictLayers)) exceeds block_count (\(hparams.blockCount))")
        }

        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted {
            throw ExportError(.invalidSource, "invalid model: tensor '\(t.name)' is duplicated")
        }
        let items = tensors.map { Item(name: $0.name, dimensions: $0.dimensions, type: $0.type) }
        var state = State(hparams: hparams, options: options, ftype: fileType.ftype)
        state.initCounters(items)

        // The preliminary loop of llama_model_quantize_impl, in llama.cpp's order.
        let order = llamaCppTensorOrder(tensors.map(\.name))
        var targets = items.map(\.type)
        for i in order {
            let item = items[i]
            targets[i] = state.allowsQuantization(item)
                ? try state.tensorType(item, defaultType: fileType.defaultType) : item.type
        }

        // The main loop's failures, in the same order.
        for i in order where targets[i] != items[i].type {
            let item = items[i], source = item.type, target = targets[i]
            if source.isQuantized, !options.allowRequantize {
                throw ExportError(.unsupported, "tensor '\(item.name)' is \(source.name) and would become \(target.name): requantizing from type \(source.name) is disabled (llama-quantize needs --allow-requantize)")
            }
            if !source.isQuantized, ![.f32, .f16, .bf16].contains(source) {
                throw ExportError(.unsupported, "tensor '\(item.name)': cannot dequantize/convert tensor type \(source.name)")
            }
            let rowLength = item.dimensions.first ?? 1
            if rowLength % target.blockSize != 0 {
                // llama.cpp aborts (an override type that the tensor's rows do not fit).
                throw ExportError(.unsupported, "tensor '\(item.name)' rows of \(rowLength) are not a multiple of the \(target.name) block size \(target.blockSize)")
            }
        }
        return zip(tensors, targets).map { ($0.name, $1) }
    }

    /// The order llama.cpp handles and writes tensors in (its loader's `weights_map`, sorted by
    /// `weight_name_comparer`): tensors outside `blk.N.` first, then by layer number, each group
    /// by name (bytewise). Returns indices into `names`.
    public static func llamaCppTensorOrder(_ names: [String]) -> [Int] {
        let layers = names.map { scanLayer($0) ?? -1 }
        return names.indices.sorted { a, b in
            if layers[a] != layers[b] { return layers[a] < layers[b] }
            return names[a].utf8.lexicographicallyPrecedes(names[b].utf8)
        }
    }

    /// The types a tensor may be given (the overrides included): those of the supported file
    /// types and the float types.
    public static let writableTypes: [GGMLType] = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs,
    ]

    /// `LLAMA_MAX_LAYERS`.
    static let maxLayers = 512

    /// `sscanf(name, "blk.%d.", &layer)`: the layer number if the name starts with `blk.` and a
    /// `%d` (white space, sign, digits) follows; the trailing `.` is not required to match.
    static func scanLayer(_ name: String) -> Int? {
        var bytes = Substring(name).utf8[...]
        for c in "blk.".utf8 {
            guard bytes.first == c else { return nil }
            bytes = bytes.dropFirst()
        }
        return GGUFFileType.stoi(String(decoding: bytes.prefix(24), as: UTF8.self))
    }
}

// MARK: - llama.cpp's state and rules

extension QuantizationPlan {
    struct Item {
        let name: String
        let bytes: [UInt8]
        let dimensions: [Int]
        let type: GGMLType

        init(name: String, dimensions: [Int], type: GGMLType) {
            self.name = name
            self.bytes = Array(name.utf8)
            self.dimensions = dimensions
            self.type = type
        }

        /// `ne[i]`, 1 past the given dimensions.
        func ne(_ i: Int) -> Int { i < dimensions.count ? dimensions[i] : 1 }

        /// `ggml_n_dims`: 1 + the index of the last dimension > 1 (at least 1).
        var nDims: Int {
            for i in stride(from: 3, through: 1, by: -1) where ne(i) > 1 { return i + 1 }
            return 1
        }

        /// `name.find(s) != npos`, bytewise.
        func contains(_ s: String) -> Bool {
            let needle = Array(s.utf8)
            guard needle.count <= bytes.count else { return false }
            if needle.isEmpty { return true }
            for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
                if bytes[start..<start + needle.count].elementsEqual(needle) { return true }
            }
            return false
        }

        func `is`(_ s: String) -> Bool { bytes.elementsEqual(s.utf8) }

        /// `name.rfind("weight") == name.size() - 6`, size_t arithmetic included: also true for
        /// a 5-byte name (npos == 5 - 6 wrapped).
        var endsWithWeight: Bool {
            if bytes.count == 5 { return true }  // rfind gives npos, and so does 5 - 6
            return bytes.count >= 6 && bytes.suffix(6).elementsEqual("weight".utf8)
        }
    }

    /// `tensor_category`.
    enum Category {
        case tokenEmbd, attentionQ, attentionV, attentionK, attentionQKV, attentionKVB, attentionOutput
        case ffnUp, ffnGate, ffnDown, output, other

        /// `tensor_get_category`.
        init(_ item: Item) {
            if item.is("output.weight") { self = .output }
            else if item.is("token_embd.weight") || item.is("per_layer_token_embd.weight") { self = .tokenEmbd }
            else if item.contains("attn_qkv.weight") { self = .attentionQKV }
            else if item.contains("attn_kv_b.weight") { self = .attentionKVB }
            else if item.contains("attn_v.weight") { self = .attentionV }
            else if item.contains("attn_k.weight") { self = .attentionK }
            else if item.contains("attn_q.weight") { self = .attentionQ }
            else if item.contains("attn_output.weight") { self = .attentionOutput }
            else if item.contains("ffn_up") { self = .ffnUp }
            else if item.contains("ffn_gate") { self = .ffnGate }
            else if item.contains("ffn_down") { self = .ffnDown }
            else { self = .other }
        }

        /// `category_is_attn_v`.
        var isAttnV: Bool { self == .attentionV || self == .attentionQKV || self == .attentionKVB }
    }

    /// `LLAMA_FTYPE_…` values (llama.h), including those Verity does not offer: the rules are
    /// ported whole so they read like llama.cpp's.
    enum FT {
        static let Q4_0: Int32 = 2, Q5_0: Int32 = 8
        static let Q2_K: Int32 = 10, Q3_K_S: Int32 = 11, Q3_K_M: Int32 = 12, Q3_K_L: Int32 = 13
        static let Q4_K_S: Int32 = 14, Q4_K_M: Int32 = 15, Q5_K_S: Int32 = 16, Q5_K_M: Int32 = 17
        static let IQ2_XXS: Int32 = 19, IQ2_XS: Int32 = 20, Q2_K_S: Int32 = 21, IQ3_XS: Int32 = 22
        static let IQ3_XXS: Int32 = 23, IQ1_S: Int32 = 24, IQ4_NL: Int32 = 25, IQ3_S: Int32 = 26
        static let IQ3_M: Int32 = 27, IQ2_S: Int32 = 28, IQ2_M: Int32 = 29, IQ4_XS: Int32 = 30
        static let IQ1_M: Int32 = 31, TQ1_0: Int32 = 36, TQ2_0: Int32 = 37, MXFP4_MOE: Int32 = 38
        static let Q2_0: Int32 = 41
    }

    /// `quantize_state_impl` with the model and params it reads.
    struct State {
        let hparams: Hyperparameters
        let options: Options
        let ftype: Int32
        let arch: String
        let nExpert: Int

        var nAttentionWV = 0, nFFNDown = 0, nFFNGate = 0, nFFNUp = 0
        var iAttentionWV = 0, iFFNDown = 0, iFFNGate = 0, iFFNUp = 0
        var nFallback = 0
        /// Verity has no importance matrices.
        let hasImatrix = false
        /// Until a tensor named `output.weight` is seen.
        var hasTiedEmbeddings = true

        init(hparams: Hyperparameters, options: Options, ftype: Int32) {
            self.hparams = hparams
            self.options = options
            self.ftype = ftype
            arch = hparams.architecture
            nExpert = hparams.expertCount
        }

        /// `init_quantize_state_counters`: over every tensor, quantized or not.
        mutating func initCounters(_ items: [Item]) {
            for item in items {
                let category = Category(item)
                if category.isAttnV { nAttentionWV += 1 }
                if category == .output { hasTiedEmbeddings = false }
            }
            nFFNDown = hparams.blockCount
            nFFNGate = hparams.blockCount
            nFFNUp = hparams.blockCount
        }

        /// `tensor_allows_quantization` (params->only_copy is never set).
        func allowsQuantization(_ t: Item) -> Bool {
            // quantize only 2D and 3D tensors (experts)
            if t.nDims < 2 { return false }
            var quantize = t.endsWithWeight
            quantize = quantize && !t.contains("_norm.weight")
            quantize = quantize && (options.quantizeOutputTensor || !t.is("output.weight"))
            quantize = quantize && !t.contains("ffn_gate_inp.weight")
            quantize = quantize && !t.contains("ffn_gate_tid2eid.weight")
            quantize = quantize && !t.contains("altup")
            quantize = quantize && !t.contains("laurel")
            quantize = quantize && !t.contains("per_layer_model_proj")
            // LLM_TN(arch)(LLM_TENSOR_POS_EMBD / LLM_TENSOR_TOKEN_TYPES, "weight"): the same for every arch
            quantize = quantize && !t.is("position_embd.weight")
            quantize = quantize && !t.is("token_types.weight")
            quantize = quantize && !t.contains("ssm_conv1d")
            quantize = quantize && !t.contains("shortconv.conv.weight")
            quantize = quantize && !t.contains("indexer.k_proj.weight")
            quantize = quantize && !t.contains("indexer.q_proj.weight")
            if arch == "glm5-next" {
                for s in ["hc_", "indexer.attn_q_b", "indexer.attn_k", "indexer.proj", "indexer_compressor_gate",
                          "indexer_compressor_ape", "ssm_f_a.weight", "ssm_f_b.weight", "ssm_g_a.weight",
                          "ssm_g_b.weight", "ssm_beta.weight", "attn_kv_a_mqa.weight", "attn_k_b.weight",
                          "attn_v_b.weight"] {
                    quantize = quantize && !t.contains(s)
                }
            }
            for s in ["time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
                      "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
                      "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
                      "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
                      "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
                      ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"] {
                quantize = quantize && !t.contains(s)
            }
            return quantize
        }

        /// `llama_tensor_get_type` (no --tensor-type patterns).
        mutating func tensorType(_ t: Item, defaultType: GGMLType) throws(ExportError) -> GGMLType {
            if !allowsQuantization(t) { return t.type }
            let category = Category(t)
            if let type = options.tokenEmbeddingType, category == .tokenEmbd { return type }
            if let type = options.outputType, category == .output { return type }
            var newType = defaultType
            if defaultType.isQuantized {
                if !options.pure {
                    newType = try typeImpl(newType, t, category)
                }
                newType = try fallback(t, newType)
            }
            return newType
        }

        /// `tensor_type_fallback`: a type whose block fits the rows.
        mutating func fallback(_ t: Item, _ target: GGMLType) throws(ExportError) -> GGMLType {
            let ncols = t.ne(0)
            let qkK = target.blockSize
            guard ncols % qkK != 0 else { return target }
            nFallback += 1
            var result: GGMLType
            switch target {
            case .iq1_s, .iq1_m, .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq4_xs: result = .iq4_nl
            case .q2_K, .q3_K, .tq1_0, .tq2_0: result = .q4_0  // (and GGML_TYPE_Q2_0)
            case .q4_K: result = .q5_0
            case .q5_K: result = .q5_1
            case .q6_K: result = .q8_0
            default:
                guard qkK <= 32 else {
                    throw ExportError(.unsupported, "no tensor type fallback is defined for type \(target.name) (tensor '\(t.name)')")
                }
                result = target
            }
            if ncols % result.blockSize != 0 {
                result = .f16  // "must use F16 due to unusual shape"
            }
            return result
        }

        /// `use_more_bits`.
        static func useMoreBits(_ iLayer: Int, _ nLayers: Int) -> Bool {
            iLayer < nLayers / 8 || iLayer >= 7 * nLayers / 8 || (iLayer - nLayers / 8) % 3 == 2
        }

        /// `layer_info`: the counter, or with experts the layer parsed from the name.
        func layerInfo(_ iLayer: Int, _ nLayer: Int, _ t: Item) throws(ExportError) -> (Int, Int) {
            guard max(1, nExpert) > 1 else { return (iLayer, nLayer) }
            guard let layer = QuantizationPlan.scanLayer(t.name) else {
                throw ExportError(.unsupported, "Failed to determine layer for tensor \(t.name)")
            }
            guard layer >= 0, layer < nLayer else {
                throw ExportError(.unsupported, "Bad layer \(layer) for tensor \(t.name). Must be in [0, \(nLayer))")
            }
            return (layer, nLayer)
        }

        /// `llama_tensor_get_type_impl`: the mixture rules, checks in llama.cpp's order. The
        /// branches for file types Verity does not offer (IQ1/IQ2/IQ3, Q2_K_S, TQ, MXFP4_MOE) are
        /// kept so the code reads like llama.cpp's; they cannot run for Verity's file types.
        mutating func typeImpl(_ incoming: GGMLType, _ t: Item, _ category: Category) throws(ExportError) -> GGMLType {
            var newType = incoming
            let nGQA = hparams.nGQA
            let isFalcon = arch == "falcon"
            let ftype = self.ftype
            func ft(_ values: Int32...) -> Bool { values.contains(ftype) }

            // glm5-next: these tensors are never below Q8_0
            if arch == "glm5-next", t.contains("attn_q_a") || t.contains("attn_q_b") || t.contains("nextn.eh_proj") {
                switch newType {
                case .f32, .bf16, .f16: break
                default: return .q8_0
                }
            }

            if category == .output || (hasTiedEmbeddings && category == .tokenEmbd) {
                // the token embedding of a model without output.weight is the output
                if let type = options.outputType {
                    newType = type
                } else {
                    let nx = t.ne(0)
                    let qkK = newType.blockSize
                    if ft(FT.MXFP4_MOE) {
                        newType = .q8_0
                    } else if isFalcon || nx % qkK != 0 {
                        newType = .q8_0
                    } else if ft(FT.IQ2_XXS, FT.IQ2_XS, FT.IQ3_XXS, FT.IQ1_S, FT.IQ2_S, FT.IQ2_M, FT.IQ1_M) {
                        newType = .q5_K
                    } else if newType != .q8_0 {
                        newType = .q6_K
                    }
                }
            } else if ft(FT.MXFP4_MOE) {
                let isBailingExpert = arch == "bailingmoe3" && [.ffnUp, .ffnGate, .ffnDown].contains(category)
                newType = t.ne(2) > 1 && (arch != "bailingmoe3" || isBailingExpert) ? .mxfp4 : .q8_0
            } else if category == .tokenEmbd {
                if let type = options.tokenEmbeddingType {
                    newType = type  // (returned earlier by tensorType; kept as in llama.cpp)
                } else if ft(FT.IQ2_XXS, FT.IQ2_XS, FT.IQ1_S, FT.IQ1_M) {
                    newType = .q2_K
                } else if ft(FT.IQ2_S, FT.IQ2_M) {
                    newType = .iq3_s
                } else if ft(FT.IQ3_XXS) {
                    newType = .iq3_s
                } else if ft(FT.TQ1_0, FT.TQ2_0, FT.Q2_0) {
                    newType = .q4_K
                }
            } else if ft(FT.IQ2_XXS, FT.IQ2_XS, FT.IQ1_S, FT.IQ2_S, FT.IQ2_M, FT.IQ1_M) {
                if category.isAttnV {
                    if nGQA >= 4 || nExpert >= 4 { newType = .q4_K }
                    else { newType = ft(FT.IQ2_S, FT.IQ2_M) ? .iq3_s : .q2_K }
                    iAttentionWV += 1
                } else if nExpert == 8 && category == .attentionK {
                    newType = .q4_K
                } else if category == .ffnDown {
                    if iFFNDown < nFFNDown / 8 {
                        newType = ft(FT.IQ2_S, FT.IQ2_M) ? .iq3_s : .q2_K
                    }
                    iFFNDown += 1
                } else if category == .attentionOutput {
                    if nExpert == 8 {
                        newType = .q5_K
                    } else {
                        if ft(FT.IQ1_S, FT.IQ1_M) { newType = .iq2_xxs }
                        else if ft(FT.IQ2_S, FT.IQ2_M) { newType = .iq3_s }
                    }
                }
            } else if category.isAttnV {
                if ft(FT.Q2_K) {
                    newType = nGQA >= 4 ? .q4_K : .q3_K
                } else if ft(FT.Q2_K_S) && nGQA >= 4 {
                    newType = .q4_K
                } else if ft(FT.IQ3_XXS) {
                    newType = nGQA >= 4 ? .q4_K : !hasImatrix ? .iq3_s : .iq3_xxs
                } else if ft(FT.IQ3_XS, FT.IQ3_S) && nGQA >= 4 {
                    newType = .q4_K
                } else if ft(FT.IQ3_M) {
                    newType = .q4_K
                } else if ft(FT.Q3_K_M) {
                    newType = iAttentionWV < 2 ? .q5_K : .q4_K
                } else if ft(FT.Q3_K_L) {
                    newType = .q5_K
                } else if ft(FT.IQ4_NL, FT.IQ4_XS) && nGQA >= 4 {
                    newType = .q5_K
                } else if ft(FT.Q4_K_M, FT.Q5_K_M) && Self.useMoreBits(iAttentionWV, nAttentionWV) {
                    newType = .q6_K
                } else if ft(FT.Q4_K_S) && iAttentionWV < 4 {
                    newType = .q5_K
                }
                if hparams.isLLMType70B {
                    // 8 heads share each attn_v: more bits cost little
                    if newType == .q3_K || newType == .q4_K { newType = .q5_K }
                }
                if nExpert == 8 {
                    newType = .q8_0
                }
                iAttentionWV += 1
            } else if category == .attentionK {
                if nExpert == 8 {
                    newType = .q8_0
                } else if ft(FT.IQ3_XS) {
                    newType = .iq3_xxs
                } else if ft(FT.IQ3_XXS) {
                    newType = .iq2_s
                }
            } else if category == .attentionQ {
                if ft(FT.IQ3_XS) {
                    newType = .iq3_xxs
                } else if ft(FT.IQ3_XXS) {
                    newType = .iq2_s
                }
            } else if category == .ffnDown {
                let (iLayer, nLayer) = try layerInfo(iFFNDown, nFFNDown, t)
                if ft(FT.Q2_K) {
                    newType = .q3_K
                } else if ft(FT.Q2_K_S) {
                    if iLayer < nLayer / 8 { newType = .q4_K }
                } else if ft(FT.IQ3_XXS) && !hasImatrix {
                    newType = iLayer < nLayer / 8 ? .q4_K : .q3_K
                } else if ft(FT.Q3_K_M) {
                    newType = iLayer < nLayer / 16 ? .q5_K
                        : !isFalcon || Self.useMoreBits(iLayer, nLayer) ? .q4_K
                        : .q3_K
                } else if ft(FT.IQ3_M) && (iLayer < nLayer / 8 || (nExpert == 8 && Self.useMoreBits(iLayer, nLayer))) {
                    newType = .q4_K
                } else if ft(FT.Q3_K_L) {
                    newType = isFalcon ? .q4_K : .q5_K
                } else if ft(FT.Q4_K_M) {
                    if isFalcon {
                        newType = iLayer < nLayer / 16 ? .q6_K : Self.useMoreBits(iLayer, nLayer) ? .q5_K : .q4_K
                    } else {
                        if Self.useMoreBits(iLayer, nLayer) { newType = .q6_K }
                    }
                } else if iLayer < nLayer / 8 && ft(FT.IQ4_NL, FT.IQ4_XS) && !hasImatrix {
                    newType = .q5_K
                } else if ft(FT.Q5_K_M) && Self.useMoreBits(iLayer, nLayer) {
                    newType = .q6_K
                } else if ft(FT.Q4_K_S) && !isFalcon && iLayer < nLayer / 8 {
                    newType = .q5_K
                } else if ft(FT.Q4_0, FT.Q5_0) && hasImatrix && iLayer < nLayer / 8 {
                    newType = ft(FT.Q4_0) ? .q4_1 : .q5_1
                }
                iFFNDown += 1
            } else if category == .attentionOutput {
                if !isFalcon {
                    if nExpert == 8 {
                        if ft(FT.Q2_K, FT.IQ3_XS, FT.IQ3_XXS, FT.Q3_K_S, FT.Q3_K_M, FT.IQ4_NL, FT.Q4_K_S, FT.Q4_K_M,
                              FT.IQ3_S, FT.IQ3_M, FT.IQ4_XS) {
                            newType = .q5_K
                        }
                    } else {
                        if ft(FT.Q2_K) { newType = .q3_K }
                        else if ft(FT.IQ3_XXS) { newType = .iq3_s }
                        else if ft(FT.Q3_K_M) { newType = .q4_K }
                        else if ft(FT.Q3_K_L) { newType = .q5_K }
                        else if ft(FT.IQ3_M) { newType = .q4_K }
                    }
                } else {
                    if ft(FT.Q3_K_L) { newType = .q4_K }
                }
            } else if category == .attentionQKV {
                // Unreachable in llama.cpp too: attn_qkv is an attn_v category, handled above.
                if ft(FT.Q3_K_M, FT.Q3_K_L, FT.IQ3_M) { newType = .q4_K }
                else if ft(FT.Q4_K_M) { newType = .q5_K }
                else if ft(FT.Q5_K_M) { newType = .q6_K }
            } else if category == .ffnGate {
                let (iLayer, nLayer) = try layerInfo(iFFNGate, nFFNGate, t)
                if ft(FT.IQ3_XS) && iLayer >= nLayer / 8 && iLayer < 7 * nLayer / 8 {
                    newType = .iq3_xxs
                }
                iFFNGate += 1
            } else if category == .ffnUp {
                let (iLayer, nLayer) = try layerInfo(iFFNUp, nFFNUp, t)
                if ft(FT.IQ3_XS) && iLayer >= nLayer / 8 && iLayer < 7 * nLayer / 8 {
                    newType = .iq3_xxs
                }
                iFFNUp += 1
            }
            return newType
        }
    }
}
