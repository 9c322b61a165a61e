import Testing
@testable import ModelFormats

@Suite("GGMLType")
struct GGMLTypeTests {
    /// (raw value, name, block size, block bytes) — from ggml's type_traits (gguf-py's
    /// GGML_QUANT_SIZES agrees except Q8_1, where gguf-py says 40 but sizeof(block_q8_1) is 36).
    static let table: [(UInt32, String, Int, Int)] = [
        (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20),
        (6, "Q5_0", 32, 22), (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36),
        (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110), (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176),
        (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292), (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74),
        (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50), (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110),
        (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136), (24, "I8", 1, 1), (25, "I16", 1, 2),
        (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8), (29, "IQ1_M", 256, 56),
        (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66), (39, "MXFP4", 32, 17),
    ]

    @Test("numbering, names and block geometry match ggml")
    func table() throws {
        #expect(GGMLType.allCases.count == Self.table.count)
        for (raw, name, bs, bb) in Self.table {
            let t = try #require(GGMLType(rawValue: raw))
            #expect(t.name == name)
            #expect(t.blockSize == bs, "\(name)")
            #expect(t.blockBytes == bb, "\(name)")
            #expect(GGMLType(name: name.lowercased()) == t)
        }
        for raw: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 1000] {
            #expect(GGMLType(rawValue: raw) == nil)
        }
    }

    @Test("rowBytes")
    func rowBytes() throws {
        #expect(try GGMLType.f32.rowBytes(576) == 2304)
        #expect(try GGMLType.q4_1.rowBytes(576) == 360)
        #expect(try GGMLType.q8_0.rowBytes(576) == 612)
        #expect(try GGMLType.q4_K.rowBytes(4096) == 2304)
        #expect(try GGMLType.q6_K.rowBytes(0) == 0)
        expectCode(.invalidTensor) { _ = try GGMLType.q4_0.rowBytes(33) }
        expectCode(.invalidTensor) { _ = try GGMLType.q4_K.rowBytes(128) }
        expectCode(.invalidTensor) { _ = try GGMLType.f32.rowBytes(-1) }
        expectCode(.overflow) { _ = try GGMLType.f64.rowBytes(Int.max) }
    }
}
