import Foundation
import ModelFormats

/// A tiny random-weight llama model built with GGUFWriter, plus a plain double-precision
/// reference forward pass written from the architecture's definition (not from Verity's code).
struct TinyLlama {
    var vocab = 48
    var embd = 64
    var heads = 4
    var kvHeads = 2
    var ff = 96
    var layers = 2
    var ropeBase: Float = 10_000
    var eps: Float = 1e-5
    var tiedOutput = true
    var seed: UInt64 = 1
    /// Changes the weights after they are drawn (a merged LoRA delta, say).
    var adjust: (@Sendable (inout Weights) -> Void)? = nil

    var headDim: Int { embd / heads }

    struct Weights {
        var embedding: [[Float]]            // vocab × embd
        var attnNorm: [[Float]], ffnNorm: [[Float]]
        var wq: [[[Float]]], wk: [[[Float]]], wv: [[[Float]]], wo: [[[Float]]]   // [layer][row][col]
        var gate: [[[Float]]], up: [[[Float]]], down: [[[Float]]]
        var outputNorm: [Float]
        var output: [[Float]]               // vocab × embd
    }

    func weights() -> Weights {
        var state = seed
        func rnd() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        func matrix(_ rows: Int, _ cols: Int, scale: Float) -> [[Float]] {
            (0..<rows).map { _ in (0..<cols).map { _ in rnd() * scale } }
        }
        func norm(_ n: Int) -> [Float] { (0..<n).map { _ in 1 + 0.2 * rnd() } }
        let s = 1 / Float(embd).squareRoot()
        let embedding = matrix(vocab, embd, scale: 1)
        var w = Weights(
            embedding: embedding,
            attnNorm: (0..<layers).map { _ in norm(embd) }, ffnNorm: (0..<layers).map { _ in norm(embd) },
            wq: (0..<layers).map { _ in matrix(heads * headDim, embd, scale: s) },
            wk: (0..<layers).map { _ in matrix(kvHeads * headDim, embd, scale: s) },
            wv: (0..<layers).map { _ in matrix(kvHeads * headDim, embd, scale: s) },
            wo: (0..<layers).map { _ in matrix(embd, heads * headDim, scale: s) },
            gate: (0..<layers).map { _ in matrix(ff, embd, scale: s) },
            up: (0..<layers).map { _ in matrix(ff, embd, scale: s) },
            down: (0..<layers).map { _ in matrix(embd, ff, scale: 1 / Float(ff).squareRoot()) },
            outputNorm: norm(embd),
            output: tiedOutput ? embedding : matrix(vocab, embd, scale: s))
        adjust?(&w)
        return w
    }

