import Foundation
import ModelFormats
@testable import Models
import Testing

/// Each quantized weight type on a tiny llama model against llama.cpp's logits, bit for bit
/// (Fixtures/tiny-quantized.json, written by scripts/gen-arch-fixtures.py with llama-cpp-python).
///
/// Every layer matrix holds random blocks of one type. A 16-token prompt takes llama.cpp's batched
/// kernels on x86 (tinyBLAS, the repacked GEMMs, the tiled K-quant GEMM), whose float operations
/// Verity's kernels perform in the same order on every instruction set, so the results are equal,
/// not merely close. The residual stream after the layer is compared as well as the logits: the
/// output projection quantizes its input to 8 bits, which absorbs most last-bit differences, but the
/// residual carries the last matrix product's bits unchanged.
@Suite("Quantized types against llama.cpp on tiny models")
struct TinyQuantizedTests {
    struct Fixture: Decodable {
        struct Tensor: Decodable { let name: String; let dims: [Int]; let type: String; let seed: UInt64 }
        struct Model: Decodable {
            let name: String
            let metadata: [[TinyArchitectureTests.Fixture.MetadataItem]]
            let tensors: [Tensor]
            /// Per type name, its fp16 fields: [byte offset in the block, p, sign].
            let fp16_fields: [String: [[Int]]]
            let residual_bits: [[UInt32]]
            let logit_bits: [[UInt32]]
        }
        let llama_cpp_python: String
        let tokens: [Int32]
        let types: [Model]
    }

    static let fixture = TinyArchitectureTests.load("tiny-quantized.json", or: Fixture(llama_cpp_python: "missing", tokens: [], types: []))

    /// The generator's random blocks: the top byte of each LCG step, then every fp16 field set to
    /// a value in [2^p, 2^(p+1)) with the given sign and the field's own random mantissa bits.
    static func blocks(_ type: GGMLType, fields: [[Int]], seed: UInt64, elements: Int) -> [UInt8] {
        var state = seed
        var bytes = (0..<(elements / type.blockSize * type.blockBytes)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(state >> 56)
        }
        for block in stride(from: 0, to: bytes.count, by: type.blockBytes) {
            for field in fields {
                let at = block + field[0]
                let mantissa = (Int(bytes[at]) | Int(bytes[at + 1]) << 8) & 0x3FF
                let bits = field[2] << 15 | (field[1] + 15) << 10 | mantissa
                bytes[at] = UInt8(bits & 0xFF)
                bytes[at + 1] = UInt8(bits >> 8)
            }
        }
        return bytes
    }

    static func build(_ model: Fixture.Model) throws -> GGUFFile {
        var writer = GGUFWriter()
        TinyArchitectureTests.setMetadata(model.metadata, on: &writer)
        for t in model.tensors {
            let type = try #require(GGMLType(name: t.type), "unknown type \(t.type)")
            let count = t.dims.reduce(1, *)
            let data: [UInt8]
            if type == .f32 {
                let values = TinyArchitectureTests.weights(seed: t.seed, count: count, scale: 0.2, norm: true)
                data = values.withUnsafeBytes { Array($0) }
            } else {
                let fields = try #require(model.fp16_fields[t.type], "no fp16 fields for \(t.type)")
                data = blocks(type, fields: fields, seed: t.seed, elements: count)
            }
            try writer.addTensor(name: t.name, type: type, dimensions: t.dims, data: data)
        }
        return try GGUFFile(bytes: writer.serialize())
    }

    @Test("the fixture covers every quantized type with a SIMD kernel")
    func coverage() {
        let covered = Set(Self.fixture.types.map(\.name))
        #expect(covered == ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"])
    }

    /// Positions whose values differ from llama.cpp's in any bit, the count of differing values, the
    /// largest difference and the first few, for the failure message.
    static func compare(_ mine: UnsafeBufferPointer<Float>, _ reference: [[UInt32]]) -> (values: Int, worst: Float, first: [String]) {
        var differing = 0, worst: Float = 0, first: [String] = []
        let width = reference.first?.count ?? 0
        for (t, row) in reference.enumerated() {
            for (i, bits) in row.enumerated() {
                let value = mine[t * width + i], ref = Float(bitPattern: bits)
                if value.bitPattern != bits {
                    differing += 1
                    if first.count < 4 { first.append("[\(t)][\(i)] \(value) vs \(ref)") }
                }
                worst = max(worst, abs(value - ref))
            }
        }
        return (differing, worst, first)
    }

    @Test("the residual stream and the logits equal llama.cpp's bit for bit",
          arguments: ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"])
    func matchesLlamaCpp(name: String) throws {
        let spec = try #require(Self.fixture.types.first { $0.name == name }, "no fixture for \(name)")
        let model = try #require(try ModelRegistry.load(try Self.build(spec)) as? DecoderModel)
        let tokens = Self.fixture.tokens
        let context = try #require(try model.makeContext(capacity: tokens.count, threads: 2) as? TransformerContext)
        #expect(context.workspace.batch >= tokens.count, "the prompt must be one batch, as llama.cpp's")
        // The logits and the residual stream live in the context: keep it alive while reading them.
        try withExtendedLifetime(context) {
            let logits = try model.forward(tokens, context: context, logits: .all)
            let residual = UnsafeBufferPointer(start: context.workspace.x, count: tokens.count * model.hyperparameters.embedding)
            let r = Self.compare(residual, spec.residual_bits), l = Self.compare(logits, spec.logit_bits)
            print("\(name): \(r.values) residual values and \(l.values) logits differ from llama.cpp's "
                + "(max |diff| \(r.worst), \(l.worst)); llama-cpp-python \(Self.fixture.llama_cpp_python)")
            #expect(r.values == 0, "\(name): \(r.values) residual values differ, max |diff| \(r.worst): \(r.first.joined(separator: ", "))")
            #expect(l.values == 0, "\(name): \(l.values) logits differ, max |diff| \(l.worst): \(l.first.joined(separator: ", "))")
        }
    }
}
