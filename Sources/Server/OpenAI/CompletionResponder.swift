import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore
import Node

/// One accepted completion request on its way to the client: its sequence in the scheduler, what
/// the ledger will record, and how its choices are rendered. Both completion endpoints answer
/// through it, streaming or not; the interaction is recorded before the answer's end is sent
/// (nothing is acknowledged that is not recorded), and a client that goes away cancels the
/// sequence, which is then recorded as `cancelled`.
struct CompletionResponder: Sendable {
    let services: APIServices
    let served: ServedModel
    let handle: BatchScheduler.Request
    let shape: ResponseShape
    let format: any CompletionFormat
    let arrived: ContinuousClock.Instant
    let promptTokens: Int
    let interaction: Interaction

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
        var timer = TokenTimer(arrived: arrived, metrics: services.metrics)
        for await event in handle.events {
            switch event {
            case .token(let step):
                timer.tick()
                text += step.text
                steps.append(step)
            case .finished(let summary):
                services.metrics.tokens(model: served.id, prompt: summary.promptTokens, completion: summary.completionTokens)
                text += summary.tail
                let verity = try await record(response: text, summary: summary)
                let body = shape.response([format.choice(text: text, steps: steps, summary: summary)], summary: summary, verity: verity)
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: ResponseBody(byteBuffer: ByteBuffer(string: body.serialized())))
            case .failed(let error):
                throw APIError.server("Generation failed: \(error.message)")
            }
        }
        throw APIError.server("Generation ended without a result.")
    }

    // MARK: Streaming

    /// Server-sent events: the opening chunk (if any), a chunk per token with something to send,
    /// the closing chunks (the last carries the `verity` receipt stub), the usage chunk if asked
    /// for, then `data: [DONE]`.
    private func writeStream(to writer: inout any ResponseBodyWriter) async throws {
        var timer = TokenTimer(arrived: arrived, metrics: services.metrics)
        var text = "", tokens = 0, recorded = false
        do {
            if let opening = format.opening { try await writer.write(sse(shape.chunk([opening]))) }
            for await event in handle.events {
                switch event {
                case .token(let step):
                    timer.tick()
                    let offset = text.count
                    text += step.text
                    tokens += 1
                    if let choice = format.tokenChoice(step, textOffset: offset) { try await writer.write(sse(shape.chunk([choice]))) }
                case .finished(let summary):
                    services.metrics.tokens(model: served.id, prompt: summary.promptTokens, completion: summary.completionTokens)
                    let verity: JSON
                    do {
                        verity = try await record(response: text + summary.tail, summary: summary)
                        recorded = true
                    } catch {
                        // Unrecorded, so unacknowledged: no final chunk, an error instead.
                        try await writer.write(sse(error.body))
                        continue
                    }
                    var chunks = format.closingChoices(summary).map { shape.chunk([$0]) }
                    if let last = chunks.popLast() { chunks.append(last.adding("verity", verity)) }
                    if shape.includeUsage { chunks.append(shape.usageChunk(summary)) }
                    for chunk in chunks { try await writer.write(sse(chunk)) }
                case .failed(let error):
                    try await writer.write(sse(APIError.server("Generation failed: \(error.message)").body))
                }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        } catch {
            handle.cancel()
            if !recorded { await recordCancelled(response: text, completionTokens: tokens) }
            throw error
        }
        try await writer.finish(nil)
    }

    private func sse(_ value: JSON) -> ByteBuffer {
        ByteBuffer(string: "data: " + value.serialized() + "\n\n")
    }

    // MARK: The ledger

    /// Records the finished completion durably and returns the response's `verity` object:
    /// `{"record_id", "leaf_index", "leaf_hash" (base64), "receipt_url"}`.
    /// - Throws: A 500 ``APIError`` if the record cannot be stored: a response that is not
    ///   recorded is not given.
    private func record(response: String, summary: GenerationSummary) async throws(APIError) -> JSON {
        let record = interaction.record(response: response, promptTokens: summary.promptTokens,
                                        completionTokens: summary.completionTokens, finishReason: summary.finishReason,
                                        worker: services.ledger.worker)
        let appended: LedgerNode.Appended
        let start = ContinuousClock.now
        do { appended = try await services.ledger.record(record, sender: interaction.caller) } catch {
            services.logger.error("ledger: cannot record \(shape.id): \(error)")
            throw APIError.server("The interaction could not be recorded in the ledger, so no answer is given.")
        }
        services.metrics.ledgerRecorded(in: ContinuousClock.now - start)
        return ["record_id": .string(appended.recordID), "leaf_index": .int(Int(appended.leafIndex)),
                "leaf_hash": .string(appended.leafHash.base64EncodedString()),
                "receipt_url": .string("/v1/ledger/records/\(appended.recordID)/receipt")]
    }

    /// Records a stream the client left: the text generated so far, finish reason `cancelled`.
    /// Nothing is acknowledged to anyone, so a failure is only logged.
    private func recordCancelled(response: String, completionTokens: Int) async {
        let record = interaction.record(response: response, promptTokens: promptTokens, completionTokens: completionTokens,
                                        finishReason: .cancelled, worker: services.ledger.worker)
        do { _ = try await services.ledger.record(record, sender: interaction.caller) } catch {
            services.logger.error("ledger: cannot record cancelled \(shape.id): \(error)")
        }
    }
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

extension JSON {
    /// This object with one more field at the end.
    func adding(_ key: String, _ value: JSON) -> JSON {
        guard case .object(let fields) = self else { return self }
        return .object(fields + [(key, value)])
    }
}
