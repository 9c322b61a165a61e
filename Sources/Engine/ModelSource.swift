import Foundation
import Kernels
import ModelFormats
@_exported import enum Models.AttentionPrecision

/// How to load a model beyond where it is.
public struct ModelLoadOptions: Sendable, Equatable {
    /// Convert the float (F32/F16/BF16) weights of a checkpoint to this type at load time, with
    /// llama.cpp's reference quantizers (byte-identical to `llama-quantize` without an
    /// importance matrix). The output projection (or the tied embedding) gets Q6_K unless Q8_0 or
    /// better is asked for, as llama-quantize does. Already-quantized GGUF tensors are left alone.
    public var quantize: GGMLType?
    /// Where the model came from, for `/v1/models` and the ledger (`hf:org/name@commit`); the
    /// path when nil.
    public var sourceName: String?
    /// The numerics; nil: `.f32` for a Hugging Face folder (transformers' float32: F32 KV cache,
    /// attention and GELU, and F16/BF16 weights widened to F32 unless quantized), `.f16` for a GGUF
    /// file (llama.cpp's, bit for bit).
    public var attention: AttentionPrecision?

    public init(quantize: GGMLType? = nil, sourceName: String? = nil, attention: AttentionPrecision? = nil) {
        self.quantize = quantize
        self.sourceName = sourceName
        self.attention = attention
    }

    /// The `--quantize` spellings: q8_0, q4_k, Q4_K, q6_k, f16, …
    public static func quantizeType(named name: String) -> GGMLType? {
        let wanted = name.uppercased().replacingOccurrences(of: "-", with: "_")
        return Kernels.quantizableTypes.first { $0.name.uppercased() == wanted && Kernels.canQuantize($0) }
    }
}

