import Crypto
import Foundation
import Kernels
import ModelFormats

/// Writes a model as a GGUF file the way llama.cpp's `llama-quantize` writes it from the same
/// input: the per-tensor types of ``QuantizationPlan``, the bytes of ggml's reference quantizers
/// (``Kernels/quantize(_:rows:columns:from:into:pool:)``), the source's metadata with
/// `general.quantization_version` and `general.file_type` set, and optionally split into shards
/// in gguf-split's layout (`STEM-00001-of-0000N.gguf`; the first shard holds the metadata, each
/// holds `split.no`, `split.count`, `split.tensors.count`), which llama.cpp loads as one model.
///
/// Tensors are converted and written one at a time: memory stays at about one tensor as floats
/// plus its quantized bytes, whatever the model's size.
public enum GGUFExport {
    public struct Options: Sendable {
        /// The file type: `Q4_K_M`, `F16`, … (llama-quantize's names).
        public var fileType: GGUFFileType
        /// llama-quantize's overrides (`--output-tensor-type`, `--token-embedding-type`, `--pure`).
        public var plan: QuantizationPlan.Options
        /// Start a new shard before a tensor that would take the current one past this many data
        /// bytes (gguf-split's `--split-max-size`); nil writes one file.
        public var splitMaxBytes: Int?
        /// Metadata to set after the source's (provenance keys, `general.name`, …).
        public var metadata: [(String, GGUFValue)]
        /// Metadata not known yet (the source's digest, being hashed): the first tensors are
        /// converted into memory (up to ``maxEarlyBytes``) until it is, then the file is started.
        public var deferredMetadata: DeferredMetadata?
        public var threads: Int

        public init(fileType: GGUFFileType, plan: QuantizationPlan.Options = .init(), splitMaxBytes: Int? = nil,
                    metadata: [(String, GGUFValue)] = [], deferredMetadata: DeferredMetadata? = nil, threads: Int = 1) {
            self.fileType = fileType
            self.deferredMetadata = deferredMetadata
            self.plan = plan
            self.splitMaxBytes = splitMaxBytes
            self.metadata = metadata
            self.threads = threads
        }
    }

    /// Metadata keys that become known while the export runs.
    public struct DeferredMetadata: Sendable {
        public var isReady: @Sendable () -> Bool
        public var value: @Sendable () throws(ExportError) -> [(String, GGUFValue)]
        public init(isReady: @escaping @Sendable () -> Bool, value: @escaping @Sendable () throws(ExportError) -> [(String, GGUFValue)]) {
            self.isReady = isReady
            self.value = value
        }
    }

    /// How many converted bytes may wait in memory for ``Options/deferredMetadata``.
    static let maxEarlyBytes = 512 << 20

    /// llama.cpp's `GGML_QNT_VERSION`, which llama-quantize writes as `general.quantization_version`.
    public static let quantizationVersion: UInt32 = 2

    /// The metadata the exported file carries: the source's, without split keys, with
    /// `general.quantization_version` and `general.file_type` set as llama-quantize sets them
    /// (an existing key keeps its place), then `extra`.
    static func metadata(of model: GGUFFile, fileType: GGUFFileType, extra: [(String, GGUFValue)]) -> GGUFWriter {
        var writer = GGUFWriter()
        for key in model.metadataKeys where !key.hasPrefix("split.") {
            writer.set(key, model.metadata[key]!)
        }
        if let alignment = model.metadata[GGUFFile.alignmentKey]?.intValue { writer.alignment = alignment }
        writer.set("general.quantization_version", .uint32(quantizationVersion))
        writer.set("general.file_type", .uint32(UInt32(fileType.ftype)))
        for (key, value) in extra { writer.set(key, value) }
        return writer
    }

    /// Groups tensors (data bytes each) into shards of at most `maxBytes` as gguf-split does: a
    /// new shard starts before a tensor that would take a non-empty shard past the limit.
    static func shards(_ sizes: [Int], maxBytes: Int?) -> [Range<Int>] {
        guard let maxBytes, !sizes.isEmpty else { return [0..<sizes.count] }
        var result: [Range<Int>] = []
        var start = 0, current = 0
        for (i, size) in sizes.enumerated() {
            if i > start, current + size > maxBytes {
                result.append(start..<i)
                start = i
                current = 0
            }
            current += size
        }
        result.append(start..<sizes.count)
        return result
    }

    /// The shard paths for `path` (`dir/stem.gguf`) split `count` ways.
    public static func shardPaths(_ path: String, count: Int) -> [String] {
        guard count > 1 else { return [path] }
        let stem = path.lowercased().hasSuffix(".gguf") ? String(path.dropLast(5)) : path
        return (1...count).map { stem + String(format: "-%05d-of-%05d.gguf", $0, count) }
    }

