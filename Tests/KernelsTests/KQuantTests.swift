import Foundation
import Kernels
import ModelFormats
import Testing
import TestSupport

/// Hex string -> bytes.
private func bytes(hex: String) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(hex.utf8.count / 2)
    var hi: UInt8 = 0
    for (i, c) in hex.utf8.enumerated() {
        let v: UInt8 = c >= 97 ? c - 87 : (c >= 65 ? c - 55 : c - 48)
        if i % 2 == 0 { hi = v } else { out.append(hi << 4 | v) }
    }
    return out
}

private struct KQuantFixture: Decodable {
    struct Case: Decodable {
        let type: String
        let count: Int
        let blocks: String
        let expected: String
    }
    let cases: [Case]

    static func load() throws -> KQuantFixture {
        let url = TestPaths.fixture("kquants.json")
        return try JSONDecoder().decode(KQuantFixture.self, from: Data(contentsOf: url))
    }
}

@Suite("K-quants, IQ4 and Q8_K against ggml")
struct KQuantTests {
    static let newTypes: [GGMLType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs]

    @Test("C block sizes and activation types agree with GGMLType")
    func sizes() {
        for type in Kernels.supportedTypes + [.q8_K, .q8_0, .q8_1] {
            #expect(Kernels.blockSize(type) == type.blockSize, "\(type)")
            #expect(Kernels.rowBytes(type, type.blockSize * 3) == type.blockBytes * 3, "\(type)")
        }
        for type in [GGMLType.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs] {
            #expect(Kernels.activationType(for: type) == .q8_K)
        }
        #expect(Kernels.activationType(for: .iq4_nl) == .q8_0)
    }

    @Test("dequantize equals gguf-py bit for bit (SIMD and scalar)")
    func golden() throws {
        let fixture = try KQuantFixture.load()
        #expect(Set(fixture.cases.map(\.type)) == Set(Self.newTypes.map(\.name)))
        for c in fixture.cases {
            let type = try #require(GGMLType(name: c.type))
            let blocks = bytes(hex: c.blocks)
            let expected = bytes(hex: c.expected)
            #expect(blocks.count == c.count / type.blockSize * type.blockBytes)
            #expect(expected.count == c.count * 4)
            let want: [UInt32] = (0..<c.count).map { i in
                UInt32(expected[4 * i]) | UInt32(expected[4 * i + 1]) << 8 | UInt32(expected[4 * i + 2]) << 16 | UInt32(expected[4 * i + 3]) << 24
            }
            var simd = [Float](repeating: .nan, count: c.count), scalar = simd
            blocks.withUnsafeBytes { bp in
                Kernels.dequantize(type, bp.baseAddress!, into: &simd, count: c.count)
                Kernels.dequantizeScalar(type, bp.baseAddress!, into: &scalar, count: c.count)
            }
            let badSimd = (0..<c.count).filter { simd[$0].bitPattern != want[$0] }
            let badScalar = (0..<c.count).filter { scalar[$0].bitPattern != want[$0] }
            #expect(badSimd.isEmpty, "\(c.type): \(badSimd.count) SIMD mismatches, first at \(badSimd.first ?? -1)")
            #expect(badScalar.isEmpty, "\(c.type): \(badScalar.count) scalar mismatches, first at \(badScalar.first ?? -1)")
        }
    }

    /// ggml's quantize_row_q8_K_ref, written again in Swift from its definition: the element of
    /// largest magnitude (first on ties) with its sign, iscale = -127/max, round half to even,
    /// clamp at 127, d = 1/iscale, bsums = sums of 16.
    static func referenceQ8K(_ x: ArraySlice<Float>) -> (d: Float, qs: [Int8], bsums: [Int16]) {
        var amax: Float = 0, max: Float = 0
        for v in x where abs(v) > amax { amax = abs(v); max = v }
        if amax == 0 { return (0, [Int8](repeating: 0, count: 256), [Int16](repeating: 0, count: 16)) }
        let iscale: Float = -127 / max
        let qs = x.map { Int8(Swift.min(127, Int((iscale * $0).rounded(.toNearestOrEven)))) }
        let bsums = (0..<16).map { g in Int16(qs[(16 * g)..<(16 * g + 16)].reduce(0) { $0 + Int($1) }) }
        return (1 / iscale, qs, bsums)
    }