/// Opens what a model path names: a GGUF file, the first shard of a split GGUF
/// (`name-00001-of-00003.gguf`), or a Hugging Face folder (config.json + safetensors).
enum ModelSource {
    static func open(path: String) throws(EngineError) -> GGUFFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw EngineError(.fileNotFound, "model not found: \(path)")
        }
        if isDirectory.boolValue {
            guard HFCheckpoint.isCheckpoint(directory: path) else {
                throw EngineError(.invalidModelFile, "\(path) is a folder without config.json: not a Hugging Face model folder (a GGUF model is a file)")
            }
            do {
                return try HFCheckpoint.load(directory: path)
            } catch {
                let code: EngineError.Code = [.unknownTensorType, .outOfRange].contains(error.code) || error.message.contains("not supported") ? .unsupportedModel : .invalidModelFile
                throw EngineError(code, error.message, cause: error)
            }
        }
        let first: GGUFFile
        do {
            first = try GGUFFile(path: path)
        } catch {
            throw EngineError(.invalidModelFile, "\(path) is not a valid GGUF model: \(error.message)", cause: error)
        }
        guard let count = (try? first.optionalInt("split.count")) ?? nil, count > 1 else { return first }
        return try assembleShards(first: first, path: path, count: count)
    }

    /// llama.cpp's gguf-split layout: the first shard holds the metadata, every shard holds some
    /// tensors and `split.no` / `split.count`; shards are named `PREFIX-0000i-of-0000N.gguf`.
    static func assembleShards(first: GGUFFile, path: String, count: Int) throws(EngineError) -> GGUFFile {
        let name = URL(fileURLWithPath: path).lastPathComponent
        let suffix = String(format: "-%05d-of-%05d.gguf", 1, count)
        guard name.hasSuffix(suffix), count <= 9999 else {
            throw EngineError(.invalidModelFile, "\(path) is shard \(((try? first.optionalInt("split.no")) ?? nil).map { "\($0 + 1)" } ?? "?") of \(count) of a split GGUF; load it by its first shard, named …\(suffix)")
        }
        let prefix = String(path.dropLast(suffix.count))
        var shards = [first]
        for i in 2...count {
            let shardPath = prefix + String(format: "-%05d-of-%05d.gguf", i, count)
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw EngineError(.fileNotFound, "shard \(i) of \(count) is missing: \(shardPath)")
            }
            do throws(GGUFError) {
                let shard = try GGUFFile(path: shardPath)
                guard (try shard.optionalInt("split.no")) == i - 1, (try shard.optionalInt("split.count")) == count else {
                    throw GGUFError(.outOfRange, "its split.no / split.count do not say shard \(i) of \(count)")
                }
                shards.append(shard)
            } catch {
                throw EngineError(.invalidModelFile, "\(shardPath) is not a valid shard: \(error.message)", cause: error)
            }
        }
        let metadata = first.metadataKeys.filter { !$0.hasPrefix("split.") }.map { ($0, first.metadata[$0]!) }
        var tensors: [(name: String, dimensions: [Int], type: GGMLType, owner: MappedFile, offset: Int)] = []
        for shard in shards {
            for t in shard.tensors { tensors.append((t.name, t.dimensions, t.type, shard.storage, shard.dataOffset + t.offset)) }
        }
        if let declared = (try? first.optionalInt("split.tensors.count")) ?? nil, declared != tensors.count {
            throw EngineError(.invalidModelFile, "\(path): the split declares \(declared) tensors but its \(count) shards hold \(tensors.count)")
        }
        do {
            return try GGUFFile(metadata: metadata, tensors: tensors)
        } catch {
            throw EngineError(.invalidModelFile, "\(path): the shards do not form one model: \(error.message)", cause: error)
        }
    }

    /// The model with its F16 and BF16 matrices widened to F32 (exact; twice their memory), so that
    /// products are computed in single precision from the activations as they are, as transformers
    /// does with a half-precision checkpoint it computes in float32 (the F16/BF16 kernels round the
    /// activations to the weights' type first, as llama.cpp does).
    static func widened(_ file: GGUFFile, threads: Int) throws(EngineError) -> GGUFFile {
        let pool = ThreadPool(threads: max(1, threads))
        var tensors: [(name: String, dimensions: [Int], type: GGMLType, owner: MappedFile, offset: Int)] = []
        for info in file.tensors {
            let location = file.tensorLocation(info)
            guard info.dimensions.count == 2, info.type == .f16 || info.type == .bf16 else {
                tensors.append((info.name, info.dimensions, info.type, location.owner, location.offset))
                continue
            }
            let data = file.tensorData(info)
            let columns = info.dimensions[0], rows = info.dimensions[1], inRowBytes = info.rowBytes
            let owner = MappedFile(allocating: rows * columns * 4) { out in
                let floats = out.baseAddress!.assumingMemoryBound(to: Float.self)
                pool.forEach(rows) { r, _ in
                    Kernels.dequantize(info.type, data.baseAddress! + r * inRowBytes, into: floats + r * columns, count: columns)
                }
            }
            tensors.append((info.name, info.dimensions, .f32, owner, 0))
        }
        let metadata = file.metadataKeys.map { ($0, file.metadata[$0]!) }
        do {
            return try GGUFFile(metadata: metadata, tensors: tensors)
        } catch {
            throw EngineError(.invalidModelFile, "widened model does not assemble: \(error.message)", cause: error)
        }
    }

    /// llama-quantize's replacement for a K-quant (or IQ4_XS) whose rows are not a multiple of 256.
    static let substitutes: [GGMLType: GGMLType] = [
        .q2_K: .iq4_nl, .q3_K: .iq4_nl, .iq4_xs: .iq4_nl, .q4_K: .q5_0, .q5_K: .q5_1, .q6_K: .q8_0,
    ]

    /// The model with its float matrices quantized to `type` (see ``ModelLoadOptions/quantize``).
    static func quantized(_ file: GGUFFile, to type: GGMLType, threads: Int) throws(EngineError) -> GGUFFile {
        let pool = ThreadPool(threads: max(1, threads))
        // llama-quantize's rule for the output projection (or the tied embedding): Q6_K, unless the
        // type asked for is Q8_0 or better.
        let keepsOutput: Set<GGMLType> = [.f32, .f16, .bf16, .q8_0, .q6_K]
        let outputName = file.tensor(named: "output.weight") != nil ? "output.weight" : "token_embd.weight"
        var tensors: [(name: String, dimensions: [Int], type: GGMLType, owner: MappedFile, offset: Int)] = []
        for info in file.tensors {
            let data = file.tensorData(info)
            let location = file.tensorLocation(info)
            let keep = (info.name, info.dimensions, info.type, location.owner, location.offset)
            guard info.dimensions.count == 2, [.f32, .f16, .bf16].contains(info.type) else { tensors.append(keep); continue }
            let columns = info.dimensions[0], rows = info.dimensions[1]
            var target = type
            if info.name == outputName, !keepsOutput.contains(type) { target = .q6_K }
            // A row that is not a whole number of 256-element super-blocks cannot be a K-quant:
            // llama-quantize's substitutes (Gemma 3's 640-wide rows, for one).
            if columns % Kernels.blockSize(target) != 0, let substitute = Self.substitutes[target] { target = substitute }
            guard columns % Kernels.blockSize(target) == 0, let bytes = try? Kernels.quantizedByteCount(target, rows: rows, columns: columns) else {
                tensors.append(keep) // no block type fits the row: it stays as it is
                continue
            }
            var failure: KernelError?
            let owner = MappedFile(allocating: bytes) { out in
                // Convert to floats a slab of rows at a time, to bound the extra memory.
                let slab = max(1, min(rows, (64 << 20) / max(1, columns * 4)))
                let floats = UnsafeMutablePointer<Float>.allocate(capacity: slab * columns)
                defer { floats.deallocate() }
                let inRowBytes = info.rowBytes, outRowBytes = bytes / rows
                var row = 0
                while row < rows, failure == nil {
                    let n = min(slab, rows - row)
                    pool.forEach(n) { r, _ in
                        Kernels.dequantize(info.type, data.baseAddress! + (row + r) * inRowBytes, into: floats + r * columns, count: columns)
                    }
                    do throws(KernelError) {
                        try Kernels.quantize(target, rows: n, columns: columns, from: floats, into: out.baseAddress! + row * outRowBytes, pool: pool)
                    } catch {
                        failure = error
                    }
                    row += n
                }
            }
            if let failure { throw EngineError(.invalidParameter, "cannot quantize \(info.name) to \(target.name): \(failure.message)", cause: failure) }
            tensors.append((info.name, info.dimensions, target, owner, 0))
        }
        let metadata = file.metadataKeys.map { ($0, file.metadata[$0]!) }
        do {
            return try GGUFFile(metadata: metadata, tensors: tensors)
        } catch {
            throw EngineError(.invalidModelFile, "quantized model does not assemble: \(error.message)", cause: error)
        }
    }
}

/// Model files as the engine reads them, for tools that work on a model without running it
/// (`verity export`).
public enum ModelFiles {
    /// Opens a GGUF file, the first shard of a split GGUF, or a Hugging Face folder (bitsandbytes
    /// 4-bit weights dequantized) as one GGUF model, exactly as loading it to serve does.
    public static func open(_ path: String) throws(EngineError) -> GGUFFile {
        try ModelSource.open(path: path)
    }
}
