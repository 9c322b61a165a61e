import ArgumentParser
import Engine
import Foundation
import Models

/// `verity bench`: prefill and decode speed, like llama-bench. Prefill evaluates N prompt tokens
/// in one pass from an empty cache; decode evaluates tokens one at a time after it (no sampling,
/// so the figure is the engine's). With `--sequences`, batched decode: S sequences advance together,
/// one token each per batched pass (what the server's continuous batching runs), reported as
/// aggregate tokens/s. Each test runs `--repetitions` times; median and spread are reported.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure prefill and decode speed (tokens/s, median of repetitions).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("prompt-tokens"), help: "Prompt sizes to prefill, comma-separated.")
    var promptTokens: String = "128,512"
    @Option(name: .customLong("gen-tokens"), help: "Tokens to decode one at a time.") var genTokens: Int = 128
    @Option(help: "Batched decode: numbers of sequences decoded together, comma-separated (e.g. 4,8,16).")
    var sequences: String?
    @Option(help: "Repetitions of each test.") var repetitions: Int = 5
    @Flag(help: "Print results as JSON.") var json = false

    struct Result: Codable {
        let test: String
        let tokens: Int
        let threads: Int
        let tokensPerSecond: [Double]
        var median: Double { tokensPerSecond.sorted()[tokensPerSecond.count / 2] }
        var spread: Double {
            let mean = tokensPerSecond.reduce(0, +) / Double(tokensPerSecond.count)
            return (tokensPerSecond.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(tokensPerSecond.count)).squareRoot()
        }
    }

    func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be ≥ 1") }
        guard genTokens >= 0 else { throw ValidationError("--gen-tokens must be ≥ 0") }
        guard parsedPromptSizes != nil else { throw ValidationError("--prompt-tokens must be positive integers, comma-separated") }
        if let sequences, Self.positiveList(sequences) == nil {
            throw ValidationError("--sequences must be positive integers, comma-separated")
        }
    }

    var parsedPromptSizes: [Int]? { Self.positiveList(promptTokens) }

    static func positiveList(_ text: String) -> [Int]? {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return values.compactMap { $0 }
    }

    func run() async throws {
        let model = try await modelOptions.load()
        let network = model.network
        let sizes = parsedPromptSizes ?? []
        let capacity = min(network.trainedContextLength, (sizes.max() ?? 1) + genTokens + 1)
        let context = try network.makeContext(capacity: capacity, threads: modelOptions.threadCount)
        var rng = SeededGenerator(seed: 42)
        func randomTokens(_ n: Int) -> [Int32] {
            (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % UInt64(network.vocabularySize)) }
        }
        Diagnostics.print("\(model.name): \(modelOptions.threadCount) threads, context \(capacity)")
        // Warm up: touch every weight page once.
        context.truncate(to: 0)
        _ = try network.forward(randomTokens(8), context: context, logits: .last)

        var results: [Result] = []
        for size in sizes where size < capacity {
            var rates: [Double] = []
            for _ in 0..<repetitions {
                let tokens = randomTokens(size)
                context.truncate(to: 0)
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try network.forward(tokens, context: context, logits: .last)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                rates.append(Double(size) / seconds)
            }
            results.append(Result(test: "pp\(size)", tokens: size, threads: modelOptions.threadCount, tokensPerSecond: rates))
            report(results.last!)
        }
        if genTokens > 0 {
            var rates: [Double] = []
            for _ in 0..<repetitions {
                context.truncate(to: 0)
                _ = try network.forward([1], context: context, logits: .last)
                let tokens = randomTokens(genTokens)
                let start = DispatchTime.now().uptimeNanoseconds
                for token in tokens { _ = try network.forward([token], context: context, logits: .last) }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                rates.append(Double(genTokens) / seconds)
            }
            results.append(Result(test: "tg\(genTokens)", tokens: genTokens, threads: modelOptions.threadCount, tokensPerSecond: rates))
            report(results.last!)
        }
        for count in sequences.flatMap(Self.positiveList) ?? [] where genTokens > 0 {
            let workspace = try network.makeWorkspace(batch: count, maxPositions: genTokens + 2, threads: modelOptions.threadCount)
            let batch = try (0..<count).map { _ in try network.makeSequence(capacity: genTokens + 2) }
            var rates: [Double] = []
            for _ in 0..<repetitions {
                for sequence in batch { sequence.truncate(to: 0) }
                _ = try network.forward(batch: batch.map { BatchEntry(sequence: $0, tokens: [1], wantsLogits: true) }, workspace: workspace)
                let steps = (0..<genTokens).map { _ in randomTokens(count) }
                let start = DispatchTime.now().uptimeNanoseconds
                for tokens in steps {
                    let entries = zip(batch, tokens).map { BatchEntry(sequence: $0, tokens: [$1], wantsLogits: true) }
                    _ = try network.forward(batch: entries, workspace: workspace)
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                rates.append(Double(genTokens * count) / seconds)
            }
            results.append(Result(test: "tg\(genTokens)x\(count)", tokens: genTokens * count, threads: modelOptions.threadCount,
                                  tokensPerSecond: rates))
            report(results.last!)
        }
        if json {
            let objects: [[String: Any]] = results.map {
                ["test": $0.test, "tokens": $0.tokens, "threads": $0.threads, "median": $0.median, "stddev": $0.spread,
                 "samples": $0.tokensPerSecond, "model": model.name, "load_seconds": model.loadSeconds]
            }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }

    private func report(_ r: Result) {
        let line = String(format: "%-8@ %3d threads  %8.1f t/s ± %.1f", r.test, r.threads, r.median, r.spread)
        if json { Diagnostics.print(line) } else { print(line) }
    }
}
