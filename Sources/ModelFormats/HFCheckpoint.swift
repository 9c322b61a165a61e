import Foundation

/// A Hugging Face model folder (`config.json`, `*.safetensors` with or without
/// `model.safetensors.index.json`, `tokenizer.json`, `tokenizer_config.json` or
/// `chat_template.jinja`, `generation_config.json`) read as the GGUF model that llama.cpp's
/// `convert_hf_to_gguf.py` would write from it, without writing anything: the same metadata keys,
/// tensor names and conventions (Llama's Q/K rows permuted to adjacent-pair RoPE, Gemma's norm
/// weights stored as 1 + w), with the F32/F16/BF16 weights left in the memory-mapped safetensors
/// files. So every architecture, the tokenizer and the chat template load through the same code
/// as a GGUF file does. A bitsandbytes 4-bit checkpoint's weights are dequantized at load
/// (``BitsAndBytes``), bit for bit as bitsandbytes does, to the 16- or 32-bit type they had.
public enum HFCheckpoint {
    /// Whether `directory` looks like a Hugging Face model folder (it has a `config.json`).
    public static func isCheckpoint(directory: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue
            && FileManager.default.fileExists(atPath: directory + "/config.json")
    }

    /// The `architectures` Verity can load from a folder, and the GGUF architecture each becomes.
    public static let architectures: [String: String] = [
        "LlamaForCausalLM": "llama", "MistralForCausalLM": "llama",
        "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
        "Gemma3ForCausalLM": "gemma3", "Gemma3ForConditionalGeneration": "gemma3",
        "Phi3ForCausalLM": "phi3",
    ]

    /// Opens the folder and assembles the model. Errors name the folder and what is wrong: an
    /// unknown architecture, dtype, quantization or tensor, a missing tensor or file.
    public static func load(directory: String) throws(GGUFError) -> GGUFFile {
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let root = try readJSONObject(dir + "/config.json")
        guard let names = root["architectures"] as? [String], let hfArchitecture = names.first else {
            throw GGUFError(.missingKey, "\(dir)/config.json has no 'architectures' list: which model class is this?")
        }
        guard let arch = architectures[hfArchitecture] else {
            throw GGUFError(.missingKey, "\(dir): architecture '\(hfArchitecture)' is not supported (supported: \(architectures.keys.sorted().joined(separator: ", ")))")
        }
        // Gemma 3's multimodal class keeps the language model's settings in text_config.
        let config = JSONObject(hfArchitecture == "Gemma3ForConditionalGeneration" ? (root["text_config"] as? [String: Any] ?? [:]) : root,
                                file: "\(dir)/config.json")
        let quantization = try BitsAndBytes.config(root, file: "\(dir)/config.json")
        let weights = try SafetensorsSet(directory: dir)
        var builder = Builder(directory: dir, hfArchitecture: hfArchitecture, arch: arch, config: config, weights: weights)
        try builder.addHyperparameters()
        try builder.addTensors(bitsAndBytes: quantization)
        try HFTokenizer.addMetadata(directory: dir, config: root, to: &builder.metadata)
        return try GGUFFile(metadata: builder.metadata, tensors: builder.tensors)
    }

    // MARK: - JSON

    static func readJSONObject(_ path: String) throws(GGUFError) -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GGUFError(.io, "cannot read \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
            throw GGUFError(.invalidString, "\(path) is not a JSON object")
        }
        return dict
    }

    /// Typed reads of config.json values, with errors that name the key and the file.
    struct JSONObject {
        let values: [String: Any]
        let file: String

        init(_ values: [String: Any], file: String) {
            self.values = values
            self.file = file
        }

        func has(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }

        func int(_ key: String) throws(GGUFError) -> Int {
            guard let v = optionalInt(key) else { throw GGUFError(.missingKey, "\(file) has no integer '\(key)'") }
            return v
        }

        func optionalInt(_ key: String) -> Int? {
            guard let n = values[key] as? NSNumber else { return nil }
            return n.intValue
        }

        func optionalDouble(_ key: String) -> Double? {
            guard let n = values[key] as? NSNumber else { return nil }
            return n.doubleValue
        }

        func bool(_ key: String, default value: Bool) -> Bool {
            (values[key] as? NSNumber).map(\.boolValue) ?? value
        }

        func string(_ key: String) -> String? { values[key] as? String }

        func object(_ key: String) -> JSONObject? {
            (values[key] as? [String: Any]).map { JSONObject($0, file: file) }
        }
    }
}

/// The safetensors files of a folder, single or sharded, and where each tensor lives.
struct SafetensorsSet {
    let files: [SafetensorsFile]
    /// Tensor name → (file index, tensor).
    let tensors: [String: (file: Int, tensor: SafetensorsFile.Tensor)]

    init(directory dir: String) throws(GGUFError) {
        let fm = FileManager.default
        var paths: [String] = []
        if fm.fileExists(atPath: dir + "/model.safetensors.index.json") {
            let index = try HFCheckpoint.readJSONObject(dir + "/model.safetensors.index.json")
            guard let map = index["weight_map"] as? [String: String] else {
                throw GGUFError(.missingKey, "\(dir)/model.safetensors.index.json has no 'weight_map'")
            }
            for name in Set(map.values).sorted() {
                guard !name.contains(".."), !name.hasPrefix("/") else {
                    throw GGUFError(.io, "\(dir)/model.safetensors.index.json names a file outside the folder: '\(name)'")
                }
                paths.append(dir + "/" + name)
            }
        } else if fm.fileExists(atPath: dir + "/model.safetensors") {
            paths = [dir + "/model.safetensors"]
        } else {
            let others = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !others.isEmpty else {
                let bin = fm.fileExists(atPath: dir + "/pytorch_model.bin") || fm.fileExists(atPath: dir + "/pytorch_model.bin.index.json")
                throw GGUFError(.io, "\(dir) has no model.safetensors or model.safetensors.index.json"
                                + (bin ? " (it has pytorch_model.bin: PyTorch pickles are not loaded, for safety; convert them to safetensors)" : ""))
            }
            paths = others.map { dir + "/" + $0 }
        }
        var files: [SafetensorsFile] = []
        var tensors: [String: (file: Int, tensor: SafetensorsFile.Tensor)] = [:]
        for path in paths {
            guard fm.fileExists(atPath: path) else { throw GGUFError(.io, "\(path) is missing (named by the index)") }
            let file = try SafetensorsFile(path: path)
            for (name, t) in file.tensors {
                guard tensors[name] == nil else { throw GGUFError(.duplicateTensor, "tensor '\(name)' is in two files of \(dir)") }
                tensors[name] = (files.count, t)
            }
            files.append(file)
        }
        self.files = files
        self.tensors = tensors
    }

    /// The bytes of tensor `name`, which must exist.
    func bytes(_ name: String) -> UnsafeRawBufferPointer {
        let (file, tensor) = tensors[name]!
        return files[file].data(tensor)
    }
}
