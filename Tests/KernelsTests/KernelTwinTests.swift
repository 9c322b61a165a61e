import Foundation
import Kernels
import ModelFormats
import Testing
import TestSupport

/// Random blocks of a quantized type: random quant bytes with sane fp16 scales.
func randomBlocks(_ type: GGMLType, blocks: Int, rng: inout some RandomNumberGenerator) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: blocks * type.blockBytes)
    for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
    func put(_ value: Float, at offset: Int) {
        let h = Kernels.fp16(value)
        bytes[offset] = UInt8(h & 0xFF)
        bytes[offset + 1] = UInt8(h >> 8)
    }
    switch type {
    case .f32:
        for i in 0..<(bytes.count / 4) {
            let bits = Float.random(in: -2...2, using: &rng).bitPattern
            for b in 0..<4 { bytes[i * 4 + b] = UInt8((bits >> (8 * UInt32(b))) & 0xFF) }
        }
    case .f16:
        for i in 0..<(bytes.count / 2) { put(Float.random(in: -2...2, using: &rng), at: i * 2) }
    case .bf16:
        for i in 0..<(bytes.count / 2) {
            let bits = Float.random(in: -2...2, using: &rng).bitPattern >> 16
            bytes[i * 2] = UInt8(bits & 0xFF)
            bytes[i * 2 + 1] = UInt8(bits >> 8)
        }
    case .q4_0, .q5_0, .q8_0, .iq4_nl:
        for b in 0..<blocks { put(Float.random(in: 0.001...0.05, using: &rng), at: b * type.blockBytes) }
    case .q4_1, .q5_1:
        for b in 0..<blocks {
            put(Float.random(in: 0.001...0.05, using: &rng), at: b * type.blockBytes)
            put(Float.random(in: -0.5...0.5, using: &rng), at: b * type.blockBytes + 2)
        }
    // K-quants: the super-block scale (and min scale) are fp16; every other byte pattern is valid.
    case .q4_K, .q5_K:
        for b in 0..<blocks {
            put(Float.random(in: 0.0005...0.005, using: &rng), at: b * type.blockBytes)
            put(Float.random(in: 0.0005...0.01, using: &rng), at: b * type.blockBytes + 2)
        }
    case .q2_K:
        for b in 0..<blocks {
            put(Float.random(in: 0.001...0.05, using: &rng), at: b * type.blockBytes + 80)
            put(Float.random(in: 0.001...0.05, using: &rng), at: b * type.blockBytes + 82)
        }
    case .q3_K:
        for b in 0..<blocks { put(Float.random(in: 0.0005...0.005, using: &rng), at: b * type.blockBytes + 108) }
    case .q6_K:
        for b in 0..<blocks { put(Float.random(in: 0.0001...0.001, using: &rng), at: b * type.blockBytes + 208) }
    case .iq4_xs:
        for b in 0..<blocks { put(Float.random(in: 0.0001...0.002, using: &rng), at: b * type.blockBytes) }
    default:
        break
    }
    return bytes
}

