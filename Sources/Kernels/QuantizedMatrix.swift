import CKernels
import ModelFormats

/// A row-major weight matrix kept in its file format (typically a view into a mapped GGUF file):
/// `rows` rows of `columns` elements of `type`. The memory is owned elsewhere and must outlive it.
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let base: UnsafeRawPointer
    public let rows: Int
    public let columns: Int
    public let rowBytes: Int

    /// Wraps `bytes` as a matrix; throws when the type has no kernel or the size does not match.
    public init(type: GGMLType, bytes: UnsafeRawBufferPointer, rows: Int, columns: Int) throws(KernelError) {
        guard Kernels.supports(type) else {
            throw KernelError(.unsupportedType, "tensor type \(type.name) has no kernel (supported: \(Kernels.supportedTypeNames))")
        }
        guard rows > 0, columns > 0, columns % Kernels.blockSize(type) == 0 else {
            throw KernelError(.shapeMismatch, "\(rows)×\(columns) is not a valid \(type.name) matrix (columns must be a multiple of \(Kernels.blockSize(type)))")
        }
        let rowBytes = Kernels.rowBytes(type, columns)
        let (total, overflow) = rowBytes.multipliedReportingOverflow(by: rows)
        guard !overflow, total == bytes.count, let base = bytes.baseAddress else {
            throw KernelError(.shapeMismatch, "\(type.name) matrix \(rows)×\(columns) needs \(rowBytes * rows) bytes, got \(bytes.count)")
        }
        self.type = type
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowBytes = rowBytes
    }

    /// The activation type this matrix's dot product consumes (Q8_0, Q8_1, Q8_K, F16, F32, BF16).
    public var activationType: GGMLType { Kernels.activationType(for: type) }

    /// Dequantizes row `r` into `out` (columns floats).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows)
        ck_dequantize_row(Int32(type.rawValue), base + r * rowBytes, out, columns)
    }
}
