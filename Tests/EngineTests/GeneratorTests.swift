import ChatTemplates
import Engine
import Foundation
import Testing
import TestSupport

@Suite("Generation on SmolLM2", .enabled(if: TestPaths.hasSmolLM2, "run scripts/fetch-models first"))
struct GeneratorTests {
    static let model: LoadedModel? = try? LoadedModel(path: TestPaths.smolLM2)

    func generate(_ prompt: String, _ configure: (inout GenerationParameters) -> Void = { _ in })
        throws -> (GenerationResult, [String]) {
        let model = try #require(Self.model)
        let tokens = try model.chatTokens([ChatMessage(role: "user", content: prompt)])
        let generator = try Generator(model: model, capacity: tokens.count + 128, threads: 2)
        var parameters = GenerationParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 48
        configure(&parameters)
        var pieces: [String] = []
        let result = try generator.generate(prompt: tokens, parameters: parameters) { event in
            if !event.text.isEmpty { pieces.append(event.text) }
            return true
        }
        return (result, pieces)
    }

    @Test("streamed pieces add up to the final text, and the chat answer is sensible")
    func streamedEqualsFinal() throws {
        let (result, pieces) = try generate("Write a Python function that reverses a string.")
        #expect(pieces.joined() == result.text)
        #expect(result.text.contains("def "))
    }

    @Test("max tokens ends with finish reason length")
    func maxTokens() throws {
        let (result, _) = try generate("Write a long story about a dragon.") { $0.maxTokens = 5 }
        #expect(result.completionTokens.count == 5)
        #expect(result.finishReason == .length)
    }

    @Test("a stop string ends the text just before it")
    func stopString() throws {
        let (full, _) = try generate("Count from 1 to 10, separated by commas.")
        let stop = try #require(full.text.firstRange(of: "3").map { _ in "3" })
        let (stopped, pieces) = try generate("Count from 1 to 10, separated by commas.") { $0.stop = [stop] }
        #expect(stopped.finishReason == .stop)
        #expect(!stopped.text.contains(stop))
        #expect(full.text.hasPrefix(stopped.text))
        #expect(pieces.joined() == stopped.text)
    }

    @Test("the same seed reproduces a sampled completion")
    func seedReproduces() throws {
        let configure: (inout GenerationParameters) -> Void = {
            $0.sampling = SamplingParameters()
            $0.sampling.temperature = 1.0
            $0.sampling.seed = 42
            $0.maxTokens = 24
        }
        let (a, _) = try generate("Tell me a story.", configure)
        let (b, _) = try generate("Tell me a story.", configure)
        #expect(a.completionTokens == b.completionTokens)
    }

    @Test("returning false from the event handler cancels")
    func cancel() throws {
        let model = try #require(Self.model)
        let tokens = try model.chatTokens([ChatMessage(role: "user", content: "Write a poem.")])
        let generator = try Generator(model: model, capacity: 256, threads: 2)
        var parameters = GenerationParameters()
        parameters.sampling = .greedy
        var seen = 0
        let result = try generator.generate(prompt: tokens, parameters: parameters) { _ in
            seen += 1
            return seen < 3
        }
        #expect(result.finishReason == .cancelled)
        #expect(result.completionTokens.count == 3)
    }

    @Test("a second turn reuses the cached prefix and gives the same answer as a fresh context")
    func prefixReuse() throws {
        let model = try #require(Self.model)
        var parameters = GenerationParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 16
        let first = try model.chatTokens([ChatMessage(role: "user", content: "Name a fruit.")])
        let shared = try Generator(model: model, capacity: 512, threads: 2)
        let answer = try shared.generate(prompt: first, parameters: parameters)
        let second = try model.chatTokens([
            ChatMessage(role: "user", content: "Name a fruit."),
            ChatMessage(role: "assistant", content: answer.text),
            ChatMessage(role: "user", content: "And a vegetable?"),
        ])
        let reused = try shared.generate(prompt: second, parameters: parameters)
        let fresh = try Generator(model: model, capacity: 512, threads: 2).generate(prompt: second, parameters: parameters)
        #expect(reused.completionTokens == fresh.completionTokens)
    }

    @Test("a prompt that fills the context is refused before any work")
    func promptTooLong() throws {
        let model = try #require(Self.model)
        let generator = try Generator(model: model, capacity: 8, threads: 1)
        let tokens = model.rawTokens(String(repeating: "hello ", count: 20))
        #expect { try generator.generate(prompt: tokens, parameters: GenerationParameters()) } throws: {
            ($0 as? EngineError)?.code == .promptTooLong
        }
    }
}
