import Foundation
import Kernels
import ModelFormats

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a model as a Hugging Face folder that transformers and vLLM load unchanged: the inverse
/// of `HFCheckpoint.load`. The GGUF tensors get their checkpoint names back
/// (`HFTensorNames.hfName`), Llama's Q/K rows their rotate-half order, Gemma's norms their w
/// (stored as 1 + w); Phi-3's fused qkv_proj and gate_up_proj stay fused, as its checkpoints have
/// them. Every weight is written as `options.dtype` (quantized ones dequantized to F32 first, then
/// rounded as ggml rounds), one piece of one tensor at a time, in safetensors shards of at most
/// `maxShardBytes` of tensor data (`SafetensorsShardWriter`). config.json and
/// generation_config.json come from the metadata (`HFConfigExport`), the tokenizer files from
/// `HFTokenizerExport` — or, for a model read from a Hugging Face folder, the folder's own files
/// are copied (config.json with its dtype set and any `quantization_config` dropped).
///
/// The folder: created if missing. Existing files are never replaced unless `options.overwrite`:
/// the export refuses a folder that already has any file it would write, or any other
/// `*.safetensors` / `*.safetensors.index.json` (stale weights a loader could pick up); with
/// `overwrite` those are replaced, and stale weight files removed. Everything is written under
/// temporary names (`NAME.partial`) and renamed only when all is written, weights first and
/// config.json last, so an interrupted export never leaves a folder that looks complete; on an
/// error the temporary files are removed.
public enum HFExport {
    /// transformers' default `max_shard_size`, "5GB" (10⁹ bytes per GB, as huggingface_hub counts).
    public static let defaultMaxShardBytes = 5_000_000_000

    public struct Options: Sendable {
        /// The weights' type: .f32, .f16 or .bf16.
        public var dtype: SafetensorsFile.DType
        /// The most tensor bytes per safetensors file (a larger tensor gets a file of its own).
        public var maxShardBytes: Int
        /// The Hugging Face folder the model was read from, if it was: its tokenizer files,
        /// chat_template.jinja, generation_config.json and config.json are copied instead of
        /// generated.
        public var sourceDirectory: String?
        /// README.md's contents, written as is (nothing is written when empty).
        public var modelCard: String
        public var threads: Int
        /// Replace existing files (see ``HFExport``).
        public var overwrite: Bool

        public init(dtype: SafetensorsFile.DType, maxShardBytes: Int = HFExport.defaultMaxShardBytes, sourceDirectory: String? = nil,
                    modelCard: String = "", threads: Int = ThreadPool.defaultThreadCount, overwrite: Bool = false) {
            self.dtype = dtype
            self.maxShardBytes = maxShardBytes
            self.sourceDirectory = sourceDirectory
            self.modelCard = modelCard
            self.threads = threads
            self.overwrite = overwrite
        }
    }

