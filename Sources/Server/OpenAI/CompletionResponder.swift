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
    let handle: BatchScheduler.Request
    let record: AnswerHandle
    let shape: ResponseShape
    let format: any CompletionFormat
    let arrived: ContinuousClock.Instant
    let promptTokens: Int
    let interaction: Interaction

    /// Admits a completion: its prompt tokens against the caller's rate limit, the start of its
    /// record, its sequence in the model's scheduler, in that order.
    static func start(services: APIServices, quota: RateLimiter.Quota, served: ServedModel, prompt: [Int32],
                      parameters: GenerationParameters, promptParam: String, shape: ResponseShape, format: any CompletionFormat,
                      arrived: ContinuousClock.Instant, interaction: Interaction) async throws -> CompletionResponder {
        do { try services.limiter.admitTokens(quota, prompt: prompt.count) } catch { throw APIError.rateLimited(error) }
        let record = try await services.recorder.begin(interaction, promptTokens: prompt.count)
        let handle: BatchScheduler.Request
        do { handle = try served.submit(prompt, parameters, promptParam: promptParam) } catch {
            services.recorder.discard(record)
            throw error
        }
        return CompletionResponder(services: services, quota: quota, served: served, handle: handle, record: record, shape: shape,
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

    // MARK: Non-streaming

    private func whole(closure: ConnectionClosure?) async throws -> Response {
        let watch = closure?.onClose { [handle] in handle.cancel() }
        defer { closure?.cancel(watch) }
        var text = "", steps: [Completion.Step] = []
        var progress = Progress(responder: self)
        for await event in handle.events {
            switch event {
            case .token(let step):
                text += step.text
                steps.append(step)
                progress.tick(text: text, tokens: steps.count)
            case .finished(let summary):
                text += summary.tail
                let (key, value) = try await finish(response: format.recordedResponse(text), summary: summary)
                let body = shape.response([format.choice(text: text, steps: steps, summary: summary)], summary: summary)
                    .adding(key, value)
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: ResponseBody(byteBuffer: ByteBuffer(string: body.serialized())))
            case .failed(let error):
                await abandon(response: text, completionTokens: steps.count)
                throw APIError.server("Generation failed: \(error.message)")
            }
        }
        throw APIError.server("Generation ended without a result.")
    }

    // MARK: Streaming

    /// Server-sent events: the opening chunk (if any), a chunk per token with something to send,
    /// the closing chunks (the last carries the `verity` receipt stub), the usage chunk if asked
    /// for, then `data: [DONE]`. If the completed record cannot be stored, an error event ends the
    /// stream instead, without `[DONE]`.
    private func writeStream(to writer: inout any ResponseBodyWriter) async throws {
        var progress = Progress(responder: self)
        var text = "", tokens = 0, ended = false
        do {
            if let opening = format.opening { try await writer.write(sse(shape.chunk([opening]))) }
            for await event in handle.events {
                switch event {
                case .token(let step):
                    let offset = text.count
                    text += step.text
                    tokens += 1
                    progress.tick(text: text, tokens: tokens)
                    if let choice = format.tokenChoice(step, textOffset: offset) { try await writer.write(sse(shape.chunk([choice]))) }
                case .finished(let summary):
                    ended = true
                    let recorded = await finishing(response: format.recordedResponse(text + summary.tail), summary: summary)
                    guard case .success(let (key, value)) = recorded else {
                        // Unrecorded, so unacknowledged: an error event and no [DONE].
                        if case .failure(let error) = recorded { try await writer.write(sse(error.body)) }
                        throw LedgerWriteFailure()
                    }
                    var chunks = format.closingChoices(summary, textOffset: text.count, text: text + summary.tail).map { shape.chunk([$0]) }
                    if shape.includeUsage { chunks.append(shape.usageChunk(summary)) }
                    if let last = chunks.popLast() { chunks.append(last.adding(key, value)) }
                    for chunk in chunks { try await writer.write(sse(chunk)) }
                case .failed(let error):
                    ended = true
                    await abandon(response: text, completionTokens: tokens)
                    try await writer.write(sse(APIError.server("Generation failed: \(error.message)").body))
                }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        } catch {
            handle.cancel()
            if !ended { await abandon(response: text, completionTokens: tokens) }
            throw error
        }
        try await writer.finish(nil)
    }

    private func sse(_ value: JSON) -> ByteBuffer {
        ByteBuffer(string: "data: " + value.serialized() + "\n\n")
    }

    // MARK: The record

    /// Records the finished completion (metrics, the rate limit's tokens, the recorder) and
    /// returns the field for the answer's end.
    private func finish(response: String, summary: GenerationSummary) async throws(APIError) -> (key: String, value: JSON) {
        services.metrics.tokens(model: served.id, prompt: summary.promptTokens, completion: summary.completionTokens)
        services.limiter.charge(quota, completion: summary.completionTokens)
        return try await services.recorder.complete(record, interaction, response: response, summary: summary)
    }

    /// ``finish(response:summary:)`` as a result.
    private func finishing(response: String, summary: GenerationSummary) async -> Result<(key: String, value: JSON), APIError> {
        do { return .success(try await finish(response: response, summary: summary)) } catch { return .failure(error) }
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

        mutating func tick(text: String, tokens: Int) {
            timer.tick()
            let now = ContinuousClock.now
            guard now - flushed >= interval else { return }
            flushed = now
            let r = responder
            r.services.recorder.progress(r.record, r.interaction, response: text, promptTokens: r.promptTokens, completionTokens: tokens)
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
