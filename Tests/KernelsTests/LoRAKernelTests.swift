import Foundation
import Kernels
import ModelFormats
import Testing
import TestSupport

/// An adapter's A and B in one weight type, with the exact float values they hold (for the reference).
final class TestLoRA: @unchecked Sendable {
    let rank: Int, inFeatures: Int, outFeatures: Int, type: GGMLType, scale: Float
    let a: [Float], b: [Float] // rank × in, out × rank, as the kernel reads them
    let aBytes: UnsafeMutableRawPointer, bBytes: UnsafeMutableRawPointer
    let bTransposed: UnsafeMutableRawPointer // rank × out: B's elements, byte for byte, transposed

    init(type: GGMLType, rank: Int, inFeatures: Int, outFeatures: Int, scale: Float, rng: inout SplitMix64) {
        self.type = type
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.scale = scale
        func make(_ n: Int, _ range: ClosedRange<Float>) -> ([Float], UnsafeMutableRawPointer) {
            let size = type == .f32 ? 4 : 2
            let p = UnsafeMutableRawPointer.allocate(byteCount: n * size, alignment: 64)
            var values = [Float](repeating: 0, count: n)
            for i in 0..<n {
                let f = Float.random(in: range, using: &rng)
                switch type {
                case .f16:
                    let h = Kernels.fp16(f)
                    p.storeBytes(of: h, toByteOffset: 2 * i, as: UInt16.self)
                    values[i] = Kernels.float(fp16: h)
                case .bf16:
                    let h = UInt16(f.bitPattern >> 16) // truncation: any bf16 value will do
                    p.storeBytes(of: h, toByteOffset: 2 * i, as: UInt16.self)
                    values[i] = Float(bitPattern: UInt32(h) << 16)
                default:
                    p.storeBytes(of: f, toByteOffset: 4 * i, as: Float.self)
                    values[i] = f
                }
            }
            return (values, p)
        }
        (a, aBytes) = make(rank * inFeatures, -0.5...0.5)
        (b, bBytes) = make(outFeatures * rank, -0.5...0.5)
        let size = type == .f32 ? 4 : 2
        bTransposed = .allocate(byteCount: outFeatures * rank * size, alignment: 64)
        for o in 0..<outFeatures {
            for j in 0..<rank {
                bTransposed.advanced(by: (j * outFeatures + o) * size)
                    .copyMemory(from: bBytes.advanced(by: (o * rank + j) * size), byteCount: size)
            }
        }
    }

    deinit {
        aBytes.deallocate()
        bBytes.deallocate()
        bTransposed.deallocate()
    }

    var weights: LoRAWeights { weights(.outByRank) }

    func weights(_ layout: LoRAWeights.BLayout) -> LoRAWeights {
        // swiftlint:disable:next force_try
        try! LoRAWeights(a: aBytes, b: layout == .outByRank ? bBytes : bTransposed, bLayout: layout, type: type, rank: rank,
                         inFeatures: inFeatures, outFeatures: outFeatures, scale: scale)
    }

    /// out + (B·(A·x))·scale in double, and the magnitude an error is measured against.
    func reference(x: ArraySlice<Float>, out: ArraySlice<Float>) -> [(value: Double, magnitude: Double)] {
        let x = Array(x), out = Array(out)
        var u = [Double](repeating: 0, count: rank), um = u
        for j in 0..<rank {
            for i in 0..<inFeatures {
                let p = Double(a[j * inFeatures + i]) * Double(x[i])
                u[j] += p
                um[j] += abs(p)
            }
        }
        return (0..<outFeatures).map { o in
            var d = 0.0, m = 0.0
            for j in 0..<rank {
                d += Double(b[o * rank + j]) * u[j]
                m += abs(Double(b[o * rank + j])) * um[j]
            }
            return (Double(out[o]) + d * Double(scale), abs(Double(out[o])) + m * abs(Double(scale)))
        }
    }
}

/// One call's inputs: tokens' x and base outputs (row strides ldX / ldOut, padded past the widths).
struct LoRACase {
    let inFeatures: Int, outFeatures: Int, ldX: Int, ldOut: Int
    var x: [Float], out: [Float]
    var idx: [Int32]