func randomFloats(_ n: Int, rng: inout some RandomNumberGenerator) -> [Float] {
    (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
}


@Suite("SIMD kernels against their scalar twins")
struct KernelTwinTests {
    static let weightTypes: [GGMLType] = [.f32, .f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .bf16,
                                          .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs]

    /// Types whose activations are Q8_K or whose scales are exact: the scalar dot must equal the
    /// double-precision dot of the dequantized rows to float rounding (1e-5 of Σ|products|).
    static let tightReference: Set<GGMLType> = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs]

    /// Types whose kernels follow llama.cpp's x86 operation order (see ckernels): every SIMD variant
    /// must equal the scalar twin bit for bit.
    static let llamaOrder: Set<GGMLType> = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs]

    /// nil: the dispatched kernel (what `Kernels.dot` and `matmul` run); otherwise one variant,
    /// skipped where the CPU lacks it.
    static let variants: [Kernels.DotVariant?] = [nil, .avx2, .avxVNNI]

    @Test("dot product: SIMD equals scalar within 1e-5 of Σ|products|", arguments: weightTypes, variants)
    func dotTwin(type: GGMLType, variant: Kernels.DotVariant?) {
        if let variant, !variant.isAvailable { return }
        // 32·k + tails: the 32-element kernels step 4 blocks at a time (18 = 4·4 + 2, 3 < 4).
        for n in [32, 96, 256, 576, 1536, 4 * 32, 7 * 32] {
            guard n % type.blockSize == 0 else { continue } // K-quant rows are whole 256-element blocks
            var rng = SplitMix64(seed: UInt64(type.rawValue) * 1000 + UInt64(n))
            for _ in 0..<20 {
                let w = randomBlocks(type, blocks: n / type.blockSize, rng: &rng)
                let x = randomFloats(n, rng: &rng)
                let actType = Kernels.activationType(for: type)
                var act = [UInt8](repeating: 0, count: Kernels.rowBytes(actType, n))
                x.withUnsafeBufferPointer { xp in
                    act.withUnsafeMutableBytes { Kernels.quantizeScalar(actType, xp.baseAddress!, into: $0.baseAddress!, count: n) }
                }
                let (simd, scalar, reference) = w.withUnsafeBytes { wp in
                    act.withUnsafeBytes { ap in
                        // Reference: dequantize both sides and take a double-precision dot.
                        var wf = [Float](repeating: 0, count: n), af = [Float](repeating: 0, count: n)
                        Kernels.dequantizeScalar(type, wp.baseAddress!, into: &wf, count: n)
                        Kernels.dequantizeScalar(actType, ap.baseAddress!, into: &af, count: n)
                        var ref: Double = 0, magnitude: Double = 0
                        for i in 0..<n {
                            ref += Double(wf[i]) * Double(af[i])
                            magnitude += abs(Double(wf[i]) * Double(af[i]))
                        }
                        let simd = variant.map { Kernels.dot(type, wp.baseAddress!, ap.baseAddress!, count: n, variant: $0)! }
                            ?? Kernels.dot(type, wp.baseAddress!, ap.baseAddress!, count: n)
                        return (simd,
                                Kernels.dotScalar(type, wp.baseAddress!, ap.baseAddress!, count: n), (ref, magnitude))
                    }
                }
                // Errors are relative to the sum of |products| (the result itself can be near zero).
                let scale = max(1, reference.1)
                if Self.llamaOrder.contains(type) {
                    #expect(simd == scalar, "\(type) \(variant?.description ?? "dispatched") n=\(n): simd \(simd) scalar \(scalar)")
                }
                #expect(abs(Double(simd) - Double(scalar)) / scale < 1e-5, "\(type) \(variant?.description ?? "dispatched") n=\(n): simd \(simd) scalar \(scalar)")
                // The scalar kernel agrees with dequantize-then-dot (checks the block layout itself). Q8_1's
                // stored block sum s is fp16, so allow its rounding; the new types get 1e-5.
                let tolerance = Self.tightReference.contains(type) ? 1e-5 : 1e-3
                #expect(abs(Double(scalar) - reference.0) / scale < tolerance, "\(type) n=\(n): scalar \(scalar) reference \(reference.0)")
            }
        }
    }

    @Test("activation quantization: SIMD equals scalar", arguments: [GGMLType.q8_0, .q8_1, .q8_K, .f16], [32, 256, 576, 1536])
    func quantizeTwin(type: GGMLType, n: Int) {
        guard n % type.blockSize == 0 else { return }
        var rng = SplitMix64(seed: 7 + UInt64(n))
        for _ in 0..<50 {
            let x = randomFloats(n, rng: &rng)
            var a = [UInt8](repeating: 0, count: Kernels.rowBytes(type, n)), b = a
            x.withUnsafeBufferPointer { xp in
                a.withUnsafeMutableBytes { Kernels.quantize(type, xp.baseAddress!, into: $0.baseAddress!, count: n) }
                b.withUnsafeMutableBytes { Kernels.quantizeScalar(type, xp.baseAddress!, into: $0.baseAddress!, count: n) }
            }
            #expect(a == b, "\(type) n=\(n)")
        }
    }

    @Test("dequantize: SIMD path equals scalar",
          arguments: [GGMLType.f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .bf16, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs])
    func dequantizeTwin(type: GGMLType) {
        var rng = SplitMix64(seed: 99)
        let n = 1024
        let w = randomBlocks(type, blocks: n / type.blockSize, rng: &rng)
        var a = [Float](repeating: 0, count: n), b = a
        w.withUnsafeBytes { wp in
            Kernels.dequantize(type, wp.baseAddress!, into: &a, count: n)
            Kernels.dequantizeScalar(type, wp.baseAddress!, into: &b, count: n)
        }
        #expect(a == b)
    }

    @Test("fp16 conversion round-trips every half value")
    func fp16RoundTrip() {
        for h in UInt16.min...UInt16.max {
            let f = Kernels.float(fp16: h)
            if f.isNaN { continue }
            #expect(Kernels.fp16(f) == h)
        }
    }

    @Test("float dot: SIMD equals scalar")
    func floatDot() {
        var rng = SplitMix64(seed: 5)
        for n in [1, 7, 8, 15, 16, 17, 100, 576] {
            let x = randomFloats(n, rng: &rng), y = randomFloats(n, rng: &rng)
            var ref: Double = 0
            for i in 0..<n { ref += Double(x[i]) * Double(y[i]) }
            let got = Kernels.dot(x, y, count: n)
            #expect(abs(Double(got) - ref) < 1e-3 * max(1, abs(ref)))
        }
    }
}

