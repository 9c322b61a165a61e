import Foundation
import Kernels

/// Rotary position embedding. `.adjacent` (llama.cpp's NORM mode, Llama/Mistral) rotates pairs
/// (x[2i], x[2i+1]); `.halves` (NEOX mode, Qwen/Phi/Gemma) rotates (x[i], x[i + dims/2]). Pair i
/// turns by pos·θ_i·freqScale / freqFactor[i], θ_i = base^(-2i/dims). The angle is built by
/// repeated multiplication, as ggml does, so angles match it bit for bit in float.
struct RoPE: Sendable {
    enum Style: Sendable { case adjacent, halves }

    let style: Style
    let dimensions: Int
    let base: Float
    let freqScale: Float
    let freqFactors: [Float]?
    /// Multiplies cos and sin (YaRN / LongRoPE attention factor; 1 otherwise).
    var magnitude: Float = 1

    /// Fills `cos`/`sin` (dimensions/2 each) for one position.
    func angles(position: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let thetaScale = powf(base, -2.0 / Float(dimensions))
        var theta = Float(position)
        for i in 0..<(dimensions / 2) {
            var t = theta
            if let freqFactors { t /= freqFactors[i] }
            t *= freqScale
            cos[i] = cosf(t) * magnitude
            sin[i] = sinf(t) * magnitude
            theta *= thetaScale
        }
    }

    /// Rotates the first `dimensions` entries of each of `heads` vectors of `headDim` floats, with
    /// the fused multiply-adds llama.cpp's rope compiles to (ck_rope).
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int,
               cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = dimensions / 2
        let (stride, offset) = style == .adjacent ? (2, 1) : (1, half)
        VectorOps.rope(x, heads: heads, headDim: headDim, half: half, stride: stride, offset: offset, cos: cos, sin: sin)
    }
}