    init(tokens: Int, inFeatures: Int, outFeatures: Int, idx: [Int32], rng: inout SplitMix64) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        ldX = inFeatures + 3
        ldOut = outFeatures + 5
        x = (0..<(tokens * ldX)).map { _ in Float.random(in: -3...3, using: &rng) }
        out = (0..<(tokens * ldOut)).map { _ in Float.random(in: -1...1, using: &rng) }
        self.idx = idx
    }

    var tokens: Int { idx.count }

    /// The outputs after the call.
    func run(_ adapters: [LoRAWeights?], pool: ThreadPool? = nil, variant: Kernels.DotVariant? = nil) throws -> [Float] {
        var result = out
        let maxRank = adapters.compactMap { $0?.rank }.max() ?? 1
        let scratch = LoRAScratch(tokens: tokens, maxRank: maxRank)
        try x.withUnsafeBufferPointer { xp in
            try result.withUnsafeMutableBufferPointer { op in
                if let variant {
                    try Kernels.loraApply(x: xp.baseAddress!, ldX: ldX, into: op.baseAddress!, ldOut: ldOut, tokens: tokens,
                                          adapterOfToken: idx, adapters: adapters, scratch: scratch, pool: pool, variant: variant)
                } else {
                    try Kernels.loraApply(x: xp.baseAddress!, ldX: ldX, into: op.baseAddress!, ldOut: ldOut, tokens: tokens,
                                          adapterOfToken: idx, adapters: adapters, scratch: scratch, pool: pool)
                }
            }
        }
        return result
    }

    func xRow(_ t: Int) -> ArraySlice<Float> { x[(t * ldX)..<(t * ldX + inFeatures)] }
    func outRow(_ t: Int, _ values: [Float]) -> ArraySlice<Float> { values[(t * ldOut)..<(t * ldOut + ldOut)] }
}

func bits(_ v: some Collection<Float>) -> [UInt32] { v.map(\.bitPattern) }

/// "" when a and b hold the same bits, else where they first differ (short enough for a test log).
func firstDifference(_ a: some Collection<Float>, _ b: some Collection<Float>) -> String {
    guard a.count == b.count else { return "\(a.count) vs \(b.count) values" }
    let diffs = zip(a, b).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
    guard let first = diffs.first else { return "" }
    return "\(diffs.count) of \(a.count) differ; first at \(first.offset): \(first.element.0) vs \(first.element.1)"
}

@Suite("Batched LoRA shrink/expand kernel")
struct LoRAKernelTests {
    /// (in, out, rank): widths that are and are not multiples of 8 / 16, ranks below, at and above
    /// a vector, not multiples of 4 or 8, and one past the AVX2 expand's 128-rank chunk.
    static let shapes: [(Int, Int, Int)] = [
        (64, 48, 8), (100, 37, 5), (576, 576, 16), (33, 129, 12), (17, 7, 1), (256, 96, 64), (40, 24, 130), (1, 1, 3),
    ]
    static let types: [GGMLType] = [.f32, .f16, .bf16]

    /// Adapters of every shape for one type, plus a token map mixing them with -1 and a nil slot.
    static func setup(_ type: GGMLType, _ shape: (Int, Int, Int), tokens: Int = 11, seed: UInt64)
        -> (LoRACase, [TestLoRA], [LoRAWeights?]) {
        var rng = SplitMix64(seed: seed)
        let (inF, outF, rank) = shape
        let adapters = [
            TestLoRA(type: type, rank: rank, inFeatures: inF, outFeatures: outF, scale: 2, rng: &rng),
            TestLoRA(type: type, rank: max(1, rank / 2 + 3), inFeatures: inF, outFeatures: outF, scale: 0.5, rng: &rng),
            TestLoRA(type: type, rank: rank + 1, inFeatures: inF, outFeatures: outF, scale: -1.25, rng: &rng),
        ]
        // Slot 2 is nil (an adapter that does not target this projection); slot 3 is adapters[2].
        let slots: [LoRAWeights?] = [adapters[0].weights, adapters[1].weights, nil, adapters[2].weights]
        let idx = (0..<tokens).map { t -> Int32 in [0, -1, 3, 0, 1, 2, 3, 3, -1, 0, 1][t % 11] }
        return (LoRACase(tokens: tokens, inFeatures: inF, outFeatures: outF, idx: idx, rng: &rng), adapters, slots)
    }

    static func adapter(_ slot: Int32, _ adapters: [TestLoRA]) -> TestLoRA? {
        switch slot {
        case 0: adapters[0]
        case 1: adapters[1]
        case 3: adapters[2]
        default: nil
        }
    }

