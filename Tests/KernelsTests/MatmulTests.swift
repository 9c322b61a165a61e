import Foundation
import Kernels
import ModelFormats
import Testing
import TestSupport

@Suite("Matrix products and the thread pool")
struct MatmulTests {
    @Test("threaded matmul equals row-by-row dots, any thread count", arguments: [GGMLType.q4_1, .q8_0, .q4_0, .q5_0, .q5_1, .f16, .f32, .q4_K, .q6_K, .iq4_xs, .iq4_nl], [1, 2, 3])
    func threadedMatmul(type: GGMLType, threads: Int) throws {
        // 1 token (decode: 4-row tiles), 2 and 5 (2×2 tiles plus an odd token, or packed groups of 8
        // tokens with VNNI), 8, 13 and 20 (whole and partial groups); 67 rows leave edge tiles. Every
        // result must equal the single dot bit for bit: a sequence gets the same logits alone or batched.
        for tokens in [1, 2, 5, 8, 13, 20] {
            var rng = SplitMix64(seed: 42)
            let rows = 67, cols = 768  // three K-quant super-blocks
            let bytes = randomBlocks(type, blocks: rows * cols / type.blockSize, rng: &rng)
            let x = randomFloats(tokens * cols, rng: &rng)
            let pool = ThreadPool(threads: threads)
            try bytes.withUnsafeBytes { wp in
                let w = try QuantizedMatrix(type: type, bytes: wp, rows: rows, columns: cols)
                let act = ActivationBuffer(type: w.activationType, columns: cols, capacity: tokens)
                x.withUnsafeBufferPointer { act.load($0.baseAddress!, tokens: tokens, stride: cols) }
                var out = [Float](repeating: .nan, count: tokens * rows)
                out.withUnsafeMutableBufferPointer { Kernels.matmul(w, act, tokens: tokens, into: $0.baseAddress!, ldOut: rows, pool: pool) }
                for t in 0..<tokens {
                    for r in 0..<rows {
                        let expected = Kernels.dot(type, wp.baseAddress! + r * w.rowBytes, act.row(t), count: cols)
                        #expect(out[t * rows + r] == expected)
                    }
                }
            }
        }
    }

    @Test("the active instruction set is the best the CPU has unless VERITY_ISA caps it")
    func activeLevel() {
        let cap = ProcessInfo.processInfo.environment["VERITY_ISA"]
        if cap == nil { #expect(InstructionSet.active == InstructionSet.detected) }
        if cap == "scalar" { #expect(InstructionSet.active == .scalar) }
    }

    @Test("a matrix with the wrong byte count or an unsupported type is refused")
    func refusesBadMatrix() {
        let bytes = [UInt8](repeating: 0, count: 100)
        bytes.withUnsafeBytes { wp in
            #expect(throws: KernelError.self) { try QuantizedMatrix(type: .q4_1, bytes: wp, rows: 2, columns: 64) }
            #expect(throws: KernelError.self) { try QuantizedMatrix(type: .iq2_xxs, bytes: wp, rows: 1, columns: 256) }
            // K-quant rows are whole 256-element super-blocks (llama.cpp would fall back; we refuse).
            #expect(throws: KernelError.self) { try QuantizedMatrix(type: .q4_K, bytes: wp, rows: 1, columns: 128) }
        }
    }

    @Test("the pool runs every item exactly once, with more threads than cores too", arguments: [1, 2, 3, 8])
    func poolCoversItems(threads: Int) {
        let pool = ThreadPool(threads: threads)
        for count in [0, 1, 2, 7, 1000] {
            for _ in 0..<20 {
                var hits = [Int](repeating: 0, count: count)
                var seen = [Int](repeating: 0, count: pool.size)
                hits.withUnsafeMutableBufferPointer { h in
                    seen.withUnsafeMutableBufferPointer { s in
                        pool.forEach(count) { item, ith in
                            h[item] += 1
                            precondition(ith >= 0 && ith < s.count)
                        }
                        _ = s
                    }
                }
                #expect(hits.allSatisfy { $0 == 1 }, "\(count) items on \(threads) threads")
            }
        }
    }

    @Test("bulk f16 dots: SIMD equals the scalar twin bit for bit, for every length, count and valid prefix")
    func f16Rows() {
        var rng = SplitMix64(seed: 7)
        for n in [1, 7, 8, 15, 16, 17, 64, 100, 257, 600, 1031] {  // past 256: chunked conversion
            for count in [1, 3, 4, 5, 9] {
                for valid in Set([n, max(0, n - 5), n / 2]) {
                    let stride = n + 3
                    let rows = (0..<(count * stride)).map { _ in Kernels.fp16(Float.random(in: -1...1, using: &rng)) }
                    let v = (0..<n).map { _ in Kernels.fp16(Float.random(in: -1...1, using: &rng)) }
                    // One vector, and three (the query heads of one KV group), rows of output `count + 2` apart.
                    let vs = v + v.reversed() + v.map { $0 ^ 0x8000 }
                    for m in [1, 3] {
                        var out = [Float](repeating: .nan, count: m * (count + 2)), twin = out
                        rows.withUnsafeBufferPointer { r in
                            vs.withUnsafeBufferPointer { vb in
                                VectorOps.dotFP16Rows(r.baseAddress!, stride: stride, count: count, valid: valid, vb.baseAddress!,
                                                      vectorStride: n, vectorCount: m, length: n, into: &out, ldOut: count + 2)
                                VectorOps.dotFP16RowsScalar(r.baseAddress!, stride: stride, count: count, valid: valid, vb.baseAddress!,
                                                            vectorStride: n, vectorCount: m, length: n, into: &twin, ldOut: count + 2)
                            }
                        }
                        for j in 0..<m {
                            for i in 0..<count {
                                let got = out[j * (count + 2) + i]
                                #expect(got == twin[j * (count + 2) + i], "n \(n) valid \(valid) vector \(j) row \(i)")
                                var want = 0.0
                                for k in 0..<valid { want += Double(Kernels.float(fp16: rows[i * stride + k])) * Double(Kernels.float(fp16: vs[j * n + k])) }
                                #expect(abs(Double(got) - want) <= 1e-5 * Double(n), "n \(n) valid \(valid)")
                            }
                        }
                    }
                }
            }
        }
    }
}