@Suite("Float activations against their scalar twins")
struct ActivationTwinTests {
    @Test("silu·up: SIMD equals scalar, and both are close to the formula")
    func siluTwin() {
        var rng = SplitMix64(seed: 17)
        for n in [1, 7, 8, 9, 64, 1536] {
            let g = (0..<n).map { _ in Float.random(in: -12...12, using: &rng) }
            let u = (0..<n).map { _ in Float.random(in: -2...2, using: &rng) }
            var simd = g, scalar = g
            VectorOps.swiglu(&simd, u, count: n)
            VectorOps.swigluScalar(&scalar, u, count: n)
            #expect(simd == scalar)
            for i in 0..<n {
                let want = Double(g[i]) / (1 + Foundation.exp(-Double(g[i]))) * Double(u[i])
                #expect(abs(Double(simd[i]) - want) <= 1e-5 * max(1, abs(want)))
            }
        }
    }

    @Test("exp as ggml's AVX-512 softmax computes it is within 2 ulp of exp", arguments: [-100.0, -87.0, -20.0, -1.0, -1e-3, 0.0, 0.5, 3.0, 40.0, 88.0] as [Float])
    func expScalefAccuracy(x: Float) {
        let got = VectorOps.expScalef(x)
        let want = Float(Foundation.exp(Double(x)))
        #expect(abs(got - want) <= 2 * want.ulp || (want < Float.leastNormalMagnitude && abs(got - want) <= Float.leastNonzeroMagnitude * 2))
    }

    @Test("attention softmax: SIMD equals scalar bit for bit at every chunk offset, sums to 1")
    func softmaxCellsTwin() {
        var rng = SplitMix64(seed: 23)
        for n in [1, 3, 8, 13, 16, 17, 64, 300] {
            for lead in [0, 1, 7, 15] {
                // Scores past the careful range (|x - max| > 87) underflow to 0 on both paths.
                var x = (0..<n).map { _ in Float.random(in: -30...30, using: &rng) }
                if n > 2 { x[1] = x[0] - 120 }
                var simd = x, scalar = x
                VectorOps.softmaxCells(&simd, count: n, lead: lead)
                VectorOps.softmaxCellsScalar(&scalar, count: n, lead: lead)
                #expect(simd == scalar, "n \(n) lead \(lead)")
                #expect(abs(simd.reduce(0, +) - 1) < 1e-5)
                let m = x.max()!
                let sum = x.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) }
                for i in 0..<n { #expect(abs(Double(simd[i]) - Foundation.exp(Double(x[i] - m)) / sum) <= 1e-6) }
            }
        }
    }
}
