import ModelFormats
import Models
import Testing

@Suite("batched forward passes over several sequences")
struct BatchedForwardTests {
    static let prompts: [[Int32]] = [[3, 17, 5, 42, 0, 9], [9, 31], [12, 7, 25, 1, 4, 4, 8, 30, 2], [6]]

    /// Logits of every token of each prompt, evaluated alone, one token at a time.
    func alone(_ model: any LanguageModel, _ prompt: [Int32]) throws -> [[Float]] {
        let ctx = try model.makeContext(capacity: 32, threads: 1)
        return try prompt.map { Array(try model.forward([$0], context: ctx, logits: .last)) }
    }

    @Test("each sequence's logits are bit-identical to evaluating it alone", arguments: [1, 2])
    func bitIdentical(threads: Int) throws {
        let model = try ModelRegistry.load(try GGUFFile(bytes: TinyLlama().gguf()))
        let expected = try Self.prompts.map { try alone(model, $0) }
        let workspace = try model.makeWorkspace(batch: 16, maxPositions: 32, threads: threads)
        let sequences = try Self.prompts.map { _ in try model.makeSequence(capacity: 32) }
        // Mixed steps: prompts enter in chunks of different sizes while others decode one token.
        var fed = Array(repeating: 0, count: Self.prompts.count)
        var step = 0
        while fed.enumerated().contains(where: { $0.element < Self.prompts[$0.offset].count }) {
            var entries: [BatchEntry] = []
            var owners: [Int] = []
            for (i, prompt) in Self.prompts.enumerated() where fed[i] < prompt.count {
                let chunk = min(prompt.count - fed[i], 1 + (i + step) % 3)
                entries.append(BatchEntry(sequence: sequences[i], tokens: prompt[fed[i]..<(fed[i] + chunk)], wantsLogits: true))
                owners.append(i)
                fed[i] += chunk
            }
            let logits = Array(try model.forward(batch: entries, workspace: workspace))
            #expect(logits.count == entries.count * model.vocabularySize)
            for (row, i) in owners.enumerated() {
                let got = Array(logits[(row * model.vocabularySize)..<((row + 1) * model.vocabularySize)])
                #expect(got == expected[i][fed[i] - 1], "sequence \(i) at position \(fed[i] - 1) differs")
            }
            step += 1
        }
        for (i, sequence) in sequences.enumerated() { #expect(sequence.count == Self.prompts[i].count) }
    }

    @Test("bad batches are refused without touching the caches")
    func refusals() throws {
        let model = try ModelRegistry.load(try GGUFFile(bytes: TinyLlama().gguf()))
        let workspace = try model.makeWorkspace(batch: 4, maxPositions: 8, threads: 1)
        let a = try model.makeSequence(capacity: 8)
        let small = try model.makeSequence(capacity: 2)
        let huge = try model.makeSequence(capacity: 16)
        func code(_ entries: [BatchEntry]) -> ModelError.Code? {
            do { _ = try model.forward(batch: entries, workspace: workspace); return nil } catch { return error.code }
        }
        #expect(code([BatchEntry(sequence: a, tokens: [1, 2, 3, 4, 5], wantsLogits: true)]) == .invalidHyperparameter)
        #expect(code([BatchEntry(sequence: a, tokens: [1], wantsLogits: true), BatchEntry(sequence: a, tokens: [2], wantsLogits: true)]) == .invalidHyperparameter)
        #expect(code([BatchEntry(sequence: small, tokens: [1, 2, 3], wantsLogits: true)]) == .contextFull)
        #expect(code([BatchEntry(sequence: huge, tokens: [1], wantsLogits: true)]) == .invalidHyperparameter)
        #expect(code([BatchEntry(sequence: a, tokens: [-1], wantsLogits: true)]) == .invalidToken)
        #expect(code([]) == .invalidToken)
        #expect(a.count == 0 && small.count == 0)
        // Entries that want no logits return no rows.
        let none = try model.forward(batch: [BatchEntry(sequence: a, tokens: [1, 2], wantsLogits: false)], workspace: workspace)
        #expect(none.isEmpty && a.count == 2)
    }
}
