import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore
import Node

/// One accepted completion request on its way to the client: its sequence in the scheduler, its
/// record (``AnswerRecorder``), and how its choices are rendered. Both completion endpoints answer
/// through it, streaming or not.
///
/// The record sees every answer before its client does: with a ledger, a write-ahead record is
/// durable before the sequence starts (else 503), is brought up to date as the answer grows, and
/// the completed record is durable before the answer's end is sent; nothing is acknowledged that
/// is not recorded. A client that goes away cancels the sequence, which is recorded as `cancelled`.
struct CompletionResponder: Sendable {
    let services: APIServices
    /// What the generated tokens count against.
    let quota: RateLimiter.Quota
    let served: ServedModel
    /// One sequence per choice (`n`): the first computes the prompt, the others copy it.
    let handles: [BatchScheduler.Request]
    let record: AnswerHandle
    let shape: ResponseShape
    let format: any CompletionFormat
    let arrived: ContinuousClock.Instant
    let promptTokens: Int
    let interaction: Interaction

    /// Admits a completion: its prompt tokens against the caller's rate limit, the start of its
    /// record, its sequences (one per choice, each with its own parameters) in the model's
    /// scheduler, in that order.
    static func start(services: APIServices, quota: RateLimiter.Quota, served: ServedModel, prompt: [Int32],
                      choices: [GenerationParameters], promptParam: String, shape: ResponseShape, format: any CompletionFormat,
                      arrived: ContinuousClock.Instant, interaction: Interaction) async throws -> CompletionResponder {
        do { try services.limiter.admitTokens(quota, prompt: prompt.count) } catch { throw APIError.rateLimited(error) }
        let record = try await services.recorder.begin(interaction, promptTokens: prompt.count)
        let handles: [BatchScheduler.Request]
        do { handles = try served.submit(prompt, choices, promptParam: promptParam) } catch {
            services.recorder.discard(record)
            throw error
        }
        return CompletionResponder(services: services, quota: quota, served: served, handles: handles, record: record, shape: shape,
                                   format: format, arrived: arrived, promptTokens: prompt.count, interaction: interaction)
    }

    /// The response: an SSE stream, or the whole completion as JSON once it is done.
    func respond(streaming: Bool, context: VerityRequestContext) async throws -> Response {
        let response: Response
        if streaming {
            let body = ResponseBody { writer in try await writeStream(to: &writer) }
            response = Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        } else {
            response = try await whole(closure: await context.connectionClosure())
        }
        var tagged = response
        tagged.headers[Self.recordHeader] = shape.id
        return tagged
    }

    static let recordHeader = HTTPField.Name("X-Verity-Record")!

