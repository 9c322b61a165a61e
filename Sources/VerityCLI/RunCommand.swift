import ArgumentParser
import ChatTemplates
import Engine
import Foundation

/// `verity run`: one completion, streamed to stdout.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Complete one prompt and stream the text to stdout (timings go to stderr).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions

    @Option(name: .shortAndLong, help: "The prompt (a user message, unless --raw).") var prompt: String
    @Option(help: "System message (prompt instructions).") var system: String?
    @Flag(help: "Feed the prompt as plain text, without the chat template.") var raw = false
    @Option(name: .customLong("max-tokens"), help: "Maximum tokens to generate.") var maxTokens: Int = 256
    @Option(help: "Stop when this string appears (repeatable).") var stop: [String] = []
    @Flag(help: "Print one JSON object (token ids, text, finish reason, timings) instead of streaming.") var json = false

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0") }
        if raw && system != nil { throw ValidationError("--system needs the chat template; drop --raw") }
    }

    func run() async throws {
        let model = try await modelOptions.load()
        let promptTokens: [Int32]
        if raw {
            promptTokens = model.rawTokens(prompt, parseSpecial: true)
        } else {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            promptTokens = try model.chatTokens(messages)
        }
        let capacity = modelOptions.capacity(for: model, promptTokens: promptTokens.count, maxTokens: maxTokens)
        if promptTokens.count >= capacity {
            throw CLIError("the prompt has \(promptTokens.count) tokens but the context holds \(capacity) (model trained for \(model.network.trainedContextLength))")
        }
        let generator = try await modelOptions.generator(for: model, capacity: capacity)
        Diagnostics.print(String(format: "loaded %@ (%@, %d threads) in %.2f s", model.name, model.network.architecture,
                                 modelOptions.threadCount, model.loadSeconds))
        var parameters = GenerationParameters()
        parameters.maxTokens = maxTokens
        parameters.stop = stop
        parameters.sampling = sampling.parameters
        let out = FileHandle.standardOutput
        let result = try generator.generate(prompt: promptTokens, parameters: parameters) { event in
            if !json, !event.text.isEmpty { out.write(Data(event.text.utf8)) }
            return true
        }
        if json {
            let object: [String: Any] = [
                "prompt_tokens": result.promptTokens.map(Int.init),
                "completion_tokens": result.completionTokens.map(Int.init),
                "text": result.text,
                "finish_reason": result.finishReason.rawValue,
                "timings": [
                    "load_seconds": model.loadSeconds,
                    "prompt_seconds": result.promptSeconds,
                    "generation_seconds": result.generationSeconds,
                    "prompt_tokens_per_second": result.promptTokensPerSecond,
                    "generation_tokens_per_second": result.generationTokensPerSecond,
                ],
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            out.write(data + Data("\n".utf8))
        } else if !result.text.hasSuffix("\n") {
            out.write(Data("\n".utf8))
        }
        Diagnostics.print(String(format: "prompt: %d tokens, %.1f t/s; generated: %d tokens, %.1f t/s; finish: %@",
                                 result.promptTokens.count, result.promptTokensPerSecond, result.completionTokens.count,
                                 result.generationTokensPerSecond, result.finishReason.rawValue))
    }
}
