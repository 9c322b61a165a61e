import Foundation
import Kernels
import ModelFormats

/// A base model with a LoRA adapter folded in, as a model of its own: every adapted weight
/// becomes `W + scale · B·A` in F32 (PEFT's `merge_and_unload` arithmetic), computed from the
/// weight as the base holds it — for a bitsandbytes 4-bit base that is the dequantized 16-bit
/// weight, never the 4-bit codes — and `modules_to_save` weights replace the base's. The other
/// tensors are the base's own, unchanged. Exporting this model writes the merged weights.
public enum MergedModel {
    /// The merged model. Adapted weights are held in memory as F32 (the rest stays mapped).
    public static func merge(_ base: GGUFFile, adapter: LoRAFile, scale: Float, threads: Int = 1,
                             progress: (ExportProgress) -> Void = { _ in }) throws(ExportError) -> GGUFFile {
        var tensors: [(name: String, dimensions: [Int], type: GGMLType, owner: MappedFile, offset: Int)] = []
        let touched = Set(adapter.pairs.keys).union(adapter.replacements.keys)
        let missing = touched.filter { base.tensor(named: $0) == nil }
        guard missing.isEmpty else {
            throw ExportError(.invalidSource, "\(adapter.path) changes \(missing.sorted().joined(separator: ", ")), which the base does not have")
        }
        var done = 0
        for info in base.tensors {
            let location = base.tensorLocation(info)
            if let replacement = adapter.replacements[info.name] {
                guard replacement.rows * replacement.columns == info.elementCount else {
                    throw ExportError(.invalidSource, "\(adapter.path): the replacement of '\(info.name)' is \(replacement.rows)×\(replacement.columns), the base's is \(info.dimensions)")
                }
                tensors.append((info.name, info.dimensions, replacement.type, replacement.owner, replacement.offset))
                continue
            }
            guard let pair = adapter.pairs[info.name] else {
                tensors.append((info.name, info.dimensions, info.type, location.owner, location.offset))
                continue
            }
            progress(ExportProgress(stage: "merging", done: done, total: adapter.pairs.count, item: info.name))
            done += 1
            let columns = info.rowLength, rows = info.rowCount
            guard info.dimensions.count == 2, pair.a.columns == columns, pair.b.rows == rows else {
                throw ExportError(.invalidSource, "\(adapter.path): '\(info.name)' is \(info.dimensions) but the adapter's pair makes \(pair.b.rows)×\(pair.a.columns)")
            }
            guard Kernels.supports(info.type) else {
                throw ExportError(.unsupported, "'\(info.name)' is \(info.type.name), which Verity cannot read to merge into")
            }
            let data = base.tensorData(info)
            var w = [Float](repeating: 0, count: rows * columns)
            w.withUnsafeMutableBufferPointer { out in
                for r in 0..<rows { Kernels.dequantize(info.type, data.baseAddress! + r * info.rowBytes, into: out.baseAddress! + r * columns, count: columns) }
            }
            pair.addDelta(to: &w, adapterScale: scale)
            let owner = MappedFile(allocating: rows * columns * 4) { out in
                w.withUnsafeBytes { out.copyMemory(from: $0) }
            }
            tensors.append((info.name, info.dimensions, .f32, owner, 0))
        }
        let metadata = base.metadataKeys.map { ($0, base.metadata[$0]!) }
        do {
            return try GGUFFile(metadata: metadata, tensors: tensors)
        } catch {
            throw ExportError(.invalidSource, "the merged model does not assemble: \(error.message)")
        }
    }
}
