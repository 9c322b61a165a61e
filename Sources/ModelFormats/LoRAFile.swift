import Foundation

/// A LoRA adapter read from PEFT's format (a folder with `adapter_config.json` and
/// `adapter_model.safetensors`, as PEFT, TRL and Unsloth save it) or from llama.cpp's GGUF LoRA
/// (`general.type = adapter`), mapped onto the base model's GGUF tensor names: for each adapted
/// weight `W` (out × in), `A` (rank × in) and `B` (out × rank), so that the adapted product is
/// `W·x + scale · B·(A·x)`. PEFT's B rows for Llama's q_proj / k_proj are permuted as the base's
/// rows are (convert_hf_to_gguf.py's rule, as convert_lora_to_gguf.py applies it).
///
/// Shapes are checked against the base model; what Verity cannot apply exactly (DoRA, LoRA on
/// embeddings, trained biases, another base) is refused with an error that says so.
public struct LoRAFile: @unchecked Sendable {
    /// A 2-D tensor of F32, F16 or BF16 values, `rows` × `columns`, row-major.
    public struct Matrix: @unchecked Sendable {
        public let type: GGMLType
        public let rows: Int
        public let columns: Int
        public let owner: MappedFile
        public let offset: Int

        public var byteCount: Int { rows * columns * (type == .f32 ? 4 : 2) }
        public var bytes: UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: owner.buffer[offset..<(offset + byteCount)])
        }
    }

    /// The low-rank pair of one base weight.
    public struct Pair: @unchecked Sendable {
        public let a: Matrix
        public let b: Matrix
        /// alpha / rank (alpha / √rank with rsLoRA; 1 for a GGUF LoRA without alpha).
        public let scale: Float
        public var rank: Int { a.rows }
        /// The checkpoint's module name (`model.layers.0.self_attn.q_proj`) and B in its row order
        /// (before the Q/K permutation), for merging into a Hugging Face checkpoint. GGUF LoRAs: nil.
        public var module: String? = nil
        public var checkpointB: Matrix? = nil
    }

    public enum Format: String, Sendable { case peft, gguf }

    public let path: String
    public let format: Format
    /// By the base's GGUF tensor name (`blk.0.attn_q.weight`).
    public let pairs: [String: Pair]
    /// Whole weights the adapter replaces (PEFT's `modules_to_save`): `token_embd.weight`,
    /// `output.weight`.
    public let replacements: [String: Matrix]
    /// The checkpoint names of ``replacements`` (`lm_head.weight`), by GGUF name.
    public var replacementModules: [String: String] = [:]
    /// `base_model_name_or_path` of a PEFT adapter, `general.base_model.0.name` of a GGUF one.
    public let baseModelName: String?
    /// The files the adapter was read from (for its digest).
    public let files: [String]

    /// Bytes of adapter weights held in memory.
    public var byteCount: Int {
        pairs.values.reduce(0) { $0 + $1.a.byteCount + $1.b.byteCount } + replacements.values.reduce(0) { $0 + $1.byteCount }
    }

    /// Reads an adapter (a PEFT folder or a GGUF LoRA file) for `base`.
    public static func load(path: String, base: GGUFFile) throws(GGUFError) -> LoRAFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw GGUFError(.io, "adapter \(path) does not exist")
        }
        let adapter: LoRAFile
        if isDirectory.boolValue {
            adapter = try loadPEFT(directory: path.hasSuffix("/") ? String(path.dropLast()) : path, base: base)
        } else {
            adapter = try loadGGUF(path: path, base: base)
        }
        try adapter.check(against: base)
        return adapter
    }

    // MARK: - PEFT

    static func loadPEFT(directory dir: String, base: GGUFFile) throws(GGUFError) -> LoRAFile {
        let configPath = dir + "/adapter_config.json"
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw GGUFError(.io, "\(dir) has no adapter_config.json: not a PEFT adapter folder")
        }
        let config = HFCheckpoint.JSONObject(try HFCheckpoint.readJSONObject(configPath), file: configPath)
        let peftType = config.string("peft_type") ?? "LORA"
        guard peftType == "LORA" else {
            throw GGUFError(.invalidTensor, "\(configPath): peft_type \(peftType) is not supported (Verity applies LORA adapters)")
        }
        if config.bool("use_dora", default: false) {
            throw GGUFError(.invalidTensor, "\(configPath): a DoRA adapter (use_dora: true) is not supported; merge it into the base with PEFT (merge_and_unload) and serve the merged checkpoint")
        }
        if let bias = config.string("bias"), bias != "none" {
            throw GGUFError(.invalidTensor, "\(configPath): bias '\(bias)' (trained biases) is not supported; only bias 'none'")
        }
        if config.has("trainable_token_indices") {
            throw GGUFError(.invalidTensor, "\(configPath): trainable_token_indices is not supported")
        }
        var weightsPath = dir + "/adapter_model.safetensors"
        if !FileManager.default.fileExists(atPath: weightsPath) {
            if FileManager.default.fileExists(atPath: dir + "/adapter_model.bin") {
                throw GGUFError(.io, "\(dir) has adapter_model.bin: PyTorch pickles are not loaded, for safety; save the adapter with safe_serialization (safetensors)")
            }
            weightsPath = ""
        }
        guard !weightsPath.isEmpty else { throw GGUFError(.io, "\(dir) has no adapter_model.safetensors") }
        let weights = try SafetensorsFile(path: weightsPath)

        let names = try tensorNames(of: base, directory: dir)
        let defaultRank = config.optionalInt("r") ?? 8
        let defaultAlpha = config.optionalDouble("lora_alpha") ?? Double(defaultRank)
        let rsLoRA = config.bool("use_rslora", default: false)
        let rankPattern = (config.values["rank_pattern"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
        let alphaPattern = (config.values["alpha_pattern"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }

        var halves: [String: (a: SafetensorsFile.Tensor?, b: SafetensorsFile.Tensor?)] = [:]
        var replacements: [String: Matrix] = [:]
        var replacementModules: [String: String] = [:]
        for (key, tensor) in weights.tensors {
            var name = key
            for prefix in ["base_model.model."] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
            if name.contains("lora_embedding_") {
                throw GGUFError(.invalidTensor, "\(weightsPath): LoRA on an embedding ('\(key)') is not supported; target linear layers, or put embed_tokens in modules_to_save")
            }
            if name.contains("lora_magnitude_vector") {
                throw GGUFError(.invalidTensor, "\(weightsPath): '\(key)' is a DoRA magnitude: DoRA adapters are not supported")
            }
            if let range = name.range(of: ".lora_A.weight", options: .backwards), range.upperBound == name.endIndex {
                halves[String(name[..<range.lowerBound]), default: (nil, nil)].a = tensor
            } else if let range = name.range(of: ".lora_B.weight", options: .backwards), range.upperBound == name.endIndex {
                halves[String(name[..<range.lowerBound]), default: (nil, nil)].b = tensor
            } else if name.hasSuffix(".weight") {
                // modules_to_save: a whole replacement weight (PEFT strips `modules_to_save.default`).
                let module = name.replacingOccurrences(of: ".modules_to_save.default", with: "")
                guard let (gguf, transform) = try names.ggufName(module), ["token_embd.weight", "output.weight"].contains(gguf),
                      case .none = transform else {
                    throw GGUFError(.invalidTensor, "\(weightsPath): '\(key)' replaces a module Verity cannot swap per adapter (modules_to_save may hold embed_tokens and lm_head)")
                }
                replacements[gguf] = try matrix(tensor, in: weights, name: key)
                replacementModules[gguf] = module
            } else {
                throw GGUFError(.invalidTensor, "\(weightsPath): tensor '\(key)' is not a LoRA A/B weight or a saved module; refusing to drop it silently")
            }
        }
        var pairs: [String: Pair] = [:]
        for module in halves.keys.sorted() {
            guard let a = halves[module]!.a, let b = halves[module]!.b else {
                throw GGUFError(.missingKey, "\(weightsPath): module '\(module)' has only one of lora_A and lora_B")
            }
            guard a.shape.count == 2, b.shape.count == 2, a.shape[0] == b.shape[1], a.shape[0] > 0 else {
                throw GGUFError(.invalidTensor, "\(weightsPath): '\(module)' has lora_A \(a.shape) and lora_B \(b.shape), which do not make a low-rank pair")
            }
            guard let (gguf, transform) = try names.ggufName(module + ".weight") else { continue }
            let rank = a.shape[0]
            let patternRank = patternValue(rankPattern, module) ?? defaultRank
            guard patternRank == rank else {
                throw GGUFError(.invalidTensor, "\(configPath): '\(module)' has rank \(rank) but the config says \(patternRank)")
            }
            let alpha = patternValue(alphaPattern, module) ?? defaultAlpha
            let scale = Float(rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
            var bMatrix = try matrix(b, in: weights, name: module + ".lora_B.weight")
            if case .permuteRows(let heads) = transform {
                guard b.shape[0] % heads == 0, (b.shape[0] / heads) % 2 == 0 else {
                    throw GGUFError(.invalidTensor, "\(weightsPath): the shape of '\(module).lora_B' (\(b.shape[0]) rows) is not \(heads) heads of an even size: this adapter was trained on another base model")
                }
                let source = bMatrix
                let owner = MappedFile(allocating: source.byteCount) { dst in
                    HFTensorNames.permuteRows(source.bytes, into: dst, rows: source.rows, rowBytes: source.byteCount / source.rows, heads: heads)
                }
                bMatrix = Matrix(type: source.type, rows: source.rows, columns: source.columns, owner: owner, offset: 0)
            }
            pairs[gguf] = Pair(a: try matrix(a, in: weights, name: module + ".lora_A.weight"), b: bMatrix, scale: scale, module: module,
                               checkpointB: try matrix(b, in: weights, name: module + ".lora_B.weight"))
        }
        guard !pairs.isEmpty || !replacements.isEmpty else {
            throw GGUFError(.invalidTensor, "\(weightsPath) holds no LoRA weights")
        }
        var file = LoRAFile(path: dir, format: .peft, pairs: pairs, replacements: replacements,
                            baseModelName: config.string("base_model_name_or_path"), files: [configPath, weightsPath])
        file.replacementModules = replacementModules
        return file
    }

    /// PEFT's `rank_pattern` / `alpha_pattern` lookup: the first key `k` whose regex matches the
    /// module's name as `(.*\.)?(k)$`.
    static func patternValue<T>(_ patterns: [String: T], _ module: String) -> T? {
        for (key, value) in patterns.sorted(by: { $0.key < $1.key }) {
            guard let regex = try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$") else { continue }
            if regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil { return value }
        }
        return nil
    }

    static func matrix(_ tensor: SafetensorsFile.Tensor, in file: SafetensorsFile, name: String) throws(GGUFError) -> Matrix {
        guard let type = tensor.dtype.ggmlType else {
            throw GGUFError(.unknownTensorType, "\(file.path): '\(name)' is \(tensor.dtype.rawValue); adapters load as F32, F16 or BF16")
        }
        guard tensor.shape.count == 2, tensor.shape.allSatisfy({ $0 > 0 }) else {
            throw GGUFError(.invalidTensor, "\(file.path): '\(name)' has shape \(tensor.shape); expected a matrix")
        }
        return Matrix(type: type, rows: tensor.shape[0], columns: tensor.shape[1], owner: file.storage, offset: tensor.range.lowerBound)
    }

    /// The base's tensor naming rules, from its GGUF metadata.
    static func tensorNames(of base: GGUFFile, directory: String) throws(GGUFError) -> HFTensorNames {
        let arch = try base.string("general.architecture")
        let heads = try base.int("\(arch).attention.head_count")
        return HFTensorNames(directory: directory, hfArchitecture: "adapter of a \(arch) model", arch: arch,
                             layers: try base.int("\(arch).block_count"), heads: heads,
                             kvHeads: try base.optionalInt("\(arch).attention.head_count_kv") ?? heads)
    }

    // MARK: - GGUF LoRA

    static func loadGGUF(path: String, base: GGUFFile) throws(GGUFError) -> LoRAFile {
        let file = try GGUFFile(path: path)
        let type = try file.optionalString("general.type")
        guard type == "adapter" else {
            throw GGUFError(.invalidTensor, "\(path) is not a LoRA adapter (general.type is \(type.map { "'\($0)'" } ?? "missing"), expected 'adapter'); for a model, use --model")
        }
        let adapterType = try file.optionalString("adapter.type") ?? "lora"
        guard adapterType == "lora" else {
            throw GGUFError(.invalidTensor, "\(path): adapter.type '\(adapterType)' is not supported (only lora)")
        }
        let arch = try file.string("general.architecture")
        let baseArch = try base.string("general.architecture")
        guard arch == baseArch else {
            throw GGUFError(.invalidTensor, "\(path) is an adapter for a \(arch) model; the base model is \(baseArch)")
        }
        let alpha = try file.optionalFloat("adapter.lora.alpha") ?? 0
        var halves: [String: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        for info in file.tensors {
            if info.name.hasSuffix(".lora_a") {
                halves[String(info.name.dropLast(7)), default: (nil, nil)].a = info
            } else if info.name.hasSuffix(".lora_b") {
                halves[String(info.name.dropLast(7)), default: (nil, nil)].b = info
            } else {
                throw GGUFError(.invalidTensor, "\(path): tensor '\(info.name)' is not a LoRA A/B weight; refusing to drop it silently")
            }
        }
        var pairs: [String: Pair] = [:]
        for (name, half) in halves {
            guard let a = half.a, let b = half.b else {
                throw GGUFError(.missingKey, "\(path): '\(name)' has only one of lora_a and lora_b")
            }
            // ggml order: A is [in, rank], B is [rank, out].
            guard a.dimensions.count == 2, b.dimensions.count == 2, a.dimensions[1] == b.dimensions[0], a.dimensions[1] > 0 else {
                throw GGUFError(.invalidTensor, "\(path): '\(name)' has lora_a \(a.dimensions) and lora_b \(b.dimensions), which do not make a low-rank pair")
            }
            let rank = a.dimensions[1]
            func matrix(_ info: GGUFTensorInfo) throws(GGUFError) -> Matrix {
                guard [.f32, .f16, .bf16].contains(info.type) else {
                    throw GGUFError(.unknownTensorType, "\(path): '\(info.name)' is \(info.type.name); Verity loads F32, F16 and BF16 LoRA weights (convert with --outtype f32, f16 or bf16)")
                }
                let (owner, offset) = file.tensorLocation(info)
                return Matrix(type: info.type, rows: info.dimensions[1], columns: info.dimensions[0], owner: owner, offset: offset)
            }
            pairs[name] = Pair(a: try matrix(a), b: try matrix(b), scale: alpha != 0 ? alpha / Float(rank) : 1)
        }
        guard !pairs.isEmpty else { throw GGUFError(.invalidTensor, "\(path) holds no LoRA weights") }
        // convert_lora_to_gguf.py names the base it converted against (its general.name is the adapter's).
        let baseName = try file.optionalString("general.base_model.0.name")
        return LoRAFile(path: path, format: .gguf, pairs: pairs, replacements: [:], baseModelName: baseName, files: [path])
    }

    // MARK: - Checks

    /// Every adapted weight exists in the base with the adapter's shape.
    func check(against base: GGUFFile) throws(GGUFError) {
        func baseShape(_ name: String) throws(GGUFError) -> (rows: Int, columns: Int) {
            guard let info = base.tensor(named: name) ?? (name == "output.weight" ? base.tensor(named: "token_embd.weight") : nil),
                  info.dimensions.count == 2 else {
                throw GGUFError(.invalidTensor, "\(path) adapts '\(name)', which the base model does not have: is this adapter for another model?")
            }
            return (info.dimensions[1], info.dimensions[0])
        }
        for (name, pair) in pairs.sorted(by: { $0.key < $1.key }) {
            let (rows, columns) = try baseShape(name)
            guard pair.a.columns == columns, pair.b.rows == rows else {
                throw GGUFError(.invalidTensor, "\(path): the adapter's shape for '\(name)' is \(pair.b.rows)×\(pair.a.columns) but the base weight is \(rows)×\(columns): this adapter was trained on another base model")
            }
        }
        for (name, matrix) in replacements.sorted(by: { $0.key < $1.key }) {
            let (rows, columns) = try baseShape(name)
            guard matrix.rows == rows, matrix.columns == columns else {
                throw GGUFError(.invalidTensor, "\(path): the adapter's '\(name)' has shape \(matrix.rows)×\(matrix.columns) but the base's is \(rows)×\(columns): this adapter was trained on another base model")
            }
        }
    }

    /// Whether `baseModelName` (the adapter's `base_model_name_or_path`) names another model than
    /// the base, known by `candidates` (its hub repo, `general.name`, its folder or file name).
    /// A name is read for its model family (the first word that starts with a known family:
    /// `llama`, `smollm2`, `qwen3`, …) and its sizes (`135m`, `8b`): another family, or sizes that
    /// share nothing, is another model. Names without a known family (a folder called `my-run`, a
    /// snapshot's commit) say nothing, and the shapes decide. So an adapter trained on
    /// `unsloth/Llama-3.2-1B-Instruct-bnb-4bit` fits `meta-llama/Llama-3.2-1B-Instruct`, and one
    /// trained on `meta-llama/Llama-3.1-70B` does not fit SmolLM2-135M.
    public func namesOtherBase(than candidates: [String]) -> Bool {
        guard let adapterBase = baseModelName.map(Self.modelTraits), let family = adapterBase.family else { return false }
        let known = candidates.map(Self.modelTraits).filter { $0.family != nil }
        guard !known.isEmpty else { return false }
        return !known.contains { base in
            base.family == family && (base.sizes.isEmpty || adapterBase.sizes.isEmpty || !base.sizes.isDisjoint(with: adapterBase.sizes))
        }
    }

    /// Family stems of model names (lowercased word prefixes).
    static let familyStems = ["llama", "tinyllama", "mistral", "mixtral", "ministral", "smollm", "qwen", "gemma", "phi",
                              "deepseek", "olmo", "granite", "falcon", "gpt", "yi", "internlm", "baichuan", "stablelm"]

    /// A model name's family word and size words.
    static func modelTraits(_ name: String) -> (family: String?, sizes: Set<String>) {
        let words = normalizedWords(name)
        let family = words.first { word in familyStems.contains { word.hasPrefix($0) } }
        let sizes = Set(words.filter { $0.range(of: #"^[0-9]+(p[0-9]+)?[mb]$"#, options: .regularExpression) != nil })
        return (family, sizes)
    }

    /// The name's words: its last path component, lowercased, without a quantization suffix,
    /// split at anything but letters and digits (a decimal point in a size becomes `p`).
    static func normalizedWords(_ name: String) -> [String] {
        var text = normalizedName(name)
        text = text.replacingOccurrences(of: #"([0-9])\.([0-9])"#, with: "$1p$2", options: .regularExpression)
        return text.split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }

    static func normalizedModelName(_ name: String) -> String {
        normalizedName(name).filter { $0.isLetter || $0.isNumber }
    }

    static func normalizedName(_ name: String) -> String {
        var last = name.split(separator: "/").last.map(String.init) ?? name
        if last.lowercased().hasSuffix(".gguf") { last = String(last.dropLast(5)) }
        var lowered = last.lowercased()
        for suffix in ["-unsloth-bnb-4bit", "-bnb-4bit", "-unsloth", "-gguf", "-safetensors"] where lowered.hasSuffix(suffix) {
            lowered = String(lowered.dropLast(suffix.count))
        }
        // A llama.cpp quantization tag (`.Q4_K_M`, `-f16`).
        if let match = lowered.range(of: #"[.\-_](q[0-9][a-z0-9_]*|iq[0-9][a-z0-9_]*|f16|bf16|f32)$"#, options: .regularExpression) {
            lowered = String(lowered[..<match.lowerBound])
        }
        return lowered
    }
}
