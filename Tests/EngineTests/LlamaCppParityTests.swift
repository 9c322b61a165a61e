import Engine
import Foundation
import Testing

/// Verity against llama.cpp on SmolLM2-135M-Instruct, through the fixture that
/// scripts/fidelity.py wrote with llama-cpp-python (its version is in the fixture).
@Suite("Parity with llama.cpp on SmolLM2-135M-Instruct", .enabled(if: TestModels.hasSmolLM2, "run scripts/fetch-models first"))
struct LlamaCppParityTests {
    struct Fixture: Decodable {
        struct Prompt: Decodable {
            let text: String
            let tokens: [Int32]
            let greedy: [Int32]
            let margins: [Double]
        }
        struct Sequence: Decodable {
            let tokens: [Int32]
            let top_ids: [[Int32]]
            let top_logprobs: [[Double]]
        }
        struct Yardstick: Decodable { let mean_kl: Double; let top1: Double }
        let llama_cpp_python: String
        let near_tie: Double
        let flash_attention_yardstick: Yardstick
        let prompts: [Prompt]
        let sequences: [Sequence]
    }

    static let fixture: Fixture? = try? JSONDecoder().decode(
        Fixture.self, from: Data(contentsOf: TestModels.fixture("smollm2-llamacpp.json")))
    static let model: LoadedModel? = try? LoadedModel(path: TestModels.smolLM2)

    @Test("teacher-forced distributions: no farther from llama.cpp than its own flash-attention switch")
    func teacherForced() throws {
        let fixture = try #require(Self.fixture)
        let model = try #require(Self.model)
        let longest = fixture.sequences.map(\.tokens.count).max() ?? 1
        let generator = try Generator(model: model, capacity: longest, threads: 2)
        var klSum = 0.0, agree = 0, positions = 0
        for sequence in fixture.sequences {
            let logits = try generator.logits(for: sequence.tokens)
            let vocab = logits.count / sequence.tokens.count
            for t in 0..<sequence.tokens.count {
                let row = logits[(t * vocab)..<((t + 1) * vocab)]
                let m = Double(row.max()!)
                let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
                // KL(llama.cpp || Verity) over llama.cpp's top-k tokens (they hold nearly all the mass).
                for (id, lp) in zip(sequence.top_ids[t], sequence.top_logprobs[t]) {
                    let lq = Double(row[row.startIndex + Int(id)]) - lse
                    klSum += exp(lp) * (lp - lq)
                }
                var best = row.startIndex
                for i in row.indices where row[i] > row[best] { best = i }
                if Int32(best - row.startIndex) == sequence.top_ids[t][0] { agree += 1 }
                positions += 1
            }
        }
        let meanKL = klSum / Double(positions)
        let top1 = Double(agree) / Double(positions)
        let yard = fixture.flash_attention_yardstick
        print("parity over \(positions) positions: mean KL \(meanKL) (llama.cpp FA on/off: \(yard.mean_kl)), top-1 \(top1) (FA: \(yard.top1)); llama-cpp-python \(fixture.llama_cpp_python)")
        #expect(positions >= 2000 + 12)
        #expect(meanKL <= yard.mean_kl)
        #expect(top1 >= yard.top1)
    }

    @Test("greedy text equals llama.cpp's up to the first near-tie", arguments: 0..<12)
    func greedy(index: Int) throws {
        let fixture = try #require(Self.fixture)
        let model = try #require(Self.model)
        let prompt = fixture.prompts[index]
        let tokens = model.rawTokens(prompt.text)
        #expect(tokens == prompt.tokens, "tokenization of the rendered chat prompt differs from llama.cpp's")
        let generator = try Generator(model: model, capacity: tokens.count + 65, threads: 2)
        var parameters = GenerationParameters()
        parameters.maxTokens = prompt.greedy.count
        parameters.sampling = .greedy
        let result = try generator.generate(prompt: tokens, parameters: parameters)
        var match = 0
        while match < min(result.completionTokens.count, prompt.greedy.count),
              result.completionTokens[match] == prompt.greedy[match] { match += 1 }
        let firstTie = prompt.margins.firstIndex { $0 < fixture.near_tie }
        let ties = prompt.margins.indices.filter { prompt.margins[$0] < fixture.near_tie }
        print("prompt \(index): \(match)/\(prompt.greedy.count) tokens match llama.cpp; near-ties at \(ties)")
        if match < prompt.greedy.count {
            let tie = try #require(firstTie, "diverged at \(match) with no near-tie before it")
            #expect(match >= tie, "diverged at \(match), before the first near-tie at \(tie)")
        } else {
            #expect(result.completionTokens.count == prompt.greedy.count)
        }
    }
}
