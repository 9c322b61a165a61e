extension LoRAFile.Pair {
    /// Adds this pair's delta to a weight in the base's GGUF row order: `w += (B·A) · scale ·
    /// adapterScale`, each delta element the F32 sum over the rank in order, then scaled, then
    /// added (PEFT's `merge_and_unload` arithmetic in F32, as ``LoRAMerge`` computes it).
    public func addDelta(to w: inout [Float], adapterScale: Float) {
        LoRAMerge.addDelta(to: &w, a: a, b: b, scale: scale * adapterScale)
    }
}

extension LoRAFile.Matrix {
    /// The values as F32.
    public var floats: [Float] { LoRAMerge.floats(bytes, type: type, count: rows * columns) }
}
