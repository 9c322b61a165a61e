import Foundation
import ModelFormats

/// One export, as `verity export` and `POST /v1/exports` describe it. The caller opens the source
/// (and the adapter) and computes their digests; this runs the export and says what it wrote.
public struct ExportJob: Sendable {
    public var format: ExportFormat
    /// GGUF: a llama-quantize file type (`Q4_K_M`, default `F16`); safetensors: `F32`, `F16` or
    /// `BF16` (default: the source's float type, F32 for a quantized source); LoRA: `peft`
    /// (default) or `gguf`.
    public var type: String?
    /// The output file (GGUF, GGUF LoRA) or folder (safetensors, PEFT). nil: the naming
    /// convention's name in the current directory; an existing directory: that name inside it.
    public var output: String?
    /// GGUF: start a new shard past this many bytes.
    public var splitMaxBytes: Int?
    /// Fold the adapter into the base before writing.
    public var merge: Bool
    /// The adapter's strength, as `--lora-scale` gives it at serve time.
    public var adapterScale: Float
    public var threads: Int
    /// How the source was named (a path, or `hf:org/name@commit`), and the digest of its weights.
    public var source: String
    public var sourceDigest: String
    /// The folder of a Hugging Face source (its tokenizer files are copied as they are).
    public var sourceDirectory: String?
    public var adapterSource: String?
    public var adapterDigest: String?
    /// `verity <version>`, written into the files' provenance.
    public var tool: String

    public init(format: ExportFormat, type: String? = nil, output: String? = nil, splitMaxBytes: Int? = nil, merge: Bool = false,
                adapterScale: Float = 1, threads: Int = 1, source: String, sourceDigest: String, sourceDirectory: String? = nil,
                adapterSource: String? = nil, adapterDigest: String? = nil, tool: String) {
        self.format = format
        self.type = type
        self.output = output
        self.splitMaxBytes = splitMaxBytes
        self.merge = merge
        self.adapterScale = adapterScale
        self.threads = threads
        self.source = source
        self.sourceDigest = sourceDigest
        self.sourceDirectory = sourceDirectory
        self.adapterSource = adapterSource
        self.adapterDigest = adapterDigest
        self.tool = tool
    }
}

/// What an export wrote.
public struct ExportOutcome: Sendable, Equatable {
    public var format: ExportFormat
    /// The type written (`Q4_K_M`, `BF16`, `gguf`).
    public var type: String
    /// The output file or folder.
    public var output: String
    public var files: [ExportedFile]
    /// Things the user should know (a quantized source dequantized, …).
    public var notes: [String]
}

public enum ModelExport {
    /// The tool exports name in their provenance.
    public static let tool = "verity/0.1"

