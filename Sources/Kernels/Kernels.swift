import CKernels
import ModelFormats

/// Swift entry points to the C kernels. Every function dispatches on `InstructionSet.active`;
/// the `scalar` variants always run the reference twin (tests compare the two).
public enum Kernels {
    /// Weight types with dot-product kernels.
    public static let supportedTypes: [GGMLType] = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs,
    ]

    public static var supportedTypeNames: String { supportedTypes.map(\.name).joined(separator: ", ") }

    public static func supports(_ type: GGMLType) -> Bool { supportedTypes.contains(type) }

    /// Elements per block of `type` (1 for float types, 32 for Q4_0…Q8_1 and IQ4_NL, 256 for the
    /// K-quants, Q8_K and IQ4_XS; -1 for a type without kernels).
    public static func blockSize(_ type: GGMLType) -> Int { Int(ck_block_size(Int32(type.rawValue))) }

    /// Bytes of one row of `n` elements of `type`.
    public static func rowBytes(_ type: GGMLType, _ n: Int) -> Int { ck_row_bytes(Int32(type.rawValue), n) }

    /// The activation type a weight type's dot product consumes.
    public static func activationType(for type: GGMLType) -> GGMLType {
        GGMLType(rawValue: UInt32(max(0, ck_vec_dot_type(Int32(type.rawValue))))) ?? .f32
    }

    public static func dequantize(_ type: GGMLType, _ x: UnsafeRawPointer, into y: UnsafeMutablePointer<Float>, count n: Int) {
        ck_dequantize_row(Int32(type.rawValue), x, y, n)
    }

    public static func dequantizeScalar(_ type: GGMLType, _ x: UnsafeRawPointer, into y: UnsafeMutablePointer<Float>, count n: Int) {
        ck_dequantize_row_scalar(Int32(type.rawValue), x, y, n)
    }

    public static func quantize(_ type: GGMLType, _ x: UnsafePointer<Float>, into y: UnsafeMutableRawPointer, count n: Int) {
        ck_quantize_row(Int32(type.rawValue), x, y, n)
    }

    public static func quantizeScalar(_ type: GGMLType, _ x: UnsafePointer<Float>, into y: UnsafeMutableRawPointer, count n: Int) {
        ck_quantize_row_scalar(Int32(type.rawValue), x, y, n)
    }

    /// Dot product of a row of `type` with a row of `activationType(for: type)`.
    public static func dot(_ type: GGMLType, _ x: UnsafeRawPointer, _ y: UnsafeRawPointer, count n: Int) -> Float {
        ck_vec_dot(Int32(type.rawValue), x, y, n)
    }

    public static func dotScalar(_ type: GGMLType, _ x: UnsafeRawPointer, _ y: UnsafeRawPointer, count n: Int) -> Float {
        ck_vec_dot_scalar(Int32(type.rawValue), x, y, n)
    }

    /// One SIMD implementation of the quantized dot products, for tests that compare each with the
    /// scalar twin without changing the process-wide level.
    public enum DotVariant: Int32, Sendable, CaseIterable, CustomStringConvertible {
        case scalar = 0
        case avx2 = 1
        /// AVX2 with AVX-VNNI's vpdpbusd (the 32-element block types; others run their AVX2 kernel).
        case avxVNNI = 2

        /// Whether this CPU can run the variant.
        public var isAvailable: Bool { ck_variant_available(rawValue) != 0 }

        public var description: String {
            switch self {
            case .scalar: "scalar"
            case .avx2: "AVX2"
            case .avxVNNI: "AVX-VNNI"
            }
        }
    }

    /// `dot` through one variant; nil when this CPU cannot run it.
    public static func dot(_ type: GGMLType, _ x: UnsafeRawPointer, _ y: UnsafeRawPointer, count n: Int, variant: DotVariant) -> Float? {
        guard variant.isAvailable else { return nil }
        return ck_vec_dot_variant(variant.rawValue, Int32(type.rawValue), x, y, n)
    }

    /// Float dot product (SIMD when available).
    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) -> Float {
        ck_dot_f32(x, y, n)
    }

    public static func fp16(_ f: Float) -> UInt16 { ck_fp32_to_fp16(f) }
    public static func float(fp16 h: UInt16) -> Float { ck_fp16_to_fp32(h) }

    /// `out[t * ldOut + r] = W[r] · activations[t]` for every row r and token t.
    /// `activations` must have been quantized to `w.activationType` with `w.columns` columns.
    public static func matmul(_ w: QuantizedMatrix, _ activations: ActivationBuffer, tokens: Int,
                              into out: UnsafeMutablePointer<Float>, ldOut: Int, pool: ThreadPool?) {
        precondition(activations.type == w.activationType && activations.columns == w.columns && tokens <= activations.capacity)
        var args = ck_matmul_args(
            type: Int32(w.type.rawValue), w: w.base, w_row_bytes: w.rowBytes, rows: w.rows, cols: w.columns,
            act: UnsafeRawPointer(activations.storage), act_row_bytes: activations.rowBytes, n_tokens: tokens,
            out: out, ld_out: ldOut)
        ck_matmul(pool?.handle, &args)
    }
}

/// Activations quantized to the type a weight matrix's dot product needs, for up to `capacity`
/// tokens. Allocated once per model and reused each step (no per-token allocation).
public final class ActivationBuffer: @unchecked Sendable {
    public let type: GGMLType
    public let columns: Int
    public let capacity: Int
    public let rowBytes: Int
    let storage: UnsafeMutableRawPointer

    public init(type: GGMLType, columns: Int, capacity: Int) {
        self.type = type
        self.columns = columns
        self.capacity = max(1, capacity)
        rowBytes = Kernels.rowBytes(type, columns)
        storage = .allocate(byteCount: max(1, rowBytes * self.capacity), alignment: 64)
    }

    deinit { storage.deallocate() }

    /// Quantizes `tokens` rows of `columns` floats (row stride `stride`) from `x`.
    public func load(_ x: UnsafePointer<Float>, tokens: Int, stride: Int) {
        precondition(tokens <= capacity)
        for t in 0..<tokens {
            ck_quantize_row(Int32(type.rawValue), x + t * stride, storage + t * rowBytes, columns)
        }
    }

    /// The quantized row of token `t`.
    public func row(_ t: Int) -> UnsafeRawPointer { UnsafeRawPointer(storage + t * rowBytes) }
}
