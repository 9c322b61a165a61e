import Foundation
import Kernels

/// GELU (tanh approximation) as ggml computes it on CPU: through a table indexed by the input's
/// half-precision bits, holding half-precision results; inputs ≤ -10 give 0 and ≥ 10 pass
/// through. The table's entries are ggml_gelu_f32 with the one FMA GCC forms in it
/// (1 + 0.044715·x·x), so Gemma's activations are bit-identical to llama.cpp's.
enum GELU {
    /// gelu of every half-precision input, rounded to half precision and widened back to float.
    static let table: [Float] = (0...UInt16.max).map { h in
        let x = Kernels.float(fp16: h)
        let inner = Float(1).addingProduct(0.044715 * x, x)
        let y = 0.5 * x * (1 + tanhf(0.79788456080286535587989211986876 * x * inner))
        return Kernels.float(fp16: Kernels.fp16(y))
    }

    /// gate[i] = gelu(gate[i]) * up[i]; the inputs are rounded to half precision a chunk at a time.
    static func mul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        let chunk = 1024
        table.withUnsafeBufferPointer { t in
            withUnsafeTemporaryAllocation(of: UInt16.self, capacity: chunk) { h in
                var start = 0
                while start < n {
                    let count = min(chunk, n - start)
                    let g = gate + start, u = up + start
                    VectorOps.toFP16(g, into: h.baseAddress!, count: count)
                    for i in 0..<count {
                        let x = g[i]
                        if x <= -10 {
                            g[i] = 0
                        } else if x >= 10 {
                            g[i] = x * u[i]
                        } else {
                            g[i] = t[Int(h[i])] * u[i]
                        }
                    }
                    start += count
                }
            }
        }
    }

    /// gate[i] = gelu(gate[i]) * up[i] in single precision, without the table: transformers'
    /// `gelu_pytorch_tanh`, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). Used with `.f32` attention.
    static func mulExact(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        let c: Float = 0.79788456080286535587989211986876
        for i in 0..<n {
            let x = gate[i]
            gate[i] = 0.5 * x * (1 + tanhf(c * (x + 0.044715 * x * x * x))) * up[i]
        }
    }
}
