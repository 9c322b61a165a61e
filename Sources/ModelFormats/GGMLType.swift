/// A ggml tensor element type, with ggml's numbering (`enum ggml_type`).
///
/// Numbers ggml has retired (4, 5: old Q4_2/Q4_3; 31–33: old Q4_0_4_4 …; 36–38: IQ4_NL_4_4 …)
/// are not cases, so a file using them fails with `.unknownTensorType`.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case iq2_xxs = 16
    case iq2_xs = 17
    case iq3_xxs = 18
    case iq1_s = 19
    case iq4_nl = 20
    case iq3_s = 21
    case iq2_s = 22
    case iq4_xs = 23
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case iq1_m = 29
    case bf16 = 30
    case tq1_0 = 34
    case tq2_0 = 35
    case mxfp4 = 39

    /// The name as llama.cpp / gguf-py print it: `"F32"`, `"Q4_K"`, `"IQ2_XXS"`, `"BF16"`, ….
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q8_1: return "Q8_1"
        case .q2_K: return "Q2_K"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .q8_K: return "Q8_K"
        case .iq2_xxs: return "IQ2_XXS"
        case .iq2_xs: return "IQ2_XS"
        case .iq3_xxs: return "IQ3_XXS"
        case .iq1_s: return "IQ1_S"
        case .iq4_nl: return "IQ4_NL"
        case .iq3_s: return "IQ3_S"
        case .iq2_s: return "IQ2_S"
        case .iq4_xs: return "IQ4_XS"
        case .i8: return "I8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .f64: return "F64"
        case .iq1_m: return "IQ1_M"
        case .bf16: return "BF16"
        case .tq1_0: return "TQ1_0"
        case .tq2_0: return "TQ2_0"
        case .mxfp4: return "MXFP4"
        }
    }

    /// Looks a type up by ``name`` (case-insensitive), e.g. `GGMLType(name: "q4_k") == .q4_K`.
    public init?(name: String) {
        let upper = name.uppercased()
        guard let match = GGMLType.allCases.first(where: { $0.name == upper }) else { return nil }
        self = match
    }

    public var description: String { name }

    /// Elements per block: 1 for the plain types, 32 for Q4_0…Q8_1/IQ4_NL/MXFP4, 256 for the
    /// K-quants and most IQ types.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64:
            return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4:
            return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
             .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s, .iq3_s, .iq2_s, .iq4_xs, .iq1_m,
             .tq1_0, .tq2_0:
            return 256
        }
    }

    /// Bytes per block (`sizeof(block_xxx)` in ggml-common.h).
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16: return 2
        case .bf16: return 2
        case .f64: return 8
        case .i8: return 1
        case .i16: return 2
        case .i32: return 4
        case .i64: return 8
        case .q4_0: return 2 + 16           // fp16 d, 32 nibbles
        case .q4_1: return 2 + 2 + 16       // fp16 d, m, 32 nibbles
        case .q5_0: return 2 + 4 + 16       // d, qh, nibbles
        case .q5_1: return 2 + 2 + 4 + 16   // d, m, qh, nibbles
        case .q8_0: return 2 + 32           // d, 32 int8
        case .q8_1: return 2 + 2 + 32       // d, s, 32 int8 (ggml; gguf-py's table says 40)
        case .q2_K: return 16 + 64 + 2 + 2  // scales, qs, d, dmin
        case .q3_K: return 32 + 64 + 12 + 2 // hmask, qs, scales, d
        case .q4_K: return 2 + 2 + 12 + 128 // d, dmin, scales, qs
        case .q5_K: return 2 + 2 + 12 + 32 + 128
        case .q6_K: return 128 + 64 + 16 + 2 // ql, qh, scales, d
        case .q8_K: return 4 + 256 + 32     // float d, qs, bsums
        case .iq2_xxs: return 2 + 64
        case .iq2_xs: return 2 + 64 + 8
        case .iq3_xxs: return 2 + 96
        case .iq1_s: return 2 + 32 + 16
        case .iq4_nl: return 2 + 16
        case .iq3_s: return 2 + 64 + 8 + 32 + 4
        case .iq2_s: return 2 + 64 + 8 + 8
        case .iq4_xs: return 2 + 2 + 4 + 128
        case .iq1_m: return 32 + 16 + 8
        case .tq1_0: return 48 + 4 + 2
        case .tq2_0: return 64 + 2
        case .mxfp4: return 1 + 16
        }
    }

    /// `true` for the block-quantized types (block size > 1).
    public var isQuantized: Bool { blockSize > 1 }

    /// Bytes occupied by `elements` contiguous elements (one row).
    ///
    /// Throws `.invalidTensor` if `elements` is negative or not a multiple of ``blockSize``,
    /// and `.overflow` if the byte count does not fit in `Int`.
    public func rowBytes(_ elements: Int) throws(GGUFError) -> Int {
        guard elements >= 0 else {
            throw GGUFError(.invalidTensor, "negative element count \(elements) for type \(name)")
        }
        let bs = blockSize
        guard elements % bs == 0 else {
            throw GGUFError(.invalidTensor, "\(elements) elements is not a multiple of the \(name) block size \(bs)")
        }
        let (bytes, overflow) = (elements / bs).multipliedReportingOverflow(by: blockBytes)
        guard !overflow else {
            throw GGUFError(.overflow, "\(elements) elements of type \(name) overflow the byte count")
        }
        return bytes
    }
}
