import CKernels
import ModelFormats

/// Weight quantization: float matrices to the tensor types llama.cpp's `llama-quantize` writes,
/// byte for byte as it does without an importance matrix (ggml's reference quantizers; see
/// `Sources/CKernels/quantize_ref.c`). Used to quantize safetensors weights at load time and to
/// export GGUF files. The result is a pure function of the input: the same on every CPU tier and
/// for any thread count.
extension Kernels {
    /// The types `quantize(_:rows:columns:from:into:pool:)` produces.
    public static let quantizableTypes: [GGMLType] = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs,
    ]

    /// Whether weights can be quantized to `type`.
    public static func canQuantize(_ type: GGMLType) -> Bool {
        ck_quantize_weights_supported(Int32(type.rawValue)) != 0
    }

    /// Bytes of a `rows`×`columns` matrix of `type`.
    /// - Throws: `KernelError.unsupportedType` when `type` cannot be quantized to;
    ///   `.shapeMismatch` when a dimension is negative, `columns` is not a multiple of the type's
    ///   block size, or the size overflows.
    public static func quantizedByteCount(_ type: GGMLType, rows: Int, columns: Int) throws(KernelError) -> Int {
        guard canQuantize(type) else {
            throw KernelError(.unsupportedType, "cannot quantize to \(type.name) (supported: \(quantizableTypes.map(\.name).joined(separator: ", ")))")
        }
        let blockSize = Kernels.blockSize(type)
        guard rows >= 0, columns >= 0, columns % blockSize == 0 else {
            throw KernelError(.shapeMismatch, "\(rows)×\(columns) cannot be quantized to \(type.name) (columns must be a multiple of \(blockSize))")
        }
        let (total, overflow) = rowBytes(type, columns).multipliedReportingOverflow(by: rows)
        guard !overflow else { throw KernelError(.shapeMismatch, "\(type.name) matrix \(rows)×\(columns) is too large") }
        return total
    }

    /// Quantizes a row-major `rows`×`columns` float matrix to `type`, writing
    /// `quantizedByteCount(type, rows:, columns:)` bytes: the bytes llama.cpp's
    /// `ggml_quantize_chunk(type, floats, out, 0, rows, columns, NULL)` writes.
    /// - Parameters:
    ///   - floats: `rows * columns` floats.
    ///   - out: room for `quantizedByteCount(type, rows: rows, columns: columns)` bytes.
    ///   - pool: splits the rows across its threads; nil quantizes on the calling thread. Rows are
    ///     independent, so the bytes do not depend on it.
    /// - Throws: as `quantizedByteCount`; nothing is written then.
    public static func quantize(_ type: GGMLType, rows: Int, columns: Int, from floats: UnsafePointer<Float>,
                                into out: UnsafeMutableRawPointer, pool: ThreadPool? = nil) throws(KernelError) {
        _ = try quantizedByteCount(type, rows: rows, columns: columns)
        guard rows > 0, columns > 0 else { return }
        let code = Int32(type.rawValue)
        let rowBytes = Kernels.rowBytes(type, columns)
        guard let pool, pool.size > 1, rows > 1 else {
            for r in 0..<rows { ck_quantize_row_ref(code, floats + r * columns, out + r * rowBytes, columns) }
            return
        }
        // A few items per thread, so a thread the OS runs late does not hold up the others.
        let rowsPerItem = (rows + pool.size * 4 - 1) / (pool.size * 4)
        let items = (rows + rowsPerItem - 1) / rowsPerItem
        pool.forEach(items) { item, _ in
            for r in item * rowsPerItem..<min(rows, (item + 1) * rowsPerItem) {
                ck_quantize_row_ref(code, floats + r * columns, out + r * rowBytes, columns)
            }
        }
    }
}