    /// A source folder's files copied as they are (those it has).
    static let copiedFiles = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
        "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json", "generation_config.json",
    ]

    /// Writes the folder; returns the names of the files written, relative to `directory`.
    /// `progress` is called before each tensor ("writing", tensors done, tensor count, its name).
    public static func write(_ model: GGUFFile, to directory: String, options: Options,
                             progress: (ExportProgress) -> Void) throws(ExportError) -> [String] {
        try write(model, to: directory, options: options, tokenizerFiles: tokenizerFiles(from:), progress: progress)
    }

    /// The tokenizer files of a model not read from a Hugging Face folder.
    static func tokenizerFiles(from model: GGUFFile) throws(ExportError) -> [(name: String, contents: Data)] {
        try HFTokenizerExport.files(from: model)
    }

    /// `write`, with the tokenizer files' source injectable (tests).
    static func write(_ model: GGUFFile, to directory: String, options: Options,
                      tokenizerFiles: (GGUFFile) throws(ExportError) -> [(name: String, contents: Data)],
                      progress: (ExportProgress) -> Void) throws(ExportError) -> [String] {
        guard [.f32, .f16, .bf16].contains(options.dtype), let target = options.dtype.ggmlType else {
            throw ExportError(.invalidOption, "a Hugging Face folder is written as F32, F16 or BF16, not \(options.dtype.rawValue)")
        }
        let dir = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let plan = try tensorPlan(model)

        // Everything but the weights, decided (and every error found) before anything is written.
        var files: [(name: String, contents: [UInt8])] = []
        var config: HFJSON?
        if let source = options.sourceDirectory {
            let src = source.count > 1 && source.hasSuffix("/") ? String(source.dropLast()) : source
            for name in copiedFiles {
                let path = src + "/" + name
                guard FileManager.default.fileExists(atPath: path) else { continue }
                guard let data = FileManager.default.contents(atPath: path) else { throw ExportError(.io, "cannot read \(path)") }
                files.append((name, [UInt8](data)))
            }
            if let data = FileManager.default.contents(atPath: src + "/config.json") {
                config = try HFConfigExport.copiedConfig([UInt8](data), dtype: options.dtype, file: src + "/config.json")
                if let config { try checkSourceConfig(config, model: model, file: src + "/config.json") }
            }
        } else {
            for file in try tokenizerFiles(model) where !["config.json", "generation_config.json", "README.md"].contains(file.name) {
                files.append((file.name, [UInt8](file.contents)))
            }
        }
        if !files.contains(where: { $0.name == "generation_config.json" }) {
            files.append(("generation_config.json", Array(try HFConfigExport.generationConfig(for: model).rendered().utf8)))
        }
        if !options.modelCard.isEmpty { files.append(("README.md", Array(options.modelCard.utf8))) }
        if config == nil { config = try HFConfigExport.config(for: model, dtype: options.dtype) }
        let configText = config!.rendered()
        files.append(("config.json", Array(configText.utf8)))
        for file in files {
            guard !file.name.isEmpty, !file.name.contains("/"), file.name != "..", file.name != ".", !file.name.hasSuffix(".safetensors"),
                  file.name != SafetensorsShardWriter.indexName else {
                throw ExportError(.invalidSource, "the tokenizer export names a file '\(file.name)', which cannot be written beside the weights")
            }
        }

        // The folder.
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: dir, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ExportError(.io, "\(dir) exists and is not a folder") }
        } else {
            do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw ExportError(.io, "cannot create \(dir): \(error.localizedDescription)")
            }
        }
        let tensors = plan.map { SafetensorsShardWriter.Tensor(name: $0.name, dtype: options.dtype, shape: $0.shape) }
        var writer = try SafetensorsShardWriter(directory: dir, tensors: tensors, maxShardBytes: options.maxShardBytes)
        let ours = Set(writer.fileNames + files.map(\.name))
        let existing = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
        let staleWeights = existing.filter { !ours.contains($0) && ($0.hasSuffix(".safetensors") || $0.hasSuffix(".safetensors.index.json")) }
        let clashes = existing.filter { ours.contains($0) } + staleWeights
        if !clashes.isEmpty, !options.overwrite {
            throw ExportError(.invalidOption, "\(dir) already has \(clashes.sorted().joined(separator: ", ")); choose an empty folder or overwrite them")
        }
        try checkFreeSpace(dir, needs: writer.totalBytes + files.reduce(0) { $0 + $1.contents.count } + 1 << 20)

        // Weights, then the other files, under temporary names; then rename them all.
        var staged: [SafetensorsShardWriter.Staged] = []
        do throws(ExportError) {
            let pool = ThreadPool(threads: max(1, options.threads))
            for (i, item) in plan.enumerated() {
                progress(ExportProgress(stage: "writing", done: i, total: plan.count, item: item.name))
                try write(item, of: model, as: target, pool: pool, to: &writer)
            }
            staged = try writer.finish()
            for file in files {
                let s = SafetensorsShardWriter.Staged(temporary: dir + "/" + file.name + ".partial", final: dir + "/" + file.name)
                staged.append(s)
                try SafetensorsShardWriter.writeFile(s.temporary, file.contents)
            }
            for name in staleWeights where unlink(dir + "/" + name) != 0 && errno != ENOENT {
                throw SafetensorsShardWriter.ioError("cannot remove the stale \(dir)/\(name)")
            }
            // Weights and index first, config.json (last in `files`) last.
            for s in staged {
                guard rename(s.temporary, s.final) == 0 else {
                    throw SafetensorsShardWriter.ioError("cannot rename \(s.temporary) to \(s.final)")
                }
            }
        } catch {
            writer.abort()
            for s in staged { unlink(s.temporary) }
            throw error
        }
        return staged.map { URL(fileURLWithPath: $0.final).lastPathComponent }
    }

    // MARK: - Tensors

    /// One tensor of the folder: where its values come from and how they change.
    struct PlannedTensor {
        enum Source {
            case tensor(GGUFTensorInfo, HFTensorNames.InverseTransform)
            /// A bias the GGUF leaves out and the checkpoint class has (Qwen2's q/k/v), all zeros.
            case zeros
        }

        var name: String
        /// Row-major shape (the GGUF dimensions reversed).
        var shape: [Int]
        var source: Source
    }

    /// The checkpoint tensors of `model`, in checkpoint order (embeddings, layers, norm, head),
    /// every GGUF tensor accounted for and every transform checked to apply.
    static func tensorPlan(_ model: GGUFFile) throws(ExportError) -> [PlannedTensor] {
        let s = try HFConfigExport.shape(of: model)
        let names = HFTensorNames(directory: "the model", hfArchitecture: HFConfigExport.architectures[s.arch]!.hfArchitecture,
                                  arch: s.arch, layers: s.layers, heads: s.heads, kvHeads: s.kvHeads)
        var plan: [PlannedTensor] = []
        var seen: [String: String] = [:]
        for info in model.tensors {
            let mapped: (String, HFTensorNames.InverseTransform)?
            do { mapped = try names.hfName(info.name) } catch { throw ExportError(.unsupported, error.message) }
            guard let (name, transform) = mapped else { continue }
            if let other = seen[name] { throw ExportError(.invalidSource, "tensors '\(other)' and '\(info.name)' both become '\(name)'") }
            seen[name] = info.name
            guard info.type == .f32 || info.type == .f16 || info.type == .bf16 || Kernels.supports(info.type) else {
                throw ExportError(.unsupported, "'\(info.name)' is \(info.type.name), which Verity cannot read to convert (it reads \(Kernels.supportedTypeNames))")
            }
            switch transform {
            case .unpermuteRows(let heads):
                let rows = info.dimensions.count == 1 ? info.elementCount : info.rowCount
                guard rows % heads == 0, (rows / heads) % 2 == 0 else {
                    throw ExportError(.invalidSource, "'\(info.name)' has \(rows) rows, not \(heads) heads of an even size")
                }
            case .minusOne, .none:
                break
            }
            plan.append(PlannedTensor(name: name, shape: Array(info.dimensions.reversed()), source: .tensor(info, transform)))
        }
        // Qwen2's attention always has q/k/v biases: write zeros for any the GGUF leaves out.
        if s.arch == "qwen2" {
            for layer in 0..<s.layers {
                for (proj, rows) in [("q_proj", s.heads * s.headDim), ("k_proj", s.kvHeads * s.headDim), ("v_proj", s.kvHeads * s.headDim)] {
                    let name = "model.layers.\(layer).self_attn.\(proj).bias"
                    if seen[name] == nil { plan.append(PlannedTensor(name: name, shape: [rows], source: .zeros)) }
                }
            }
        }
        return plan.sorted { order($0.name) < order($1.name) }
    }

    /// Checkpoint order: embeddings, layers by number (names sorted within one), norm, lm_head.
    static func order(_ name: String) -> (Int, Int, String) {
        if name == "model.embed_tokens.weight" { return (0, 0, name) }
        if name.hasPrefix("model.layers.") {
            let rest = name.dropFirst("model.layers.".count)
            if let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) { return (1, layer, String(rest[dot...])) }
        }
        if name == "lm_head.weight" { return (3, 0, name) }
        return (2, 0, name)
    }

    /// Writes one tensor as `target`, a block of rows at a time: the source bytes as they are when
    /// nothing changes, else dequantized to F32, transformed, and converted with ggml's rounding.
    static func write(_ item: PlannedTensor, of model: GGUFFile, as target: GGMLType, pool: ThreadPool,
                      to writer: inout SafetensorsShardWriter) throws(ExportError) {
        let bytes = item.shape.reduce(1, *) * Kernels.rowBytes(target, 1)
        guard case .tensor(let info, let transform) = item.source else {
            let zeros = [UInt8](repeating: 0, count: min(bytes, 1 << 24))
            var left = bytes
            while left > 0 {
                let n = min(left, zeros.count)
                try SafetensorsShardWriter.withBytes(Array(zeros[..<n])) { (z) throws(ExportError) in try writer.append(z) }
                left -= n
            }
            return
        }
        let data = model.tensorData(info)
        if transform == .none, info.type == target {
            var offset = 0
            while offset < data.count {
                let n = min(data.count - offset, 1 << 26)
                try writer.append(UnsafeRawBufferPointer(rebasing: data[offset..<offset + n]))
                offset += n
            }
            return
        }
        let columns = info.rowLength, rows = info.rowCount, inRowBytes = info.rowBytes
        let outRowBytes = Kernels.rowBytes(target, columns)
        // About 16 MiB of floats per block; a permuted matrix in whole heads.
        var block = max(1, min(rows, (1 << 22) / max(1, columns)))
        var permuteHeads = 0, headRows = 0
        if case .unpermuteRows(let heads) = transform {
            permuteHeads = heads
            if info.dimensions.count == 1 {
                block = rows // a bias: one row, whose elements are the rows to reorder
            } else {
                headRows = rows / heads
                block = max(1, block / headRows) * headRows
            }
        }
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: max(1, block * columns))
        defer { floats.deallocate() }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: permuteHeads > 0 ? max(1, block * columns) : 1)
        defer { scratch.deallocate() }
        let out = UnsafeMutableRawPointer.allocate(byteCount: max(1, block * outRowBytes), alignment: 64)
        defer { out.deallocate() }
        var start = 0
        while start < rows {
            let count = min(block, rows - start)
            let base = data.baseAddress! + start * inRowBytes
            pool.forEach(count) { r, _ in
                Kernels.dequantize(info.type, base + r * inRowBytes, into: floats + r * columns, count: columns)
            }
            var values = floats
            switch transform {
            case .none:
                break
            case .minusOne:
                for k in 0..<count * columns { floats[k] -= 1 }
            case .unpermuteRows:
                let elements = count * columns
                let src = UnsafeRawBufferPointer(start: floats, count: elements * 4)
                let dst = UnsafeMutableRawBufferPointer(start: scratch, count: elements * 4)
                if info.dimensions.count == 1 {
                    HFTensorNames.unpermuteRows(src, into: dst, rows: columns, rowBytes: 4, heads: permuteHeads)
                } else {
                    HFTensorNames.unpermuteRows(src, into: dst, rows: count, rowBytes: columns * 4, heads: count / headRows)
                }
                values = scratch
            }
            do { try Kernels.quantize(target, rows: count, columns: columns, from: values, into: out, pool: pool) } catch {
                throw ExportError(.unsupported, "cannot convert '\(info.name)' to \(target.name): \(error.message)")
            }
            try writer.append(UnsafeRawBufferPointer(start: out, count: count * outRowBytes))
            start += count
        }
    }

    // MARK: - Checks

    /// A source folder's config.json describes the model being written.
    static func checkSourceConfig(_ config: HFJSON, model: GGUFFile, file: String) throws(ExportError) {
        let s = try HFConfigExport.shape(of: model)
        for (key, value) in [("num_hidden_layers", s.layers), ("hidden_size", s.embedding), ("num_attention_heads", s.heads)] {
            if case .number(let text)? = config[key], Int(text) != value {
                throw ExportError(.invalidOption, "\(file) says \(key) \(text) but the model has \(value): is it the folder the model came from?")
            }
        }
    }

    /// Refuses to start when the disk cannot hold the folder.
    static func checkFreeSpace(_ dir: String, needs bytes: Int) throws(ExportError) {
        var stats = statvfs()
        guard statvfs(dir, &stats) == 0 else { return }
        let free = Int(clamping: UInt64(stats.f_bavail) &* UInt64(stats.f_frsize))
        guard free >= bytes else {
            func gb(_ n: Int) -> String { String(format: "%.2f GB", Double(n) / 1e9) }
            throw ExportError(.io, "\(dir) has \(gb(free)) free; the export needs \(gb(bytes))")
        }
    }
}
