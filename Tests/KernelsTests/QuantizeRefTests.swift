import Foundation
import Kernels
import ModelFormats
import Testing
import TestSupport

/// quantize_ref.json (Fixtures/make_quantize_fixtures.py): rows of floats and the bytes llama.cpp's
/// ggml_quantize_chunk (no importance matrix) makes of them, per type.
private struct QuantizeFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let rowNames: [String]
        let rows: Int
        let columns: Int
        let input: String
        let expected: [String: String]

        enum CodingKeys: String, CodingKey {
            case name, rows, columns, input, expected
            case rowNames = "row_names"
        }

        func floats() throws -> [Float] {
            let data = try #require(Data(base64Encoded: input))
            try #require(data.count == rows * columns * 4)
            return data.withUnsafeBytes { raw in
                (0..<rows * columns).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
        }
    }

    let cases: [Case]

    static func load() throws -> QuantizeFixture {
        try JSONDecoder().decode(QuantizeFixture.self, from: Data(contentsOf: TestPaths.fixture("quantize_ref.json")))
    }
}

@Suite("Weight quantizers against llama.cpp's ggml_quantize_chunk")
struct QuantizeRefTests {
    /// Every type the fixture holds: all quantizable types but F32 (a copy, tested below).
    static let fixtureTypes: [GGMLType] = Kernels.quantizableTypes.filter { $0 != .f32 }

    static func quantize(_ type: GGMLType, _ x: [Float], rows: Int, columns: Int, pool: ThreadPool? = nil) throws -> [UInt8] {
        let count = try Kernels.quantizedByteCount(type, rows: rows, columns: columns)
        var out = [UInt8](repeating: 0xA5, count: count)
        try x.withUnsafeBufferPointer { xp in
            try out.withUnsafeMutableBytes { op in
                try Kernels.quantize(type, rows: rows, columns: columns, from: xp.baseAddress!, into: op.baseAddress!, pool: pool)
            }
        }
        return out
    }