    @Test("matches a double-precision reference; tokens without an adapter are untouched",
          arguments: types, [nil, Kernels.DotVariant.scalar])
    func reference(type: GGMLType, variant: Kernels.DotVariant?) throws {
        for (s, shape) in Self.shapes.enumerated() {
            let (c, adapters, slots) = Self.setup(type, shape, seed: 100 + UInt64(s))
            defer { withExtendedLifetime(adapters) {} } // slots point into their memory
            let pool = ThreadPool(threads: 2)
            let got = try c.run(slots, pool: pool, variant: variant)
            for t in 0..<c.tokens {
                let row = c.outRow(t, got)
                guard let ad = Self.adapter(c.idx[t], adapters) else {
                    #expect(firstDifference(row, c.outRow(t, c.out)) == "", "token \(t) has no adapter: its row must not change")
                    continue
                }
                let ref = ad.reference(x: c.xRow(t), out: c.outRow(t, c.out))
                for o in 0..<c.outFeatures {
                    let err = abs(Double(row[row.startIndex + o]) - ref[o].value)
                    #expect(err <= 1e-5 * max(1, ref[o].magnitude), "\(type) \(shape) token \(t) out \(o): \(row[row.startIndex + o]) vs \(ref[o].value)")
                }
                // The padding past outFeatures in the row stride is never written.
                #expect(firstDifference(row.dropFirst(c.outFeatures), c.outRow(t, c.out).dropFirst(c.outFeatures)) == "")
            }
        }
    }

    @Test("AVX2 equals the scalar twin bit for bit", arguments: types)
    func avx2Twin(type: GGMLType) throws {
        guard Kernels.DotVariant.avx2.isAvailable else { return }
        for (s, shape) in Self.shapes.enumerated() {
            for tokens in [1, 5, 11, 40] {
                let (c, adapters, slots) = Self.setup(type, shape, tokens: tokens, seed: 200 + UInt64(s))
                defer { withExtendedLifetime(adapters) {} }
                let scalar = try c.run(slots, variant: .scalar)
                let avx2 = try c.run(slots, pool: ThreadPool(threads: 2), variant: .avx2)
                let dispatched = try c.run(slots)
                #expect(firstDifference(avx2, scalar) == "", "\(type) \(shape) \(tokens) tokens")
                #expect(firstDifference(dispatched, scalar) == "", "\(type) \(shape) \(tokens) tokens (dispatched, \(InstructionSet.active))")
            }
        }
    }

    @Test("B given transposed (rank × out) gives the same bits as PEFT's layout",
          arguments: types, [nil, Kernels.DotVariant.scalar, .avx2])
    func transposedB(type: GGMLType, variant: Kernels.DotVariant?) throws {
        if let variant, !variant.isAvailable { return }
        for (s, shape) in Self.shapes.enumerated() {
            for tokens in [1, 11, 40] {
                let (c, adapters, slots) = Self.setup(type, shape, tokens: tokens, seed: 400 + UInt64(s))
                defer { withExtendedLifetime(adapters) {} }
                let transposed: [LoRAWeights?] = [adapters[0].weights(.rankByOut), adapters[1].weights(.rankByOut), nil,
                                                  adapters[2].weights(.rankByOut)]
                let peft = try c.run(slots, pool: ThreadPool(threads: 2), variant: variant)
                // Mixed layouts in one call too.
                let mixed: [LoRAWeights?] = [slots[0], transposed[1], nil, transposed[3]]
                #expect(firstDifference(try c.run(transposed, pool: ThreadPool(threads: 2), variant: variant), peft) == "", "\(type) \(shape) \(tokens) tokens")
                #expect(firstDifference(try c.run(mixed, variant: variant), peft) == "", "\(type) \(shape) \(tokens) tokens, mixed layouts")
            }
        }
    }