    /// Checks the job against the source before any work: the type, the adapter options, the output
    /// path. Returns the resolved type and output path.
    public static func resolve(_ job: ExportJob, model: GGUFFile, adapter: LoRAFile?) throws(ExportError) -> (type: String, output: String) {
        if adapter == nil, job.merge { throw ExportError(.invalidOption, "--merge folds an adapter into the base: give it with --lora") }
        let type: String
        let stem: String
        let isFolder: Bool
        switch job.format {
        case .gguf:
            let fileType = try GGUFFileType.parse(job.type ?? "F16")
            if adapter != nil, !job.merge {
                throw ExportError(.invalidOption, "--to gguf with --lora writes the merged model: add --merge (or use --to lora to write the adapter alone)")
            }
            type = fileType.name
            stem = ExportNaming.stem(model, encoding: fileType.name) + ".gguf"
            isFolder = false
        case .safetensors:
            let wanted = (job.type ?? defaultFloatType(model)).uppercased()
            guard ["F32", "F16", "BF16"].contains(wanted) else {
                throw ExportError(.invalidOption, "safetensors exports are F32, F16 or BF16, not '\(job.type ?? "")'")
            }
            if adapter != nil, !job.merge {
                throw ExportError(.invalidOption, "--to safetensors with --lora writes the merged model: add --merge (or use --to lora to write the adapter alone)")
            }
            type = wanted
            stem = ExportNaming.stem(model, encoding: wanted)
            isFolder = true
        case .lora:
            guard let adapter else { throw ExportError(.invalidOption, "--to lora writes an adapter: give it with --lora ADAPTER") }
            if job.merge { throw ExportError(.invalidOption, "--merge folds the adapter into the base; --to lora writes the adapter alone (use --to gguf or --to safetensors with --merge)") }
            guard let kind = LoRAExport.Kind(rawValue: (job.type ?? "peft").lowercased()) else {
                throw ExportError(.invalidOption, "a LoRA export is 'peft' (a PEFT folder) or 'gguf' (a llama.cpp GGUF LoRA), not '\(job.type ?? "")'")
            }
            type = kind.rawValue
            let name = URL(fileURLWithPath: adapter.path).lastPathComponent
            let base = name.lowercased().hasSuffix(".gguf") ? String(name.dropLast(5)) : name
            stem = kind == .gguf ? base + "-LoRA.gguf" : base + "-peft"
            isFolder = kind == .peft
        }
        let fm = FileManager.default
        var output = job.output ?? fm.currentDirectoryPath + "/" + stem
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue, !isFolder {
            output = (output.hasSuffix("/") ? String(output.dropLast()) : output) + "/" + stem
        }
        if output.hasSuffix("/") { output.removeLast() }
        let parent = URL(fileURLWithPath: output).deletingLastPathComponent().path
        guard fm.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ExportError(.invalidOption, "the folder \(parent) does not exist: create it first")
        }
        if isFolder {
            if fm.fileExists(atPath: output, isDirectory: &isDirectory) {
                guard isDirectory.boolValue, ((try? fm.contentsOfDirectory(atPath: output)) ?? ["?"]).isEmpty else {
                    throw ExportError(.invalidOption, "\(output) already exists and is not an empty folder; pick a new one")
                }
            }
        } else {
            let first = job.splitMaxBytes != nil ? GGUFExport.shardPaths(output, count: 2)[0] : output
            if fm.fileExists(atPath: output) || fm.fileExists(atPath: first) {
                throw ExportError(.invalidOption, "\(fm.fileExists(atPath: output) ? output : first) already exists; remove it or pick another --out")
            }
        }
        return (type, output)
    }

    /// The float type of a model's matrices when they are all one float type; F32 otherwise.
    static func defaultFloatType(_ model: GGUFFile) -> String {
        let types = Set(model.tensors.filter { $0.dimensions.count >= 2 }.map(\.type))
        if types == [.bf16] { return "BF16" }
        if types == [.f16] { return "F16" }
        return "F32"
    }

    /// Runs the export.
    /// `pendingDigest`: the source's digest, still being hashed (`job.sourceDigest` is then
    /// ignored): a GGUF export starts converting meanwhile; the others wait for it.
    public static func run(_ job: ExportJob, model source: GGUFFile, adapter: LoRAFile?, pendingDigest: PendingDigest? = nil,
                           cancelled: @escaping () -> Bool = { false },
                           progress: @escaping (ExportProgress) -> Void) throws(ExportError) -> ExportOutcome {
        var job = job
        let (type, output) = try resolve(job, model: source, adapter: adapter)
        if let pendingDigest, job.format != .gguf { job.sourceDigest = try pendingDigest.wait() }
        var notes: [String] = []
        if job.format == .lora, let adapter {
            let files = try LoRAExport.write(adapter, base: source, as: LoRAExport.Kind(rawValue: type)!, to: output, metadata: provenanceKeys(job))
            return ExportOutcome(format: .lora, type: type, output: output, files: files, notes: notes)
        }
        var model = source
        if let adapter, job.merge {
            model = try MergedModel.merge(source, adapter: adapter, scale: job.adapterScale, threads: job.threads, progress: progress)
        }
        // A quantized GGUF's types, or a Hugging Face folder's quantization (bitsandbytes 4-bit,
        // which loads already dequantized).
        let ggufTypes = Set(source.tensors.filter { $0.dimensions.count >= 2 && !$0.type.isFloat }.map(\.type.name)).sorted()
        let quantization: String? = ggufTypes.isEmpty ? folderQuantization(job.sourceDirectory) : ggufTypes.joined(separator: ", ")
        let quantized = quantization != nil
        switch job.format {
        case .gguf:
            let fileType = GGUFFileType.named(type)!
            var extra = provenanceKeys(job)
            if model.metadata["general.size_label"] == nil {
                extra.append(("general.size_label", .string(ExportNaming.sizeLabel(parameters: ExportNaming.parameterCount(model)))))
            }
            if quantized, fileType.defaultType.isFloat {
                notes.append("the source is quantized: its weights were dequantized to \(fileType.name), which does not restore the original precision")
            } else if quantized {
                notes.append("the source is quantized: its quantized weights were dequantized and quantized again")
            }
            var deferred: GGUFExport.DeferredMetadata?
            if let pendingDigest {
                // The digest key, in its place among the provenance keys once it is known.
                let at = extra.firstIndex { $0.0 == "verity.export.source_digest" } ?? extra.count
                let after = Array(extra[(at + 1 < extra.count ? at + 1 : extra.count)...])
                extra = Array(extra[..<min(at, extra.count)])
                deferred = GGUFExport.DeferredMetadata(isReady: { pendingDigest.isReady }) { () throws(ExportError) in
                    [("verity.export.source_digest", .string(try pendingDigest.wait()))] + after
                }
            }
            let files = try GGUFExport.write(model, to: output, options: GGUFExport.Options(fileType: fileType, plan: QuantizationPlan.Options(allowRequantize: true), splitMaxBytes: job.splitMaxBytes, metadata: extra, deferredMetadata: deferred, threads: job.threads),
                                             cancelled: cancelled, progress: progress)
            return ExportOutcome(format: .gguf, type: type, output: files.count > 1 ? files[0].path : output, files: files, notes: notes)
        case .safetensors:
            if quantized {
                notes.append("the source is quantized: its weights were dequantized to \(type); the model card says so")
            }
            let dtype: SafetensorsFile.DType = type == "F32" ? .f32 : type == "F16" ? .f16 : .bf16
            let card = modelCard(job, model: model, type: type, quantization: quantization)
            let options = HFExport.Options(dtype: dtype, sourceDirectory: job.merge ? nil : job.sourceDirectory, modelCard: card, threads: job.threads)
            let names = try HFExport.write(model, to: output, options: options, progress: progress)
            var files: [ExportedFile] = []
            for name in names { files.append(try FileDigest.exported(output + "/" + name)) }
            progress(ExportProgress(stage: "done", done: names.count, total: names.count))
            return ExportOutcome(format: .safetensors, type: type, output: output, files: files, notes: notes)
        case .lora:
            throw ExportError(.invalidOption, "--to lora needs --lora ADAPTER")
        }
    }

    /// GGUF keys that say where an exported file came from: the base model (llama.cpp's
    /// `general.base_model.*`), and Verity's own `verity.export.*` (source, digests, adapter, tool).
    static func provenanceKeys(_ job: ExportJob) -> [(String, GGUFValue)] {
        var keys: [(String, GGUFValue)] = [
            ("verity.export.tool", .string(job.tool)),
            ("verity.export.source", .string(job.source)),
            ("verity.export.source_digest", .string(job.sourceDigest)),
        ]
        if let adapter = job.adapterSource {
            keys.append(("verity.export.adapter", .string(adapter)))
            if let digest = job.adapterDigest { keys.append(("verity.export.adapter_digest", .string(digest))) }
            keys.append(("verity.export.adapter_scale", .float32(job.adapterScale)))
            keys.append(("verity.export.merged", .bool(job.merge)))
        }
        if job.source.hasPrefix("hf:") {
            let repo = String(job.source.dropFirst(3).split(separator: "@", maxSplits: 1)[0].split(separator: ":", maxSplits: 1)[0])
            keys.append(("general.base_model.count", .uint32(1)))
            keys.append(("general.base_model.0.name", .string(String(repo.split(separator: "/").last ?? Substring(repo)))))
            if repo.contains("/") { keys.append(("general.base_model.0.organization", .string(String(repo.split(separator: "/")[0])))) }
            keys.append(("general.base_model.0.repo_url", .string("https://huggingface.co/" + repo)))
        }
        return keys
    }

    /// A Hugging Face folder's `quantization_config`, described (`bitsandbytes nf4`); nil when it
    /// has none.
    static func folderQuantization(_ directory: String?) -> String? {
        guard let directory, let data = FileManager.default.contents(atPath: directory + "/config.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let config = object["quantization_config"] as? [String: Any] else { return nil }
        let method = config["quant_method"] as? String ?? "quantized"
        let kind = config["bnb_4bit_quant_type"] as? String ?? (config["load_in_8bit"] as? Bool == true ? "8-bit" : nil)
        return [method, kind].compactMap { $0 }.joined(separator: " ")
    }

    /// The README.md of a safetensors export.
    static func modelCard(_ job: ExportJob, model: GGUFFile, type: String, quantization: String?) -> String {
        let name = model.metadata["general.name"]?.stringValue ?? URL(fileURLWithPath: job.source).lastPathComponent
        var lines = [
            "---",
            "library_name: transformers",
            "tags:",
            "- verity-export",
            "---",
            "",
            "# \(name)",
            "",
            "Exported by \(job.tool) (`verity export --to safetensors --type \(type)`).",
            "",
            "| | |",
            "|---|---|",
            "| source | `\(job.source)` |",
            "| source digest | `\(job.sourceDigest)` |",
        ]
        if let adapter = job.adapterSource {
            lines.append("| adapter | `\(adapter)`\(job.merge ? " (merged, scale \(job.adapterScale))" : "") |")
            if let digest = job.adapterDigest { lines.append("| adapter digest | `\(digest)` |") }
        }
        lines.append("| weights | \(type) |")
        lines.append("")
        if let quantization {
            lines.append("The source's weights were quantized (\(quantization)). They were dequantized to \(type) for this export: the quantization error stays in the weights, and this folder is no more precise than its source.")
            lines.append("")
        }
        lines.append("Every export is recorded in the exporting node's ledger; `verity ledger provenance FILE` finds the record of any file of this folder.")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension GGMLType {
    var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
}