    /// Writes the model. `path` is the file (or the first shard's stem). Files are written under
    /// temporary names and renamed when complete, so nothing half-written keeps a final name.
    public static func write(_ model: GGUFFile, to path: String, options: Options, cancelled: () -> Bool = { false },
                             progress: (ExportProgress) -> Void) throws(ExportError) -> [ExportedFile] {
        let plan = try QuantizationPlan.plan(model, fileType: options.fileType, options: options.plan)
        let targets = Dictionary(plan.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        var declared: [(name: String, dimensions: [Int], type: GGMLType)] = []
        var sizes: [Int] = []
        for info in model.tensors {
            let type = targets[info.name] ?? info.type
            do {
                let target = try GGUFTensorInfo(name: info.name, dimensions: info.dimensions, type: type, offset: 0)
                declared.append((info.name, info.dimensions, type))
                sizes.append(GGUFWriter.padded(target.byteCount, GGUFFile.defaultAlignment))
            } catch {
                throw ExportError(.unsupported, "tensor '\(info.name)' \(info.dimensions) cannot be \(type.name): \(error.message)")
            }
        }
        let groups = shards(sizes, maxBytes: options.splitMaxBytes)
        let pool = ThreadPool(threads: max(1, options.threads))
        var done = 0

        // While deferred metadata is pending, the first tensors are converted into memory.
        var early: [[UInt8]] = []
        var extra = options.metadata
        if let deferred = options.deferredMetadata {
            var earlyBytes = 0
            while done < groups[0].count, earlyBytes < maxEarlyBytes, !deferred.isReady() {
                if cancelled() { throw ExportError(.cancelled, "the export was cancelled") }
                let info = model.tensors[groups[0].lowerBound + done]
                let type = declared[groups[0].lowerBound + done].type
                progress(ExportProgress(stage: type == info.type ? "copying" : "quantizing", done: done, total: declared.count, item: info.name))
                try convert(model, info, to: type, pool: pool) { (bytes) throws(ExportError) in early.append(Array(bytes)) }
                earlyBytes += early.last!.count
                done += 1
            }
            extra += try deferred.value()
        }
        let base = metadata(of: model, fileType: options.fileType, extra: extra)
        let paths = shardPaths(path, count: groups.count)
        guard groups.count <= 99_999 else { throw ExportError(.invalidOption, "--split-max-size makes \(groups.count) shards; llama.cpp allows at most 99999") }

        var written: [ExportedFile] = []
        var temporaries: [String] = []
        do throws(ExportError) {
            for (index, group) in groups.enumerated() {
                var writer = GGUFWriter()
                writer.alignment = base.alignment
                if index == 0 {
                    writer = base
                }
                if groups.count > 1 {
                    writer.set("split.no", .uint16(UInt16(index)))
                    writer.set("split.count", .uint16(UInt16(groups.count)))
                    writer.set("split.tensors.count", .int32(Int32(declared.count)))
                }
                let final = paths[index]
                let temporary = final + ".partial"
                temporaries.append(temporary)
                var hasher = SHA256()
                let stream: GGUFWriter.Stream
                do throws(GGUFError) {
                    stream = try GGUFWriter.Stream(writer: writer, tensors: Array(declared[group]), path: temporary) { hasher.update(bufferPointer: $0) }
                } catch {
                    throw ExportError(.io, error.message)
                }
                if index == 0 {
                    for bytes in early {
                        var failure: GGUFError?
                        bytes.withUnsafeBytes { buffer in
                            do throws(GGUFError) { try stream.append(buffer) } catch { failure = error }
                        }
                        if let failure { throw ExportError(.io, failure.message) }
                    }
                }
                for i in group.dropFirst(index == 0 ? early.count : 0) {
                    if cancelled() { throw ExportError(.cancelled, "the export was cancelled") }
                    let info = model.tensors[i]
                    progress(ExportProgress(stage: declared[i].type == info.type ? "copying" : "quantizing", done: done, total: declared.count, item: info.name))
                    try convert(model, info, to: declared[i].type, pool: pool) { (bytes) throws(ExportError) in
                        do throws(GGUFError) { try stream.append(bytes) } catch { throw ExportError(.io, error.message) }
                    }
                    done += 1
                }
                do throws(GGUFError) { try stream.finish() } catch { throw ExportError(.io, error.message) }
                let digest = "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
                written.append(ExportedFile(path: final, sha256: digest, bytes: stream.bytesWritten))
            }
            for (temporary, file) in zip(temporaries, written) {
                guard rename(temporary, file.path) == 0 else {
                    throw ExportError(.io, "cannot rename \(temporary) to \(file.path): \(String(cString: strerror(errno)))")
                }
            }
        } catch {
            for temporary in temporaries { unlink(temporary) }
            throw error
        }
        progress(ExportProgress(stage: "done", done: declared.count, total: declared.count))
        return written
    }

    /// Hands `body` the tensor's bytes as `target`: the source bytes when the type is the same,
    /// else the rows dequantized to F32 and quantized with ggml's reference quantizer, as
    /// llama-quantize does (it, too, converts every input tensor to F32 first).
    static func convert(_ model: GGUFFile, _ info: GGUFTensorInfo, to target: GGMLType, pool: ThreadPool,
                        _ body: (UnsafeRawBufferPointer) throws(ExportError) -> Void) throws(ExportError) {
        let data = model.tensorData(info)
        if target == info.type { try body(data); return }
        let columns = info.rowLength, rows = info.rowCount
        let outBytes: Int
        do { outBytes = try Kernels.quantizedByteCount(target, rows: rows, columns: columns) } catch {
            throw ExportError(.unsupported, "cannot write '\(info.name)' as \(target.name): \(error.message)")
        }
        guard Kernels.supports(info.type) else {
            throw ExportError(.unsupported, "'\(info.name)' is \(info.type.name), which Verity cannot read back to convert it to \(target.name)")
        }
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * columns))
        defer { floats.deallocate() }
        let inRowBytes = info.rowBytes
        pool.forEach(rows) { r, _ in
            Kernels.dequantize(info.type, data.baseAddress! + r * inRowBytes, into: floats + r * columns, count: columns)
        }
        let out = UnsafeMutableRawPointer.allocate(byteCount: max(1, outBytes), alignment: 64)
        defer { out.deallocate() }
        do { try Kernels.quantize(target, rows: rows, columns: columns, from: floats, into: out, pool: pool) } catch {
            throw ExportError(.unsupported, "cannot quantize '\(info.name)' to \(target.name): \(error.message)")
        }
        try body(UnsafeRawBufferPointer(start: out, count: outBytes))
    }
}
