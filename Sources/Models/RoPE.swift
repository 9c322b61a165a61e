import Foundation

/// Rotary position embedding, "normal" mode (llama.cpp's LLAMA_ROPE_TYPE_NORM): rotates adjacent
/// pairs (x[2i], x[2i+1]) by pos·θ_i, θ_i = base^(-2i/dims) / freqFactor[i] · freqScale. The angle
/// is built by repeated multiplication, as ggml does, so results match it bit for bit in float.
struct RoPE {
    let dimensions: Int
    let base: Float
    let freqScale: Float
    let freqFactors: [Float]?

    /// Fills `cos`/`sin` (dimensions/2 each) for one position.
    func angles(position: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let thetaScale = powf(base, -2.0 / Float(dimensions))
        var theta = Float(position)
        for i in 0..<(dimensions / 2) {
            var t = theta
            if let freqFactors { t /= freqFactors[i] }
            t *= freqScale
            cos[i] = cosf(t)
            sin[i] = sinf(t)
            theta *= thetaScale
        }
    }

    /// Rotates the first `dimensions` entries of each of `heads` vectors of `headDim` floats.
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int,
               cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        for h in 0..<heads {
            let v = x + h * headDim
            for i in 0..<(dimensions / 2) {
                let x0 = v[2 * i], x1 = v[2 * i + 1]
                v[2 * i] = x0 * cos[i] - x1 * sin[i]
                v[2 * i + 1] = x0 * sin[i] + x1 * cos[i]
            }
        }
    }
}