    @Test("a token's result does not depend on its batch, position or the thread count",
          arguments: types, [nil, Kernels.DotVariant.scalar, .avx2])
    func batchInvariance(type: GGMLType, variant: Kernels.DotVariant?) throws {
        if let variant, !variant.isAvailable { return }
        for (s, shape) in Self.shapes.enumerated() {
            // 70 tokens: several 16-token chunks per adapter, and enough work to use the pool.
            let (c, adapters, slots) = Self.setup(type, shape, tokens: 70, seed: 300 + UInt64(s))
            defer { withExtendedLifetime(adapters) {} }
            let one = ThreadPool(threads: 1), two = ThreadPool(threads: 2), three = ThreadPool(threads: 3)
            let batched = try c.run(slots, pool: two, variant: variant)
            #expect(firstDifference(try c.run(slots, pool: one, variant: variant), batched) == "", "\(type) \(shape): 1 vs 2 threads")
            #expect(firstDifference(try c.run(slots, pool: three, variant: variant), batched) == "", "\(type) \(shape): 3 vs 2 threads")
            #expect(firstDifference(try c.run(slots, pool: nil, variant: variant), batched) == "", "\(type) \(shape): no pool vs 2 threads")
            for t in [0, 2, 4, 37, 69] where c.idx[t] >= 0 {
                // Alone.
                var r = SplitMix64(seed: 0)
                var alone = LoRACase(tokens: 0, inFeatures: c.inFeatures, outFeatures: c.outFeatures, idx: [], rng: &r)
                alone.x = Array(c.x[(t * c.ldX)..<((t + 1) * c.ldX)])
                alone.out = Array(c.out[(t * c.ldOut)..<((t + 1) * c.ldOut)])
                alone.idx = [c.idx[t]]
                #expect(firstDifference(try alone.run(slots, pool: two, variant: variant), c.outRow(t, batched)) == "", "\(type) \(shape): token \(t) alone")
                // Moved to the end of a batch reversed (other neighbours, other position, other group order).
                var moved = c
                let order = Array((0..<c.tokens).filter { $0 != t }.reversed()) + [t]
                moved.idx = order.map { c.idx[$0] }
                moved.x = order.flatMap { c.x[($0 * c.ldX)..<(($0 + 1) * c.ldX)] }
                moved.out = order.flatMap { c.out[($0 * c.ldOut)..<(($0 + 1) * c.ldOut)] }
                let got = try moved.run(slots, pool: one, variant: variant)
                #expect(firstDifference(moved.outRow(c.tokens - 1, got), c.outRow(t, batched)) == "", "\(type) \(shape): token \(t) moved")
            }
        }
    }

    @Test("the delta is computed in float, then scaled and added: out + d·scale")
    func operationOrder() throws {
        // rank 1, in 1: u = a·x and d = b·u, each rounded; then out + d·scale with two roundings.
        // With these values, a fused out + d·scale, or the scale applied to u or to B first, each
        // gives other bits.
        let (a, b, x, base, scale): (Float, Float, Float, Float, Float) = (-1.914, 1.35, 0.226, 0.569, -1.256)
        var rng = SplitMix64(seed: 1)
        let ad = TestLoRA(type: .f32, rank: 1, inFeatures: 1, outFeatures: 1, scale: scale, rng: &rng)
        defer { withExtendedLifetime(ad) {} }
        ad.aBytes.storeBytes(of: a, as: Float.self)
        ad.bBytes.storeBytes(of: b, as: Float.self)
        var c = LoRACase(tokens: 1, inFeatures: 1, outFeatures: 1, idx: [0], rng: &rng)
        c.x[0] = x
        c.out[0] = base
        let u = a * x
        let d = b * u
        let want = base + d * scale
        #expect(want != d.addingProduct(scale, base) && want != base + b * (u * scale) && want != base + (b * scale) * u)
        #expect(try c.run([ad.weights])[0] == want)
        #expect(try c.run([ad.weights], variant: .scalar)[0] == want)
    }

