import CKernels

/// Instruction-set levels the quantized kernels can run at. The level is detected from CPUID at
/// run time; the binary is never compiled for one machine.
public enum InstructionSet: Int32, Sendable, Comparable, CustomStringConvertible {
    case scalar = 0
    case avx2 = 1
    case avx512 = 2

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .avx2: "AVX2"
        case .avx512: "AVX-512"
        }
    }

    /// The best level this CPU supports.
    public static var detected: InstructionSet { InstructionSet(rawValue: ck_cpu_isa()) ?? .scalar }

    /// The level the kernels use now.
    public static var active: InstructionSet { InstructionSet(rawValue: ck_active_isa()) ?? .scalar }

    /// Whether the kernels use AVX-VNNI now (detected at run time; VERITY_ISA=avx2 or VERITY_VNNI=0
    /// turn it off).
    public static var usesVNNI: Bool { ck_active_features() & Int32(CK_FEAT_AVXVNNI) != 0 }

    /// Restricts the kernels to `level` (clamped to what the CPU has); returns the level in force.
    /// For tests and benchmarks that compare a SIMD path with its scalar twin.
    @discardableResult
    public static func force(_ level: InstructionSet) -> InstructionSet {
        InstructionSet(rawValue: ck_set_isa(level.rawValue)) ?? .scalar
    }
}
