import ArgumentParser
import ChatTemplates
import Engine
import Foundation

/// `verity chat`: an interactive terminal conversation that keeps its history (and its KV cache,
/// so each turn evaluates only the new tokens).
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model in the terminal. Type /reset to start over, /quit or Ctrl-D to leave.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(help: "System message (prompt instructions).") var system: String?
    @Option(name: .customLong("max-tokens"), help: "Maximum tokens per reply.") var maxTokens: Int = 512

    func run() async throws {
        let model = try await modelOptions.load()
        guard model.chatTemplate != nil else { throw CLIError("\(model.name) has no chat template; use `verity run --raw`") }
        let capacity = modelOptions.contextSize ?? min(model.network.trainedContextLength, 4096)
        let generator = try await modelOptions.generator(for: model, capacity: capacity)
        Diagnostics.print("\(model.name) ready (context \(capacity) tokens). /reset starts over, /quit leaves.")
        var history: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        let baseHistory = history
        var parameters = GenerationParameters()
        parameters.maxTokens = maxTokens
        parameters.sampling = sampling.parameters
        let out = FileHandle.standardOutput
        while true {
            FileHandle.standardError.write(Data("> ".utf8))
            guard let line = readLine(strippingNewline: true) else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input == "/quit" || input == "/exit" { break }
            if input == "/reset" {
                history = baseHistory
                Diagnostics.print("(conversation cleared)")
                continue
            }
            history.append(ChatMessage(role: "user", content: input))
            let tokens: [Int32]
            do { tokens = try model.chatTokens(history) } catch {
                Diagnostics.print("error: \(error.message)")
                history.removeLast()
                continue
            }
            if tokens.count + 1 >= capacity {
                Diagnostics.print("error: the conversation (\(tokens.count) tokens) no longer fits the \(capacity)-token context; /reset to start over")
                history.removeLast()
                continue
            }
            var params = parameters
            params.maxTokens = min(maxTokens, capacity - tokens.count - 1)
            do {
                let result = try generator.generate(prompt: tokens, parameters: params) { event in
                    if !event.text.isEmpty { out.write(Data(event.text.utf8)) }
                    return true
                }
                out.write(Data("\n".utf8))
                history.append(ChatMessage(role: "assistant", content: result.text))
                Diagnostics.print(String(format: "(%d tokens, %.1f t/s)", result.completionTokens.count, result.generationTokensPerSecond))
            } catch {
                Diagnostics.print("error: \(error.message)")
                history.removeLast()
            }
        }
    }
}
