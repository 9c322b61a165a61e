import Foundation

// safetensors (https://github.com/huggingface/safetensors), all numbers little-endian
// ===================================================================================
//
//   offset  size  field
//   0       8     N: UInt64, the byte length of the header
//   8       N     header: a UTF-8 JSON object. Each key but "__metadata__" names a tensor:
//                   {"dtype": "BF16", "shape": [rows, columns], "data_offsets": [begin, end]}
//                 offsets are relative to the data section; "__metadata__" maps strings to
//                 strings. The header may be padded with trailing spaces.
//   8+N   ...     the data section: each tensor's bytes, row-major (C order), no padding rule.
//
// A row-major [rows, columns] tensor has the same bytes as ggml's [columns, rows] (ne[0] is the
// contiguous length), so F32, F16 and BF16 weights are used in place, without a copy.

/// A memory-mapped `.safetensors` file: its tensor directory and zero-copy access to the bytes.
/// Nothing is trusted: the header length, every offset and every size are checked against the
/// file, and tensors may not overlap.
public final class SafetensorsFile: @unchecked Sendable {
    /// An element type of the format. Verity runs F32, F16 and BF16; the rest are named in errors.
    public enum DType: String, Sendable, CaseIterable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
        case bool = "BOOL", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

        public var byteSize: Int {
            switch self {
            case .f64, .i64, .u64: 8
            case .f32, .i32, .u32: 4
            case .f16, .bf16, .i16, .u16: 2
            case .i8, .u8, .bool, .f8e4m3, .f8e5m2: 1
            }
        }

        /// The ggml type with the same bytes, for the types Verity computes with.
        public var ggmlType: GGMLType? {
            switch self {
            case .f32: .f32
            case .f16: .f16
            case .bf16: .bf16
            default: nil
            }
        }
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        /// Row-major shape, outermost first (the file's order, the reverse of ggml's).
        public var shape: [Int]
        /// Absolute byte range in the file.
        public var range: Range<Int>

        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let storage: MappedFile
    public let path: String
    /// Tensors by name.
    public let tensors: [String: Tensor]
    /// The header's `__metadata__` (for example `{"format": "pt"}`).
    public let metadata: [String: String]

    /// The largest header this reader accepts (the format's own limit is 100 MB).
    public static let maxHeaderBytes = 100 << 20

    public convenience init(path: String) throws(GGUFError) {
        try self.init(storage: try MappedFile(path: path), path: path)
    }

    public init(storage: MappedFile, path: String) throws(GGUFError) {
        self.storage = storage
        self.path = path
        let bytes = storage.buffer
        guard bytes.count >= 8 else {
            throw GGUFError(.truncated, "\(path) is not a safetensors file: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength >= 2, headerLength <= UInt64(Self.maxHeaderBytes), Int(headerLength) <= bytes.count - 8 else {
            throw GGUFError(.truncated, "\(path) is not a valid safetensors file: its header claims \(headerLength) bytes, the file has \(bytes.count - 8) after the length")
        }
        let dataStart = 8 + Int(headerLength)
        let headerData = Data(bytes[8..<dataStart])
        guard let object = try? JSONSerialization.jsonObject(with: headerData), let header = object as? [String: Any] else {
            throw GGUFError(.invalidString, "\(path) is not a valid safetensors file: its \(headerLength)-byte header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let dict = value as? [String: Any] else {
                    throw GGUFError(.typeMismatch, "\(path): __metadata__ is not an object")
                }
                for (k, v) in dict { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shapeValues = entry["shape"] as? [Any],
                  let offsetValues = entry["data_offsets"] as? [Any], offsetValues.count == 2 else {
                throw GGUFError(.invalidTensor, "\(path): tensor '\(name)' needs dtype, shape and two data_offsets")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw GGUFError(.unknownTensorType, "\(path): tensor '\(name)' has unknown dtype '\(dtypeName)'")
            }
            var shape: [Int] = []
            var elements = 1
            for v in shapeValues {
                guard let d = (v as? NSNumber)?.intValue, d >= 0 else {
                    throw GGUFError(.invalidTensor, "\(path): tensor '\(name)' has an invalid shape \(shapeValues)")
                }
                let (m, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw GGUFError(.overflow, "\(path): tensor '\(name)' shape \(shapeValues) overflows") }
                elements = m
                shape.append(d)
            }
            guard let begin = (offsetValues[0] as? NSNumber)?.intValue, let end = (offsetValues[1] as? NSNumber)?.intValue,
                  begin >= 0, end >= begin else {
                throw GGUFError(.invalidTensor, "\(path): tensor '\(name)' has invalid data_offsets \(offsetValues)")
            }
            let (size, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, size == end - begin else {
                throw GGUFError(.invalidTensor, "\(path): tensor '\(name)' (\(dtypeName) \(shape)) needs \(size) bytes but its data_offsets span \(end - begin)")
            }
            guard end <= bytes.count - dataStart else {
                throw GGUFError(.truncated, "\(path): tensor '\(name)' data [\(begin), \(end)) extends past the end of the file (\(bytes.count - dataStart) data bytes)")
            }
            tensors[name] = Tensor(name: name, dtype: dtype, shape: shape, range: (dataStart + begin)..<(dataStart + end))
        }
        // No two tensors may share bytes (the format forbids it; a crafted file could alias them).
        let sorted = tensors.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw GGUFError(.invalidTensor, "\(path): tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The bytes of a tensor of this file, valid while `self` lives.
    public func data(_ tensor: Tensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage.buffer[tensor.range])
    }
}