    static func bytes(_ rows: [[Float]]) -> [UInt8] { bytes(rows.flatMap { $0 }) }
    static func bytes(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    /// The GGUF file, with realistic llama metadata.
    func gguf(skipping skipped: Set<String> = [], architecture: String = "llama") throws -> [UInt8] {
        let w = weights()
        var writer = GGUFWriter()
        writer.set("general.architecture", .string(architecture))
        writer.set("general.name", .string("tiny-llama-test"))
        writer.set("llama.block_count", .uint32(UInt32(layers)))
        writer.set("llama.context_length", .uint32(256))
        writer.set("llama.embedding_length", .uint32(UInt32(embd)))
        writer.set("llama.feed_forward_length", .uint32(UInt32(ff)))
        writer.set("llama.attention.head_count", .uint32(UInt32(heads)))
        writer.set("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        writer.set("llama.rope.freq_base", .float32(ropeBase))
        writer.set("llama.attention.layer_norm_rms_epsilon", .float32(eps))
        func add(_ name: String, _ dims: [Int], _ data: [UInt8]) throws {
            if skipped.contains(name) { return }
            try writer.addTensor(name: name, type: .f32, dimensions: dims, data: data)
        }
        try add("token_embd.weight", [embd, vocab], Self.bytes(w.embedding))
        for l in 0..<layers {
            let p = "blk.\(l)."
            try add(p + "attn_norm.weight", [embd], Self.bytes(w.attnNorm[l]))
            try add(p + "attn_q.weight", [embd, heads * headDim], Self.bytes(w.wq[l]))
            try add(p + "attn_k.weight", [embd, kvHeads * headDim], Self.bytes(w.wk[l]))
            try add(p + "attn_v.weight", [embd, kvHeads * headDim], Self.bytes(w.wv[l]))
            try add(p + "attn_output.weight", [heads * headDim, embd], Self.bytes(w.wo[l]))
            try add(p + "ffn_norm.weight", [embd], Self.bytes(w.ffnNorm[l]))
            try add(p + "ffn_gate.weight", [embd, ff], Self.bytes(w.gate[l]))
            try add(p + "ffn_up.weight", [embd, ff], Self.bytes(w.up[l]))
            try add(p + "ffn_down.weight", [ff, embd], Self.bytes(w.down[l]))
        }
        try add("output_norm.weight", [embd], Self.bytes(w.outputNorm))
        if !tiedOutput { try add("output.weight", [embd, vocab], Self.bytes(w.output)) }
        return try writer.serialize()
    }

    /// Reference logits for every position, in double precision.
    func referenceLogits(_ tokens: [Int]) -> [[Double]] {
        let w = weights()
        let hd = headDim, group = heads / kvHeads
        func matvec(_ m: [[Float]], _ x: [Double]) -> [Double] { m.map { row in zip(row, x).reduce(0) { $0 + Double($1.0) * $1.1 } } }
        func rms(_ x: [Double], _ g: [Float]) -> [Double] {
            let s = 1 / (x.reduce(0) { $0 + $1 * $1 } / Double(x.count) + Double(eps)).squareRoot()
            return zip(x, g).map { $0 * s * Double($1) }
        }
        func rope(_ v: inout [Double], pos: Int) {
            for h in 0..<(v.count / hd) {
                for i in 0..<(hd / 2) {
                    let theta = Double(pos) * pow(Double(ropeBase), -2 * Double(i) / Double(hd))
                    let a = v[h * hd + 2 * i], b = v[h * hd + 2 * i + 1]
                    v[h * hd + 2 * i] = a * cos(theta) - b * sin(theta)
                    v[h * hd + 2 * i + 1] = a * sin(theta) + b * cos(theta)
                }
            }
        }
        var keys = [[[Double]]](repeating: [], count: layers), values = keys
        var out: [[Double]] = []
        for (pos, tok) in tokens.enumerated() {
            var x = w.embedding[tok].map(Double.init)
            for l in 0..<layers {
                let h = rms(x, w.attnNorm[l])
                var q = matvec(w.wq[l], h), k = matvec(w.wk[l], h)
                let v = matvec(w.wv[l], h)
                rope(&q, pos: pos)
                rope(&k, pos: pos)
                keys[l].append(k)
                values[l].append(v)
                var attn = [Double](repeating: 0, count: heads * hd)
                for head in 0..<heads {
                    let g = head / group
                    var scores = (0...pos).map { j in
                        (0..<hd).reduce(0.0) { $0 + q[head * hd + $1] * keys[l][j][g * hd + $1] } / Double(hd).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let sum = scores.reduce(0, +)
                    for j in 0...pos { for d in 0..<hd { attn[head * hd + d] += scores[j] / sum * values[l][j][g * hd + d] } }
                }
                x = zip(x, matvec(w.wo[l], attn)).map { $0 + $1 }
                let h2 = rms(x, w.ffnNorm[l])
                let gate = matvec(w.gate[l], h2), up = matvec(w.up[l], h2)
                let act = zip(gate, up).map { $0 / (1 + exp(-$0)) * $1 }
                x = zip(x, matvec(w.down[l], act)).map { $0 + $1 }
            }
            out.append(matvec(w.output, rms(x, w.outputNorm)))
        }
        return out
    }
}
