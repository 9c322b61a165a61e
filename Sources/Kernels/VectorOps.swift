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

    /// In-place softmax (handles -inf entries: masked positions).
    @inline(__always)
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        ck_softmax(x, n)
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

    /// out[j·ldOut + i] = dotFP16(rows + i·stride, vectors + j·vectorStride, length) for i < count,
    /// j < vectorCount, bit for bit, each row read once for all the vectors.
    @inline(__always)
    public static func dotFP16Rows(_ rows: UnsafePointer<UInt16>, stride: Int, count: Int, _ vectors: UnsafePointer<UInt16>,
                                   vectorStride: Int = 0, vectorCount: Int = 1, length: Int,
                                   into out: UnsafeMutablePointer<Float>, ldOut: Int = 0) {
        ck_dot_f16_rows(rows, stride, count, vectors, vectorStride, vectorCount, length, out, ldOut)
    }

    /// Scalar twins, for tests comparing them with the SIMD paths.
    public static func swigluScalar(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        ck_silu_mul_scalar(gate, up, n)
    }

    public static func softmaxScalar(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        _ = ck_softmax_scalar(x, n)
    }

    /// exp by the polynomial the SIMD paths use.
    public static func expPoly(_ x: Float) -> Float { ck_expf_poly(x) }
}
