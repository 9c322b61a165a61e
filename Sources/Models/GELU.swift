import Foundation
import Kernels

/// GELU (tanh approximation) as ggml computes it on CPU: through a table indexed by the input's
/// half-precision bits, holding half-precision results; inputs ≤ -10 give 0 and ≥ 10 pass
/// through. The table's entries are ggml_gelu_f32 with the one FMA GCC forms in it
/// (1 + 0.044715·x·x), so Gemma's activations are bit-identical to llama.cpp's.
enum GELU {
    static let table: [UInt16] = (0...UInt16.max).map { h in
        let x = Kernels.float(fp16: h)
        let inner = Float(1).addingProduct(0.044715 * x, x)
        let y = 0.5 * x * (1 + tanhf(0.79788456080286535587989211986876 * x * inner))
        return Kernels.fp16(y)
    }

    /// gate[i] = gelu(gate[i]) * up[i]
    static func mul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        table.withUnsafeBufferPointer { t in
            for i in 0..<n {
                let x = gate[i]
                if x <= -10 {
                    gate[i] = 0
                } else if x >= 10 {
                    gate[i] = x * up[i]
                } else {
                    gate[i] = Kernels.float(fp16: t[Int(Kernels.fp16(x))]) * up[i]
                }
            }
        }
    }
}