    /// Every choice's events, tagged with the choice's index, as they happen.
    private func events() -> AsyncStream<(Int, GenerationEvent)> {
        let (stream, continuation) = AsyncStream.makeStream(of: (Int, GenerationEvent).self, bufferingPolicy: .unbounded)
        let handles = self.handles
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                for (i, handle) in handles.enumerated() {
                    group.addTask { for await event in handle.events { continuation.yield((i, event)) } }
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func cancel() { for handle in handles { handle.cancel() } }

    /// The choices' answers as far as they go, and their summaries once they end.
    private struct Answers {
        var texts: [String]
        var steps: [[Completion.Step]]
        var tokens: [Int]
        var summaries: [GenerationSummary?]

        init(_ n: Int) {
            texts = Array(repeating: "", count: n)
            steps = Array(repeating: [], count: n)
            tokens = Array(repeating: 0, count: n)
            summaries = Array(repeating: nil, count: n)
        }

        var allFinished: Bool { summaries.allSatisfy { $0 != nil } }
        var completionTokens: Int { tokens.reduce(0, +) }
        var ended: [GenerationSummary] { summaries.compactMap { $0 } }
    }

    /// The record's response: the answer as the format records it; with several choices, a JSON
    /// array of theirs.
    private func recorded(_ texts: [String]) -> String {
        texts.count == 1 ? format.recordedResponse(texts[0])
            : JSON.array(texts.enumerated().map { .string(format.forChoice($0).recordedResponse($1)) }).serialized()
    }

    /// One summary for the record and the usage: the prompt once, every choice's completion
    /// tokens; with choices that ended differently, `length` if any hit it.
    static func combined(_ summaries: [GenerationSummary]) -> GenerationSummary {
        guard var first = summaries.first, summaries.count > 1 else { return summaries[0] }
        first.completionTokens = summaries.reduce(0) { $0 + $1.completionTokens }
        if !summaries.allSatisfy({ $0.finishReason == first.finishReason }) {
            first.finishReason = summaries.contains { $0.finishReason == .length } ? .length : .stop
        }
        return first
    }

    // MARK: Non-streaming

    private func whole(closure: ConnectionClosure?) async throws -> Response {
        let watch = closure?.onClose { [handles] in for handle in handles { handle.cancel() } }
        defer { closure?.cancel(watch) }
        var answers = Answers(handles.count)
        var progress = Progress(responder: self)
        for await (i, event) in events() {
            switch event {
            case .token(let step):
                answers.texts[i] += step.text
                answers.steps[i].append(step)
                answers.tokens[i] += 1
                progress.tick(text: recorded(answers.texts), tokens: answers.completionTokens)
            case .finished(let summary):
                answers.texts[i] += summary.tail
                answers.summaries[i] = summary
                guard answers.allFinished else { continue }
                let summaries = answers.ended, total = Self.combined(summaries)
                let (key, value) = try await finish(response: recorded(answers.texts), summary: total, choices: summaries)
                let choices = answers.texts.indices.map { c in
                    format.forChoice(c).choice(text: answers.texts[c], steps: answers.steps[c], summary: summaries[c]).setting("index", .int(c))
                }
                let body = shape.response(choices, summary: total).adding(key, value)
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: ResponseBody(byteBuffer: ByteBuffer(string: body.serialized())))
            case .failed(let error):
                cancel()
                await abandon(response: recorded(answers.texts), completionTokens: answers.completionTokens)
                throw APIError.server("Generation failed: \(error.message)")
            }
        }
        throw APIError.server("Generation ended without a result.")
    }

    // MARK: Streaming

    /// Server-sent events: the opening chunk of each choice (if any), a chunk per token with
    /// something to send, each choice's closing chunks as it ends (the last's last carries the
    /// `verity` receipt stub, once the record is complete), the usage chunk if asked for, then
    /// `data: [DONE]`. If the completed record cannot be stored, an error event ends the stream
    /// instead, without `[DONE]`.
    private func writeStream(to writer: inout any ResponseBodyWriter) async throws {
        var progress = Progress(responder: self)
        var answers = Answers(handles.count)
        var ended = false
        do {
            if let opening = format.opening {
                for c in handles.indices { try await writer.write(sse(shape.chunk([opening.setting("index", .int(c))]))) }
            }
            for await (i, event) in events() {
                let choiceFormat = format.forChoice(i)
                switch event {
                case .token(let step):
                    let offset = answers.texts[i].count
                    answers.texts[i] += step.text
                    answers.tokens[i] += 1
                    progress.tick(text: recorded(answers.texts), tokens: answers.completionTokens)
                    if let choice = choiceFormat.tokenChoice(step, textOffset: offset) {
                        try await writer.write(sse(shape.chunk([choice.setting("index", .int(i))])))
                    }
                case .finished(let summary):
                    let offset = answers.texts[i].count
                    answers.texts[i] += summary.tail
                    answers.summaries[i] = summary
                    var chunks = choiceFormat.closingChoices(summary, textOffset: offset, text: answers.texts[i])
                        .map { shape.chunk([$0.setting("index", .int(i))]) }
                    if answers.allFinished {
                        ended = true
                        let summaries = answers.ended, total = Self.combined(summaries)
                        let recorded = await finishing(response: recorded(answers.texts), summary: total, choices: summaries)
                        guard case .success(let (key, value)) = recorded else {
                            // Unrecorded, so unacknowledged: an error event and no [DONE].
                            if case .failure(let error) = recorded { try await writer.write(sse(error.body)) }
                            throw LedgerWriteFailure()
                        }
                        if shape.includeUsage { chunks.append(shape.usageChunk(total)) }
                        if let last = chunks.popLast() { chunks.append(last.adding(key, value)) }
                    }
                    for chunk in chunks { try await writer.write(sse(chunk)) }
                case .failed(let error):
                    ended = true
                    cancel()
                    await abandon(response: recorded(answers.texts), completionTokens: answers.completionTokens)
                    try await writer.write(sse(APIError.server("Generation failed: \(error.message)").body))
                }
                if ended { break }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        } catch {
            cancel()
            if !ended { await abandon(response: recorded(answers.texts), completionTokens: answers.completionTokens) }
            throw error
        }
        try await writer.finish(nil)
    }

    private func sse(_ value: JSON) -> ByteBuffer {
        ByteBuffer(string: "data: " + value.serialized() + "\n\n")
    }

    // MARK: The record

    /// Records the finished completion (metrics, the rate limit's tokens, the recorder) and
    /// returns the field for the answer's end. With several choices, the record's parameters
    /// gain each one's finish reason (`finish_reasons`).
    private func finish(response: String, summary: GenerationSummary, choices: [GenerationSummary]) async throws(APIError) -> (key: String, value: JSON) {
        services.metrics.tokens(model: served.id, prompt: summary.promptTokens, completion: summary.completionTokens)
        services.limiter.charge(quota, completion: summary.completionTokens)
        var interaction = self.interaction
        if choices.count > 1 {
            interaction.parameters.extra["finish_reasons"] = JSON.array(choices.map { .string($0.finishReason.rawValue) }).serialized()
        }
        return try await services.recorder.complete(record, interaction, response: response, summary: summary)
    }

    /// ``finish(response:summary:choices:)`` as a result.
    private func finishing(response: String, summary: GenerationSummary, choices: [GenerationSummary]) async -> Result<(key: String, value: JSON), APIError> {
        do { return .success(try await finish(response: response, summary: summary, choices: choices)) } catch { return .failure(error) }
    }

    /// Records an answer that did not finish (the client left, or generation failed): the text
    /// generated so far, finish reason `cancelled`.
    private func abandon(response: String, completionTokens: Int) async {
        services.limiter.charge(quota, completion: completionTokens)
        await services.recorder.abandon(record, interaction, response: response, promptTokens: promptTokens,
                                        completionTokens: completionTokens)
    }

    /// Keeps the record up to date as the answer grows (at most every
    /// ``LedgerConfiguration/partialFlushInterval``), and times the tokens for the metrics.
    private struct Progress {
        let responder: CompletionResponder
        var timer: TokenTimer
        var flushed: ContinuousClock.Instant
        let interval: Duration

        init(responder: CompletionResponder) {
            self.responder = responder
            timer = TokenTimer(arrived: responder.arrived, metrics: responder.services.metrics)
            flushed = ContinuousClock.now
            interval = responder.services.recorder.progressInterval
        }

        mutating func tick(text: @autoclosure () -> String, tokens: Int) {
            timer.tick()
            let now = ContinuousClock.now
            guard now - flushed >= interval else { return }
            flushed = now
            let r = responder
            r.services.recorder.progress(r.record, r.interaction, response: text(), promptTokens: r.promptTokens, completionTokens: tokens)
        }
    }
}

/// A stream that ends because its completed record could not be stored: the client got an error
/// event and no `[DONE]`; the request log counts it as a server error.
struct LedgerWriteFailure: Error {}

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

extension JSON {
    /// This object with one more field at the end.
    func adding(_ key: String, _ value: JSON) -> JSON {
        guard case .object(let fields) = self else { return self }
        return .object(fields + [(key, value)])
    }
}
