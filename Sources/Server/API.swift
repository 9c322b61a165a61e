import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore

/// The OpenAI endpoints and the operational ones (/health, /metrics).
struct API: Sendable {
    let host: ModelHost
    let metrics: ServerMetrics
    let maxBodyBytes: Int
    let ledger: LedgerGateway

    func register(on router: Router<VerityRequestContext>) {
        router.get("/health") { _, _ in
            let ready = host.models != nil
            return json(ready ? ["status": "ok"] : ["status": "loading"], status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render(models: host.models ?? []))))
        }
        router.get("/v1/models") { _, _ in
            let models = try models()
            return json(["object": "list", "data": .array(models.map(modelObject))])
        }
        router.get("/v1/models/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            return json(modelObject(try host.model(id)))
        }
        router.post("/v1/chat/completions") { request, context in try await chatCompletions(request, caller: context.caller) }
        router.post("/v1/completions") { request, context in try await completions(request, caller: context.caller) }
        router.post("/v1/tokenize") { request, _ in try await tokenize(request) }
        router.post("/v1/detokenize") { request, _ in try await detokenize(request) }
        router.post("/v1/chat/template") { request, _ in try await chatTemplate(request) }
    }

    private func models() throws(APIError) -> [ServedModel] {
        guard let models = host.models else { throw APIError.unavailable("Models are still loading; retry shortly.") }
        return models
    }

    private func modelObject(_ served: ServedModel) -> JSON {
        ["id": .string(served.id), "object": "model", "created": .int(served.created), "owned_by": "verity"]
    }

    private func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized())))
    }

    private func body(_ request: Request) async throws(APIError) -> Data {
        do {
            let buffer = try await request.body.collect(upTo: maxBodyBytes)
            return Data(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit: maxBodyBytes)
        } catch {
            throw APIError.invalidJSON("the body could not be read: \(error)")
        }
    }

    private func submit(_ served: ServedModel, _ prompt: [Int32], _ parameters: GenerationParameters,
                        promptParam: String) throws(APIError) -> BatchScheduler.Request {
        do {
            return try served.scheduler.submit(prompt: prompt, parameters: parameters)
        } catch {
            switch error.code {
            case .overloaded: throw APIError.overloaded(error.message, retryAfter: 1)
            case .shuttingDown: throw APIError.unavailable(error.message)
            case .promptTooLong:
                throw APIError.contextLength(promptTokens: prompt.count, maxTokens: nil, context: served.contextLength, param: promptParam)
            default: throw APIError.invalidRequest(error.message)
            }
        }
    }

    // MARK: Completions

    /// What both completion endpoints need to write a response and record it.
    struct Job {
        let served: ServedModel
        let handle: BatchScheduler.Request
        let id: String
        let created: Int
        let arrived: ContinuousClock.Instant
        let includeUsage: Bool
        let promptTokens: Int
        let interaction: Interaction
    }

    private func chatCompletions(_ request: Request, caller: Caller) async throws -> Response {
        let arrived = ContinuousClock.now
        let req = try decodeRequest(ChatCompletionRequest.self, from: try await body(request))
        let served = try host.model(req.model)
        try Generation.checkSupported(req)
        let messages = try Generation.messages(req.messages)
        let prompt: [Int32]
        do { prompt = try served.model.chatTokens(messages) } catch {
            throw APIError.invalidRequest("The model's chat template could not render these messages: \(error.message)", param: "messages")
        }
        let parameters = try Generation.parameters(req.sampling, promptTokens: prompt.count, served: served,
                                                   logprobs: req.logprobs == true ? (req.topLogprobs ?? 0) : nil, promptParam: "messages")
        let id = Generation.newID("chatcmpl")
        let interaction = Interaction.chat(id: id, caller: caller, served: served, messages: messages, fields: req.sampling,
                                           maxTokens: parameters.maxTokens)
        let job = Job(served: served, handle: try submit(served, prompt, parameters, promptParam: "messages"),
                      id: id, created: Int(Date().timeIntervalSince1970), arrived: arrived,
                      includeUsage: req.sampling.streamOptions?.includeUsage == true, promptTokens: prompt.count,
                      interaction: interaction)
        let tokenizer = served.model.tokenizer
        let wantsLogprobs = parameters.logprobs != nil
        @Sendable func logprobs(_ step: Completion.Step) -> JSON {
            guard wantsLogprobs, let chosen = step.logprob else { return .null }
            return ["content": [Generation.chatLogprob(tokenizer, chosen, top: step.top)], "refusal": nil]
        }
        @Sendable func chunk(_ delta: JSON, logprobs: JSON = .null, finish: JSON = .null) -> JSON {
            var fields: [(String, JSON)] = [("id", .string(job.id)), ("object", "chat.completion.chunk"), ("created", .int(job.created)),
                                            ("model", .string(served.id)), ("system_fingerprint", "verity"),
                                            ("choices", [["index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish]])]
            if job.includeUsage { fields.append(("usage", nil)) }
            return .object(fields)
        }
        if req.sampling.stream == true {
            return receiptHeader(job, stream(job, first: chunk(["role": "assistant", "content": ""])) { event in
                switch event {
                case .token(let step):
                    guard !step.text.isEmpty || wantsLogprobs else { return nil }
                    return chunk(["content": .string(step.text)], logprobs: logprobs(step))
                case .finished(let summary):
                    var out: [JSON] = []
                    if !summary.tail.isEmpty { out.append(chunk(["content": .string(summary.tail)])) }
                    out.append(chunk([:], finish: Generation.finishReason(summary.finishReason)))
                    if job.includeUsage {
                        out.append(["id": .string(job.id), "object": "chat.completion.chunk", "created": .int(job.created),
                                    "model": .string(served.id), "system_fingerprint": "verity", "choices": [],
                                    "usage": Generation.usage(summary)])
                    }
                    return .array(out)
                case .failed: return nil
                }
            })
        }
        let (text, entries, summary) = try await collect(job, logprobs: { step in
            step.logprob.map { Generation.chatLogprob(tokenizer, $0, top: step.top) }
        })
        let choice: JSON = ["index": 0, "message": ["role": "assistant", "content": .string(text), "refusal": nil],
                            "logprobs": wantsLogprobs ? ["content": .array(entries), "refusal": nil] : nil,
                            "finish_reason": Generation.finishReason(summary.finishReason)]
        let verity = try await record(job, response: text, summary: summary)
        return receiptHeader(job, json(["id": .string(job.id), "object": "chat.completion", "created": .int(job.created),
                                        "model": .string(served.id), "system_fingerprint": "verity", "choices": [choice],
                                        "usage": Generation.usage(summary), "verity": verity]))
    }

    private func completions(_ request: Request, caller: Caller) async throws -> Response {
        let arrived = ContinuousClock.now
        let req = try decodeRequest(CompletionRequest.self, from: try await body(request))
        let served = try host.model(req.model)
        if req.prompt.count != 1 {
            throw APIError.unsupported("prompt", "Send one prompt per request; batches of \(req.prompt.count) prompts are not supported yet.")
        }
        if req.echo == true { throw APIError.unsupported("echo", "echo is not supported yet.") }
        if let suffix = req.suffix, !suffix.isEmpty { throw APIError.unsupported("suffix", "suffix (fill-in-the-middle) is not supported yet.") }
        if let best = req.bestOf, best != 1 { throw APIError.unsupported("best_of", "best_of > 1 is not supported yet.") }
        if let n = req.logprobs, !(0...20).contains(n) {
            throw APIError.invalidRequest("logprobs must be between 0 and 20; got \(n).", param: "logprobs")
        }
        let tokenizer = served.model.tokenizer
        let prompt: [Int32]
        switch req.prompt {
        case .texts(let texts): prompt = served.model.rawTokens(texts[0])
        case .tokens(let ids):
            prompt = ids[0]
            if let bad = prompt.first(where: { $0 < 0 || Int($0) >= tokenizer.vocabularySize }) {
                throw APIError.invalidRequest("Token id \(bad) is outside the vocabulary (0..<\(tokenizer.vocabularySize)).", param: "prompt")
            }
        }
        if prompt.isEmpty { throw APIError.invalidRequest("The prompt is empty.", param: "prompt") }
        let parameters = try Generation.parameters(req.sampling, promptTokens: prompt.count, served: served, logprobs: req.logprobs,
                                                   promptParam: "prompt")
        let id = Generation.newID("cmpl")
        let interaction = Interaction.completion(id: id, caller: caller, served: served, prompt: req.prompt, fields: req.sampling,
                                                 logprobs: req.logprobs, maxTokens: parameters.maxTokens)
        let job = Job(served: served, handle: try submit(served, prompt, parameters, promptParam: "prompt"),
                      id: id, created: Int(Date().timeIntervalSince1970), arrived: arrived,
                      includeUsage: req.sampling.streamOptions?.includeUsage == true, promptTokens: prompt.count,
                      interaction: interaction)
        let wantsLogprobs = parameters.logprobs != nil
        let offset = TextOffset()
        @Sendable func logprobs(_ steps: [(text: String, step: Completion.Step)]) -> JSON {
            guard wantsLogprobs else { return .null }
            var tokens: [JSON] = [], values: [JSON] = [], tops: [JSON] = [], offsets: [JSON] = []
            for (text, step) in steps {
                guard let chosen = step.logprob else { continue }
                tokens.append(.string(Generation.tokenText(tokenizer, chosen.token).0))
                values.append(Generation.logprob(chosen.logprob))
                tops.append(.object(step.top.map { (Generation.tokenText(tokenizer, $0.token).0, Generation.logprob($0.logprob)) }))
                offsets.append(.int(offset.value))
                offset.value += text.count
            }
            return ["tokens": .array(tokens), "token_logprobs": .array(values), "top_logprobs": .array(tops), "text_offset": .array(offsets)]
        }
        @Sendable func chunk(_ text: String, logprobs: JSON = .null, finish: JSON = .null) -> JSON {
            var fields: [(String, JSON)] = [("id", .string(job.id)), ("object", "text_completion"), ("created", .int(job.created)),
                                            ("model", .string(served.id)), ("system_fingerprint", "verity"),
                                            ("choices", [["index": 0, "text": .string(text), "logprobs": logprobs, "finish_reason": finish]])]
            if job.includeUsage { fields.append(("usage", nil)) }
            return .object(fields)
        }
        if req.sampling.stream == true {
            return receiptHeader(job, stream(job, first: nil) { event in
                switch event {
                case .token(let step):
                    guard !step.text.isEmpty || wantsLogprobs else { return nil }
                    return chunk(step.text, logprobs: logprobs([(step.text, step)]))
                case .finished(let summary):
                    var out: [JSON] = [chunk(summary.tail, finish: Generation.finishReason(summary.finishReason))]
                    if job.includeUsage {
                        out.append(["id": .string(job.id), "object": "text_completion", "created": .int(job.created),
                                    "model": .string(served.id), "system_fingerprint": "verity", "choices": [],
                                    "usage": Generation.usage(summary)])
                    }
                    return .array(out)
                case .failed: return nil
                }
            })
        }
        var steps: [(text: String, step: Completion.Step)] = []
        let (text, _, summary) = try await collect(job, logprobs: { step in
            steps.append((step.text, step))
            return nil
        })
        let choice: JSON = ["index": 0, "text": .string(text), "logprobs": logprobs(steps),
                            "finish_reason": Generation.finishReason(summary.finishReason)]
        let verity = try await record(job, response: text, summary: summary)
        return receiptHeader(job, json(["id": .string(job.id), "object": "text_completion", "created": .int(job.created),
                                        "model": .string(served.id), "system_fingerprint": "verity", "choices": [choice],
                                        "usage": Generation.usage(summary), "verity": verity]))
    }

    /// Waits for the whole completion: its text, one logprobs entry per token, and the summary.
    private func collect(_ job: Job, logprobs: (Completion.Step) -> JSON?) async throws
        -> (String, [JSON], BatchScheduler.Summary) {
        var text = "", entries: [JSON] = []
        var timer = TokenTimer(arrived: job.arrived, metrics: metrics)
        for await event in job.handle.events {
            switch event {
            case .token(let step):
                timer.tick()
                text += step.text
                if let entry = logprobs(step) { entries.append(entry) }
            case .finished(let summary):
                metrics.tokens(model: job.served.id, prompt: summary.promptTokens, completion: summary.completionTokens)
                return (text + summary.tail, entries, summary)
            case .failed(let error):
                throw APIError.server("Generation failed: \(error.message)")
            }
        }
        throw APIError.server("Generation ended without a result.")
    }

    /// A server-sent-events response: `first` (if any), then what `render` makes of each event
    /// (nil: nothing to send; an array: several chunks), then `data: [DONE]`. The interaction is
    /// recorded before the last chunk, which carries its `verity` receipt stub. A client that
    /// goes away cancels the generation, which is recorded as cancelled.
    private func stream(_ job: Job, first: JSON?, render: @escaping @Sendable (BatchScheduler.Event) -> JSON?) -> Response {
        let body = ResponseBody { writer in try await writeStream(job, first: first, render: render, to: &writer) }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    private func writeStream(_ job: Job, first: JSON?, render: @Sendable (BatchScheduler.Event) -> JSON?,
                             to writer: inout any ResponseBodyWriter) async throws {
        var timer = TokenTimer(arrived: job.arrived, metrics: metrics)
        var text = "", tokens = 0, recorded = false
        do {
            if let first { try await writer.write(sse(first)) }
            for await event in job.handle.events {
                var verity: JSON?
                switch event {
                case .token(let step):
                    timer.tick()
                    text += step.text
                    tokens += 1
                case .finished(let summary):
                    metrics.tokens(model: job.served.id, prompt: summary.promptTokens, completion: summary.completionTokens)
                    do {
                        verity = try await record(job, response: text + summary.tail, summary: summary)
                        recorded = true
                    } catch {
                        // Unrecorded, so unacknowledged: no final chunk, an error instead.
                        try await writer.write(sse(error.body))
                        continue
                    }
                case .failed(let error):
                    try await writer.write(sse(APIError.server("Generation failed: \(error.message)").body))
                }
                var chunks: [JSON]
                switch render(event) {
                case .array(let many)?: chunks = many
                case let chunk?: chunks = [chunk]
                case nil: chunks = []
                }
                if let verity, let last = chunks.popLast() { chunks.append(last.adding("verity", verity)) }
                for chunk in chunks { try await writer.write(sse(chunk)) }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        } catch {
            job.handle.cancel()
            if !recorded { await recordCancelled(job, response: text, completionTokens: tokens) }
            throw error
        }
        try await writer.finish(nil)
    }

    // MARK: Tokens and templates

    private func tokenize(_ request: Request) async throws -> Response {
        let req = try decodeRequest(TokenizeRequest.self, from: try await body(request))
        let served = try host.model(req.model)
        let model = served.model
        let tokens: [Int32]
        if let prompt = req.prompt {
            tokens = model.tokenizer.encode(prompt, addSpecial: req.addSpecialTokens ?? true, parseSpecial: true)
        } else if let messages = req.messages {
            let text = try render(served, messages, addGenerationPrompt: req.addGenerationPrompt ?? true)
            tokens = model.tokenizer.encode(text, addSpecial: model.tokenizer.addBOS && !text.hasPrefix(bosText(served)), parseSpecial: true)
        } else {
            throw APIError.missing("prompt")
        }
        return json(["tokens": .array(tokens.map { .int(Int($0)) }), "count": .int(tokens.count), "max_model_len": .int(served.contextLength)])
    }

    private func detokenize(_ request: Request) async throws -> Response {
        let req = try decodeRequest(DetokenizeRequest.self, from: try await body(request))
        let served = try host.model(req.model)
        let vocab = served.model.tokenizer.vocabularySize
        if let bad = req.tokens.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw APIError.invalidRequest("Token id \(bad) is outside the vocabulary (0..<\(vocab)).", param: "tokens")
        }
        return json(["prompt": .string(served.model.tokenizer.decode(req.tokens))])
    }

    private func chatTemplate(_ request: Request) async throws -> Response {
        let req = try decodeRequest(TokenizeRequest.self, from: try await body(request))
        let served = try host.model(req.model)
        guard let messages = req.messages else { throw APIError.missing("messages") }
        return json(["prompt": .string(try render(served, messages, addGenerationPrompt: req.addGenerationPrompt ?? true))])
    }

    private func render(_ served: ServedModel, _ messages: [ChatCompletionRequest.Message], addGenerationPrompt: Bool) throws(APIError) -> String {
        let chat = try Generation.messages(messages)
        do {
            return try served.model.renderChat(chat, addGenerationPrompt: addGenerationPrompt)
        } catch {
            throw APIError.invalidRequest("The model's chat template could not render these messages: \(error.message)", param: "messages")
        }
    }

    private func bosText(_ served: ServedModel) -> String {
        served.model.tokenizer.bosTokenID.map { served.model.tokenizer.tokenText($0) } ?? "\u{0}"
    }
}

/// Characters of completion text before the next token (completions' `text_offset`); used by one
/// response at a time.
private final class TextOffset: @unchecked Sendable {
    var value = 0
}

/// Time to first token and between tokens, into the metrics' histograms.
private struct TokenTimer {
    let arrived: ContinuousClock.Instant
    let metrics: ServerMetrics
    private var last: ContinuousClock.Instant?

    init(arrived: ContinuousClock.Instant, metrics: ServerMetrics) {
        self.arrived = arrived
        self.metrics = metrics
    }

    mutating func tick() {
        let now = ContinuousClock.now
        metrics.record(now - (last ?? arrived), first: last == nil)
        last = now
    }
}

private func sse(_ value: JSON) -> ByteBuffer {
    ByteBuffer(string: "data: " + value.serialized() + "\n\n")
}