    /// Gaussian-ish floats (sum of uniforms), scale `s`.
    static func weights(_ n: Int, scale s: Float, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in (Float.random(in: -1...1, using: &rng) + Float.random(in: -1...1, using: &rng) + Float.random(in: -1...1, using: &rng)) * s }
    }

    @Test("byte-identical to ggml_quantize_chunk on every fixture row, for every type")
    func golden() throws {
        let fixture = try QuantizeFixture.load()
        var compared = 0
        for c in fixture.cases {
            #expect(Set(c.expected.keys) == Set(Self.fixtureTypes.map(\.name)), "\(c.name): fixture types")
            #expect(c.rowNames.count == c.rows)
            let x = try c.floats()
            for type in Self.fixtureTypes {
                let text = try #require(c.expected[type.name])
                let expected = try #require(Data(base64Encoded: text))
                let got = try Self.quantize(type, x, rows: c.rows, columns: c.columns)
                try #require(got.count == expected.count, "\(c.name) \(type.name): size")
                let rowBytes = Kernels.rowBytes(type, c.columns)
                let bad = (0..<c.rows).filter { r in
                    !got[(r * rowBytes)..<((r + 1) * rowBytes)].elementsEqual(expected[(r * rowBytes)..<((r + 1) * rowBytes)])
                }
                #expect(bad.isEmpty, "\(c.name) \(type.name): rows differ: \(bad.map { c.rowNames[$0] })")
                compared += c.rows
            }
        }
        #expect(compared == 14 * (20 + 6))
    }

    /// Q8_0 is left out: ck_quantize_row keeps its activation quantizer (llama.cpp's x86 one), which
    /// rounds differently from quantize_row_q8_0_ref.
    @Test("ck_quantize_row (SIMD and scalar dispatch) sends the other weight types to the same quantizers")
    func rowEntryPoint() throws {
        let columns = 512
        let x = Self.weights(columns, scale: 0.05, seed: 11)
        for type in Self.fixtureTypes where type != .q8_0 && type != .f16 && type != .bf16 {
            let want = try Self.quantize(type, x, rows: 1, columns: columns)
            var got = [UInt8](repeating: 0, count: want.count), scalar = got
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBytes { Kernels.quantize(type, xp.baseAddress!, into: $0.baseAddress!, count: columns) }
                scalar.withUnsafeMutableBytes { Kernels.quantizeScalar(type, xp.baseAddress!, into: $0.baseAddress!, count: columns) }
            }
            #expect(got == want, "\(type.name)")
            #expect(scalar == want, "\(type.name)")
        }
    }

    @Test("the bytes do not depend on the thread count", arguments: [GGMLType.q4_K, .q6_K, .q8_0, .q3_K, .iq4_xs])
    func threadCountIndependent(type: GGMLType) throws {
        let rows = 37, columns = 1024
        let x = Self.weights(rows * columns, scale: 0.03, seed: 99)
        let single = try Self.quantize(type, x, rows: rows, columns: columns)
        for threads in [1, 2, 3, 5, 8] {
            let pool = ThreadPool(threads: threads)
            #expect(try Self.quantize(type, x, rows: rows, columns: columns, pool: pool) == single, "\(type.name), \(threads) threads")
        }
        // Each row alone gives the same bytes as within the matrix.
        let rowBytes = Kernels.rowBytes(type, columns)
        for r in [0, 17, 36] {
            let one = try Self.quantize(type, Array(x[(r * columns)..<((r + 1) * columns)]), rows: 1, columns: columns)
            #expect(one[...] == single[(r * rowBytes)..<((r + 1) * rowBytes)], "\(type.name) row \(r)")
        }
    }

    /// Upper bounds on the relative RMS error of quantize → dequantize on these weights (sums of
    /// three uniforms; measured: 40–75% of each bound, e.g. Q4_K 0.068, Q6_K 0.017, Q2_K 0.29).
    static let errorBounds: [(GGMLType, Double)] = [
        (.f32, 0), (.f16, 0.0005), (.bf16, 0.003), (.q8_0, 0.008), (.q6_K, 0.025), (.q5_0, 0.055), (.q5_1, 0.055),
        (.q5_K, 0.05), (.q4_0, 0.11), (.q4_1, 0.11), (.q4_K, 0.1), (.iq4_nl, 0.1), (.iq4_xs, 0.1), (.q3_K, 0.2),
        (.q2_K, 0.4),
    ]

    @Test("dequantizing the result gives back the weights within each type's precision")
    func roundTrip() throws {
        #expect(Set(Self.errorBounds.map(\.0)) == Set(Kernels.quantizableTypes))
        let rows = 8, columns = 768
        let x = Self.weights(rows * columns, scale: 0.02, seed: 7)
        let norm = x.reduce(0) { $0 + Double($1) * Double($1) }
        for (type, bound) in Self.errorBounds {
            let q = try Self.quantize(type, x, rows: rows, columns: columns)
            var back = [Float](repeating: .nan, count: rows * columns)
            let rowBytes = Kernels.rowBytes(type, columns)
            q.withUnsafeBytes { qp in
                back.withUnsafeMutableBufferPointer { bp in
                    for r in 0..<rows {
                        Kernels.dequantize(type, qp.baseAddress! + r * rowBytes, into: bp.baseAddress! + r * columns, count: columns)
                    }
                }
            }
            let err = zip(x, back).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let rel = (err / norm).squareRoot()
            #expect(rel <= bound, "\(type.name): relative RMS error \(rel)")
            if type == .f32 { #expect(q.count == x.count * 4 && back == x) }
        }
    }

    @Test("unsupported types and ragged rows are refused; byte counts follow the block layout")
    func shapes() throws {
        #expect(Kernels.quantizableTypes.allSatisfy(Kernels.canQuantize))
        for type in GGMLType.allCases where !Kernels.quantizableTypes.contains(type) {
            #expect(!Kernels.canQuantize(type), "\(type.name)")
        }
        #expect(throws: KernelError.self) { try Kernels.quantizedByteCount(.iq2_xxs, rows: 1, columns: 256) }
        #expect(throws: KernelError.self) { try Kernels.quantizedByteCount(.q8_K, rows: 1, columns: 256) }
        #expect(throws: KernelError.self) { try Kernels.quantizedByteCount(.q4_K, rows: 2, columns: 128) }
        #expect(throws: KernelError.self) { try Kernels.quantizedByteCount(.q4_0, rows: 2, columns: 48) }
        #expect(try Kernels.quantizedByteCount(.q4_K, rows: 3, columns: 512) == 3 * 2 * 144)
        #expect(try Kernels.quantizedByteCount(.q8_0, rows: 5, columns: 64) == 5 * 2 * 34)
        #expect(try Kernels.quantizedByteCount(.bf16, rows: 2, columns: 3) == 12)
        for type in Kernels.quantizableTypes {
            #expect(try Kernels.quantizedByteCount(type, rows: 4, columns: 512) == 4 * 512 / type.blockSize * type.blockBytes, "\(type.name)")
        }
        let x = [Float](repeating: 1, count: 128)
        var out = [UInt8](repeating: 0x5A, count: 256)
        let error = x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBytes { op in
                #expect(throws: KernelError.self) {
                    try Kernels.quantize(.q6_K, rows: 1, columns: 128, from: xp.baseAddress!, into: op.baseAddress!)
                }
            }
        }
        #expect(error?.code == .shapeMismatch)
        #expect(out.allSatisfy { $0 == 0x5A }, "nothing written on error")
    }
}
