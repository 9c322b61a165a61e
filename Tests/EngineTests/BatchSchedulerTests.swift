import ChatTemplates
import Engine
import Foundation
import Testing
import TestSupport

@Suite("Continuous batching on SmolLM2", .enabled(if: TestPaths.hasSmolLM2, "run scripts/fetch-models first"))
struct BatchSchedulerTests {
    static let model: LoadedModel? = try? LoadedModel(path: TestPaths.smolLM2)
    static let questions = ["What is the capital of France?", "Write a haiku about rain.", "Name three prime numbers.",
                            "How do I reverse a list in Python?", "Why is the sky blue?", "Say hello in Spanish."]

    func scheduler(_ configure: (inout BatchScheduler.Configuration) -> Void = { _ in }) throws -> BatchScheduler {
        var config = BatchScheduler.Configuration()
        config.maxSequences = 4
        config.contextLength = 512
        config.threads = 2
        config.stepTokens = 24     // small, so prompts are prefilled in several chunks beside decoding sequences
        configure(&config)
        return try BatchScheduler(model: try #require(Self.model), configuration: config)
    }

    func greedy(_ maxTokens: Int) -> GenerationParameters {
        var p = GenerationParameters()
        p.sampling = .greedy
        p.maxTokens = maxTokens
        return p
    }

    /// Polls `condition` until it holds; records an issue (instead of hanging) after `seconds`.
    func waitUntil(_ what: String, seconds: Double = 60, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline else { Issue.record("timed out waiting until \(what)"); return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    struct Outcome { var tokens: [Int32] = []; var text = ""; var summary: GenerationSummary? }

    func drain(_ request: BatchScheduler.Request) async -> Outcome {
        var out = Outcome()
        for await event in request.events {
            switch event {
            case .token(let step): out.tokens.append(step.token); out.text += step.text
            case .finished(let summary): out.text += summary.tail; out.summary = summary
            case .failed(let error): Issue.record("failed: \(error)")
            }
        }
        return out
    }

    @Test("concurrent greedy completions equal the one-at-a-time generator's, token for token")
    func matchesGenerator() async throws {
        let model = try #require(Self.model)
        let prompts = try Self.questions.map { try model.chatTokens([ChatMessage(role: "user", content: $0)]) }
        var expected: [GenerationResult] = []
        for prompt in prompts {
            let generator = try Generator(model: model, capacity: 512, threads: 2)
            expected.append(try generator.generate(prompt: prompt, parameters: greedy(40)))
        }
        let scheduler = try scheduler()
        defer { scheduler.shutdown() }
        // Six requests on four sequences: two wait in the queue and join as others finish.
        let requests = try prompts.map { try scheduler.submit(prompt: $0, parameters: greedy(40)) }
        var outcomes: [Outcome] = []
        for request in requests { outcomes.append(await drain(request)) }
        for (i, outcome) in outcomes.enumerated() {
            #expect(outcome.tokens == expected[i].completionTokens, "prompt \(i)")
            #expect(outcome.text == expected[i].text, "prompt \(i)")
            #expect(outcome.summary?.finishReason == expected[i].finishReason)
            #expect(outcome.summary?.completionTokens == expected[i].completionTokens.count)
        }
        #expect(scheduler.load.active == 0 && scheduler.load.queued == 0)
    }

    @Test("the next turn of a conversation reuses the cached prefix and gives the same text")
    func prefixReuse() async throws {
        let model = try #require(Self.model)
        let scheduler = try scheduler()
        defer { scheduler.shutdown() }
        var history = [ChatMessage(role: "user", content: "What is the capital of France?")]
        let first = await drain(try scheduler.submit(prompt: try model.chatTokens(history), parameters: greedy(20)))
        history.append(ChatMessage(role: "assistant", content: first.text))
        history.append(ChatMessage(role: "user", content: "And of Italy?"))
        let prompt = try model.chatTokens(history)
        let second = await drain(try scheduler.submit(prompt: prompt, parameters: greedy(20)))
        let reused = try #require(second.summary?.cachedPromptTokens)
        #expect(reused > 20, "only \(reused) prompt tokens reused")
        let generator = try Generator(model: model, capacity: 512, threads: 2)
        #expect(second.text == (try generator.generate(prompt: prompt, parameters: greedy(20))).text)
    }

    @Test("a prompt sharing a prefix with another sequence copies its cache and gives the same text")
    func prefixCopy() async throws {
        let model = try #require(Self.model)
        let scheduler = try scheduler()
        defer { scheduler.shutdown() }
        let system = ChatMessage(role: "system", content: "You are a careful assistant who answers in one short sentence, citing no sources.")
        let first = try model.chatTokens([system, ChatMessage(role: "user", content: "What is the capital of France?")])
        let second = try model.chatTokens([system, ChatMessage(role: "user", content: "Name a primary colour.")])
        // The first request occupies a sequence while the second lands in another one.
        var parameters = greedy(60)
        for id in model.tokenizer.endOfGenerationTokenIDs { parameters.sampling.logitBias[id] = -100 }
        let running = try scheduler.submit(prompt: first, parameters: parameters)
        try await waitUntil("the first request runs") { scheduler.load.active > 0 }
        let outcome = await drain(try scheduler.submit(prompt: second, parameters: greedy(20)))
        running.cancel()
        _ = await drain(running)
        let reused = try #require(outcome.summary?.cachedPromptTokens)
        #expect(reused >= 20, "only \(reused) prompt tokens reused")
        let generator = try Generator(model: model, capacity: 512, threads: 2)
        #expect(outcome.text == (try generator.generate(prompt: second, parameters: greedy(20))).text)
    }

    @Test("n choices read the prompt once: the others copy it, and each samples as it would alone")
    func choicesShareThePrompt() async throws {
        let model = try #require(Self.model)
        let prompt = try model.chatTokens([ChatMessage(role: "user", content: "Write a short poem about the sea.")])
        func sampled(_ seed: UInt64) -> GenerationParameters {
            var p = GenerationParameters()
            p.sampling.temperature = 0.9
            p.sampling.seed = seed
            p.maxTokens = 24
            return p
        }
        let generator = try Generator(model: model, capacity: 512, threads: 2)
        let alone = try (0..<3).map { try generator.generate(prompt: prompt, parameters: sampled(40 + UInt64($0))) }
        // Three choices on two sequences: the third waits for a free one.
        let scheduler = try scheduler { $0.maxSequences = 2 }
        defer { scheduler.shutdown() }
        let requests = try scheduler.submit(prompt: prompt, choices: (0..<3).map { sampled(40 + UInt64($0)) })
        var outcomes: [Outcome] = []
        for request in requests { outcomes.append(await drain(request)) }
        for (i, outcome) in outcomes.enumerated() {
            #expect(outcome.tokens == alone[i].completionTokens, "choice \(i)")
        }
        #expect(outcomes[0].summary?.cachedPromptTokens == 0)
        // The others had the prompt but its last token (always computed, for its logits) copied.
        #expect(outcomes[1].summary?.cachedPromptTokens == prompt.count - 1 && outcomes[2].summary?.cachedPromptTokens == prompt.count - 1)
        #expect(Set(outcomes.map(\.tokens)).count == 3, "three seeds, three different answers")
        #expect(scheduler.load.active == 0 && scheduler.load.queued == 0)
    }

    @Test("a cancelled request ends with reason cancelled and frees its sequence")
    func cancellation() async throws {
        let model = try #require(Self.model)
        let scheduler = try scheduler()
        defer { scheduler.shutdown() }
        var parameters = greedy(400)
        for id in model.tokenizer.endOfGenerationTokenIDs { parameters.sampling.logitBias[id] = -100 }   // can't stop by itself
        let request = try scheduler.submit(prompt: try model.chatTokens([ChatMessage(role: "user", content: "Tell me a long story.")]),
                                           parameters: parameters)
        var summary: GenerationSummary?
        for await event in request.events {
            switch event {
            case .token: request.cancel()
            case .finished(let s): summary = s
            case .failed(let error): Issue.record("failed: \(error)")
            }
        }
        #expect(summary?.finishReason == .cancelled)
        #expect((summary?.completionTokens ?? 400) < 400)
        #expect(scheduler.load.active == 0)
    }

    @Test("a full queue refuses with overloaded; a too-long prompt and shutdown are refused too")
    func admission() async throws {
        let model = try #require(Self.model)
        let scheduler = try scheduler { $0.maxSequences = 1; $0.maxQueue = 1 }
        let prompt = try model.chatTokens([ChatMessage(role: "user", content: "Count to one hundred.")])
        let running = try scheduler.submit(prompt: prompt, parameters: greedy(200))
        // Wait until the first request holds the only sequence, then fill the one queue place.
        try await waitUntil("the first request runs") { scheduler.load.active > 0 }
        let waiting = try scheduler.submit(prompt: prompt, parameters: greedy(2))
        #expect { try scheduler.submit(prompt: prompt, parameters: greedy(2)) } throws: { ($0 as? EngineError)?.code == .overloaded }
        #expect { try scheduler.submit(prompt: Array(repeating: 1, count: 600), parameters: greedy(2)) } throws: {
            ($0 as? EngineError)?.code == .promptTooLong
        }
        running.cancel()
        #expect(await drain(waiting).summary?.completionTokens == 2)
        scheduler.shutdown()
        #expect { try scheduler.submit(prompt: prompt, parameters: greedy(2)) } throws: { ($0 as? EngineError)?.code == .shuttingDown }
    }

    @Test("a long document yields most steps to a short question, which finishes first; both answers are as alone")
    func heavyYields() async throws {
        let model = try #require(Self.model)
        let scheduler = try scheduler { $0.heavyPromptTokens = 100; $0.heavyStepShare = 4; $0.prefillTokensWhileDecoding = 4 }
        defer { scheduler.shutdown() }
        let document = try model.chatTokens([ChatMessage(role: "user", content:
            String(repeating: "The sea was calm and the sky was grey. ", count: 20) + "Summarize this.")])
        let question = try model.chatTokens([ChatMessage(role: "user", content: "Name three prime numbers.")])
        #expect(document.count > 100 && question.count < 100)
        var parameters = greedy(24)
        for id in model.tokenizer.endOfGenerationTokenIDs { parameters.sampling.logitBias[id] = -100 }
        let heavy = try scheduler.submit(prompt: document, parameters: parameters)
        // Let the document start alone, at full speed, then ask the question.
        var firstHeavyToken = false
        var heavyOut = Outcome(), lightOut: Outcome
        var events = heavy.events.makeAsyncIterator()
        while !firstHeavyToken, let event = await events.next() {
            if case .token(let step) = event { heavyOut.tokens.append(step.token); heavyOut.text += step.text; firstHeavyToken = true }
        }
        let light = try scheduler.submit(prompt: question, parameters: parameters)
        lightOut = await drain(light)
        // The document had 23 tokens to go and the question 26 steps: side by side, the document
        // would be done first. It advanced one step in four, so it is still running.
        #expect(scheduler.load.active == 1)
        while let event = await events.next() {
            if case .token(let step) = event { heavyOut.tokens.append(step.token); heavyOut.text += step.text }
            if case .finished(let summary) = event { heavyOut.summary = summary }
        }
        #expect(lightOut.tokens.count == 24)
        #expect(heavyOut.tokens.count == 24)
        // Both answers are what each would be alone (greedy, bit-identical logits whatever the batch).
        let alone = try Generator(model: model, capacity: 512, threads: 2)
        #expect(lightOut.tokens == (try alone.generate(prompt: question, parameters: parameters)).completionTokens)
        #expect(heavyOut.tokens == (try alone.generate(prompt: document, parameters: parameters)).completionTokens)
    }
}