    @Test("Q8_K quantization: ggml's algorithm, SIMD == scalar byte for byte, bsums are group sums")
    func q8K() {
        var rng = SplitMix64(seed: 314)
        let n = 1024
        for trial in 0..<40 {
            var x = (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
            switch trial % 5 {
            case 1: // a tie in magnitude: the first one (negative) decides the sign
                x[5] = -9; x[200] = 9
            case 2: // an all-zero block
                for i in 256..<512 { x[i] = 0 }
            case 3: // max -127 makes iscale exactly 1, so halves are ties (round half to even)
                for i in 0..<256 { x[i] = Float(i - 128) / 2 }
                x[0] = -127
            case 4: // tiny and huge magnitudes
                for i in 512..<768 { x[i] *= 1e-30 }
                for i in 768..<1024 { x[i] *= 1e30 }
            default: break
            }
            var a = [UInt8](repeating: 0xAB, count: Kernels.rowBytes(.q8_K, n)), b = a
            x.withUnsafeBufferPointer { xp in
                a.withUnsafeMutableBytes { Kernels.quantize(.q8_K, xp.baseAddress!, into: $0.baseAddress!, count: n) }
                b.withUnsafeMutableBytes { Kernels.quantizeScalar(.q8_K, xp.baseAddress!, into: $0.baseAddress!, count: n) }
            }
            #expect(a == b, "trial \(trial)")
            for blk in 0..<(n / 256) {
                let ref = Self.referenceQ8K(x[(256 * blk)..<(256 * blk + 256)])
                let base = blk * 292
                let d = Float(bitPattern: UInt32(a[base]) | UInt32(a[base + 1]) << 8 | UInt32(a[base + 2]) << 16 | UInt32(a[base + 3]) << 24)
                let qs = (0..<256).map { Int8(bitPattern: a[base + 4 + $0]) }
                let bsums = (0..<16).map { Int16(bitPattern: UInt16(a[base + 260 + 2 * $0]) | UInt16(a[base + 261 + 2 * $0]) << 8) }
                #expect(d.bitPattern == ref.d.bitPattern, "trial \(trial) block \(blk)")
                #expect(qs == ref.qs, "trial \(trial) block \(blk)")
                #expect(bsums == ref.bsums, "trial \(trial) block \(blk)")
                for g in 0..<16 { #expect(Int(bsums[g]) == qs[(16 * g)..<(16 * g + 16)].reduce(0) { $0 + Int($1) }) }
            }
            // Dequantizing Q8_K gives d * q.
            var back = [Float](repeating: 0, count: n)
            a.withUnsafeBytes { Kernels.dequantizeScalar(.q8_K, $0.baseAddress!, into: &back, count: n) }
            for i in stride(from: 0, to: n, by: 97) {
                let blk = i / 256
                let ref = Self.referenceQ8K(x[(256 * blk)..<(256 * blk + 256)])
                #expect(back[i] == ref.d * Float(ref.qs[i % 256]))
            }
        }
    }

    @Test("Q8_K quantization refuses a row that is not whole blocks; K-quant matrices need 256 columns")
    func shapes() {
        let bytes = [UInt8](repeating: 0, count: 144 * 2)
        bytes.withUnsafeBytes { wp in
            #expect(throws: KernelError.self) { try QuantizedMatrix(type: .q4_K, bytes: wp, rows: 4, columns: 128) }
            #expect((try? QuantizedMatrix(type: .q4_K, bytes: wp, rows: 1, columns: 512)) != nil)
        }
        let act = ActivationBuffer(type: .q8_K, columns: 512, capacity: 2)
        #expect(act.rowBytes == 2 * 292)
    }

    @Test("Q4_K/Q6_K matmul through QuantizedMatrix and ActivationBuffer matches dequantized floats")
    func matmulAgainstFloats() throws {
        var rng = SplitMix64(seed: 2718)
        let rows = 9, cols = 768, tokens = 3
        for type in [GGMLType.q4_K, .q6_K, .q2_K, .q3_K, .q5_K, .iq4_xs, .iq4_nl] {
            let w = randomBlocks(type, blocks: rows * cols / type.blockSize, rng: &rng)
            let x = randomFloats(tokens * cols, rng: &rng)
            try w.withUnsafeBytes { wp in
                let m = try QuantizedMatrix(type: type, bytes: wp, rows: rows, columns: cols)
                let act = ActivationBuffer(type: m.activationType, columns: cols, capacity: tokens)
                x.withUnsafeBufferPointer { act.load($0.baseAddress!, tokens: tokens, stride: cols) }
                var out = [Float](repeating: .nan, count: rows * tokens)
                out.withUnsafeMutableBufferPointer { Kernels.matmul(m, act, tokens: tokens, into: $0.baseAddress!, ldOut: rows, pool: nil) }
                var wf = [Float](repeating: 0, count: cols)
                for r in 0..<rows {
                    m.dequantizeRow(r, into: &wf)
                    for t in 0..<tokens {
                        var ref: Double = 0, mag: Double = 0
                        for c in 0..<cols {
                            ref += Double(wf[c]) * Double(x[t * cols + c])
                            mag += abs(Double(wf[c]) * Double(x[t * cols + c]))
                        }
                        // Activation quantization to 8 bits: about 1/254 of each |product| at worst, far less on average.
                        #expect(abs(Double(out[t * rows + r]) - ref) < 0.01 * mag, "\(type) r=\(r) t=\(t)")
                    }
                }
            }
        }
    }
}