    @Test("bad arguments throw and write nothing")
    func refusesBadArguments() throws {
        var rng = SplitMix64(seed: 2)
        let a = TestLoRA(type: .f16, rank: 4, inFeatures: 16, outFeatures: 8, scale: 1, rng: &rng)
        let wide = TestLoRA(type: .f16, rank: 4, inFeatures: 16, outFeatures: 9, scale: 1, rng: &rng)
        defer { withExtendedLifetime((a, wide)) {} }
        let c = LoRACase(tokens: 2, inFeatures: 16, outFeatures: 8, idx: [0, 1], rng: &rng)
        #expect(throws: KernelError.self) { try c.run([a.weights]) }                 // index 1 of 1 adapter
        #expect(throws: KernelError.self) { try c.run([a.weights, wide.weights]) }   // differing widths
        var bad = c
        bad.idx = [0, -2]
        #expect(throws: KernelError.self) { try bad.run([a.weights, a.weights]) }
        let scratch = LoRAScratch(tokens: 2, maxRank: 2) // rank 4 does not fit
        var out = c.out
        #expect(throws: KernelError.self) {
            try c.x.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBufferPointer { op in
                    try Kernels.loraApply(x: xp.baseAddress!, ldX: c.ldX, into: op.baseAddress!, ldOut: c.ldOut, tokens: 2,
                                          adapterOfToken: [0, 0], adapters: [a.weights], scratch: scratch, pool: nil)
                }
            }
        }
        #expect(firstDifference(out, c.out) == "")
        #expect(throws: KernelError.self) {
            try LoRAWeights(a: a.aBytes, b: a.bBytes, type: .q8_0, rank: 4, inFeatures: 16, outFeatures: 8, scale: 1)
        }
        // No adapter in the batch (or none targeting this projection): nothing changes.
        var none = c
        none.idx = [-1, 0]
        #expect(firstDifference(try none.run([nil]), c.out) == "")
    }

    @Test("timing next to the base matmul (printed, not asserted)", arguments: [(576, 576), (2048, 8192)])
    func timing(shape: (Int, Int)) throws {
        let (inF, outF) = shape
        let tokens = 8, rank = 16
        var rng = SplitMix64(seed: 9)
        let adapters = (0..<4).map { _ in TestLoRA(type: .f16, rank: rank, inFeatures: inF, outFeatures: outF, scale: 2, rng: &rng) }
        let slots: [LoRAWeights?] = adapters.map(\.weights)
        defer { withExtendedLifetime(adapters) {} }
        let idx: [Int32] = (0..<tokens).map { Int32($0 % 4) }
        let x = (0..<(tokens * inF)).map { _ in Float.random(in: -1...1, using: &rng) }
        var out = [Float](repeating: 0, count: tokens * outF)
        let pool = ThreadPool(threads: ThreadPool.defaultThreadCount)
        let scratch = LoRAScratch(tokens: tokens, maxRank: rank)
        // Best of 5 rounds of about 2 ms each (one call per round for a slow one: the scalar tier).
        func time(_ body: () throws -> Void) rethrows -> Double {
            let warm = DispatchTime.now().uptimeNanoseconds
            try body()
            let once = Double(DispatchTime.now().uptimeNanoseconds - warm) / 1000
            let reps = max(1, min(50, Int(2000 / max(once, 1))))
            var best = once
            for _ in 0..<(once > 20_000 ? 1 : 5) {
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<reps { try body() }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / Double(reps) / 1000)
            }
            return best
        }
        func lora(_ pool: ThreadPool?) throws -> Double {
            try x.withUnsafeBufferPointer { xp in
                try out.withUnsafeMutableBufferPointer { op in
                    try time {
                        try Kernels.loraApply(x: xp.baseAddress!, ldX: inF, into: op.baseAddress!, ldOut: outF, tokens: tokens,
                                              adapterOfToken: idx, adapters: slots, scratch: scratch, pool: pool)
                    }
                }
            }
        }
        let (threaded, single) = (try lora(pool), try lora(nil))
        // The base product it rides on: the same shape as Q4_0 (a typical GGUF) and F16.
        var base: [String] = []
        for type in [GGMLType.q4_0, .f16] {
            let w = randomBlocks(type, blocks: outF * inF / type.blockSize, rng: &rng)
            let us = try w.withUnsafeBytes { wp in
                let m = try QuantizedMatrix(type: type, bytes: wp, rows: outF, columns: inF)
                let act = ActivationBuffer(type: m.activationType, columns: inF, capacity: tokens)
                x.withUnsafeBufferPointer { act.load($0.baseAddress!, tokens: tokens, stride: inF) }
                return out.withUnsafeMutableBufferPointer { op in
                    time { Kernels.matmul(m, act, tokens: tokens, into: op.baseAddress!, ldOut: outF, pool: pool) }
                }
            }
            base.append("\(type.name) matmul \(String(format: "%.1f", us)) µs")
        }
        print("LoRA timing in=\(inF) out=\(outF) rank \(rank), \(tokens) tokens over 4 F16 adapters, \(pool.size) threads, \(InstructionSet.active): LoRA \(String(format: "%.1f", threaded)) µs (1 thread: \(String(format: "%.1f", single)) µs); \(base.joined(separator: ", "))")
    }
}
