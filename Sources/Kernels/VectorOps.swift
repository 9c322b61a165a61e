import CKernels
import Foundation

/// Float vector operations used around the matrix products (norms, activations, softmax).
/// Plain loops the Swift compiler vectorizes; nothing here allocates.
public enum VectorOps {
    /// y = x / sqrt(mean(x²) + eps) * weight
    @inline(__always)
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                               into y: UnsafeMutablePointer<Float>, count n: Int) {
        // Sum in double, mean and scale in float: the same roundings as ggml's rms_norm.
        var sum: Double = 0
        for i in 0..<n { sum += Double(x[i] * x[i]) }
        let mean = Float(sum / Double(n))
        let scale: Float = 1 / (mean + eps).squareRoot()
        for i in 0..<n { y[i] = x[i] * scale * weight[i] }
    }

    /// x += y
    @inline(__always)
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n { x[i] += y[i] }
    }

    /// gate = silu(gate) * up
    @inline(__always)
    public static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        ck_silu_mul(gate, up, n)
    }

    /// Attention's in-place softmax over `n` scores sitting at cells `lead..<lead + n` of a grid of
    /// 16-cell chunks: llama.cpp's CPU soft_max, operation for operation (see ck_softmax_cells).
    @inline(__always)
    public static func softmaxCells(_ x: UnsafeMutablePointer<Float>, count n: Int, lead: Int) {
        ck_softmax_cells(x, n, lead)
    }

    /// Rotates `half` pairs (x[i·stride], x[i·stride + offset]) of each of `heads` vectors of
    /// `headDim` floats by the given angles' cos and sin (ck_rope: llama.cpp's fused operations).
    @inline(__always)
    public static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, half: Int, stride: Int, offset: Int,
                            cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        ck_rope(x, heads, headDim, half, stride, offset, cos, sin)
    }

    /// Converts floats to IEEE half precision.
    @inline(__always)
    public static func toFP16(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<UInt16>, count n: Int) {
        ck_fp32_to_fp16_row(x, y, n)
    }

    /// Converts half precision to floats.
    @inline(__always)
    public static func fromFP16(_ x: UnsafePointer<UInt16>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        ck_fp16_to_fp32_row(x, y, n)
    }

    /// Dot product of two half-precision vectors, accumulated in float.
    @inline(__always)
    public static func dotFP16(_ x: UnsafePointer<UInt16>, _ y: UnsafePointer<UInt16>, count n: Int) -> Float {
        ck_vec_dot(Int32(CK_F16), x, y, n)
    }

    /// out[j·ldOut + i] = Σ_{k < length} rows[i·stride + k]·vectors[j·vectorStride + k] for i < count,
    /// j < vectorCount, row elements from `valid` on counting as zero, in llama.cpp's tinyBLAS f16
    /// order (ck_dot_f16_rows), each row read once for all the vectors.
    @inline(__always)
    public static func dotFP16Rows(_ rows: UnsafePointer<UInt16>, stride: Int, count: Int, valid: Int? = nil,
                                   _ vectors: UnsafePointer<UInt16>, vectorStride: Int = 0, vectorCount: Int = 1, length: Int,
                                   into out: UnsafeMutablePointer<Float>, ldOut: Int = 0) {
        ck_dot_f16_rows(rows, stride, count, valid ?? length, vectors, vectorStride, vectorCount, length, out, ldOut)
    }

    /// Scalar twins, for tests comparing them with the SIMD paths.
    public static func swigluScalar(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        ck_silu_mul_scalar(gate, up, n)
    }

    public static func softmaxCellsScalar(_ x: UnsafeMutablePointer<Float>, count n: Int, lead: Int) {
        ck_softmax_cells_scalar(x, n, lead)
    }

    public static func dotFP16RowsScalar(_ rows: UnsafePointer<UInt16>, stride: Int, count: Int, valid: Int? = nil,
                                         _ vectors: UnsafePointer<UInt16>, vectorStride: Int = 0, vectorCount: Int = 1, length: Int,
                                         into out: UnsafeMutablePointer<Float>, ldOut: Int = 0) {
        ck_dot_f16_rows_scalar(rows, stride, count, valid ?? length, vectors, vectorStride, vectorCount, length, out, ldOut)
    }

    /// exp as the SIMD paths compute it (ggml's AVX-512 form; SiLU and the attention softmax).
    public static func expScalef(_ x: Float) -> Float { ck_expf_scalef(x) }
}
