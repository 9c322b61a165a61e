import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore
import NIOFoundationCompat
import Node

extension GatewayResponder {
    // MARK: The answer

    func answer(_ response: HTTPClientResponse, candidate: Candidate, entry: LedgerAppender.Entry, attempts: Attempts,
                context: VerityRequestContext) async throws -> Response {
        let closure = await context.connectionClosure()
        var headers: HTTPFields = [:]
        headers[CompletionResponder.recordHeader] = id
        if job.streaming {
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            let body = response.body
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                try await stream(body, to: &writer, candidate: candidate, entry: entry, attempts: attempts, closure: closure)
            })
        }
        let pump = BodyPump(response.body, closure: closure)
        var data = ByteBuffer()
        do {
            for try await buffer in pump.stream {
                var buffer = buffer
                data.writeBuffer(&buffer)
                guard data.readableBytes <= Self.maxAnswerBytes else { throw RelayError("the answer is over \(Self.maxAnswerBytes) bytes") }
            }
            pump.done()
        } catch {
            pump.cancel()
            if error is ClientGone || Task.isCancelled {
                await end(entry, candidate: candidate, relay: nil, outcome: .abandoned)
                throw CancellationError()
            }
            await end(entry, candidate: candidate, relay: nil, outcome: .failed("\(error)"))
            throw APIError(status: .badGateway, message: "The worker serving this answer failed before finishing it (\(error)).",
                           type: "server_error", param: nil, code: "worker_failed")
        }
        var relay = AnswerRelay(id: id, model: job.model)
        let whole: JSON
        do { whole = try relay.accept(response: Data(buffer: data)) } catch {
            await end(entry, candidate: candidate, relay: nil, outcome: .failed("its answer is not JSON"))
            throw APIError(status: .badGateway, message: "The worker's answer is not JSON.", type: "server_error", param: nil, code: "worker_failed")
        }
        switch await record(entry, candidate: candidate, relay: relay) {
        case .success(let stub):
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: whole.adding("verity", stub).serialized())))
        case .failure(let error):
            throw error
        }
    }

    static let maxAnswerBytes = 64 << 20

    /// Relays a streamed answer event by event: each chunk is written as soon as it is read (only
    /// the last, which carries the worker's usage statement, waits for the record, and chunks
    /// without content wait for the first that has some). A worker that breaks off before any
    /// content reached the client is replaced by the next candidate, unseen; one that breaks off
    /// later ends the stream with an error event and `[DONE]`, recorded as failed. A client that
    /// leaves cancels the job at the worker, recorded as cancelled.
    func stream(_ body: HTTPClientResponse.Body, to writer: inout any ResponseBodyWriter, candidate: Candidate,
                entry: LedgerAppender.Entry, attempts: Attempts, closure: ConnectionClosure?) async throws {
        var attempts = attempts
        var body = body, candidate = candidate
        var relay = AnswerRelay(id: id, model: job.model)
        var sent = false
        while true {
            relay = AnswerRelay(id: id, model: job.model)
            let outcome = await relayOnce(body, to: &writer, relay: &relay, sent: &sent, closure: closure)
            switch outcome {
            case .clientGone:
                await end(entry, candidate: candidate, relay: relay, outcome: .abandoned)
                throw ClientGone()
            case .broken(let reason) where !sent:
                // Nothing reached the client yet: the next candidate answers instead.
                fleet.recordFailure(candidate.worker, now: WorkerFleet.now())
                attempts.failures.append("\(candidate.worker.short): \(reason)")
                logger.warning("\(id): worker \(candidate.worker) broke off before its first token (\(reason)); trying the next")
                let attempt = await next(&attempts)
                if case .answer = attempt {} else { services.ledger.discard(entry) }
                switch attempt {
                case .answer(let response, let replacement):
                    body = response.body
                    candidate = replacement
                    continue
                case .refused(_, let data):
                    // A request the next worker refuses as malformed: its error, then the end.
                    let error = (try? JSON.parse(data)) ?? APIError.server("The worker refused the request.").body
                    try await writer.write(Self.sse(error))
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                case .cancelled:
                    throw ClientGone()
                case .exhausted:
                    try await writer.write(Self.sse(attempts.exhausted().body))
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                }
                try await writer.finish(nil)
                return
            case .broken(let reason):
                logger.warning("\(id): worker \(candidate.worker) broke off its answer: \(reason)")
                await end(entry, candidate: candidate, relay: relay, outcome: .failed(reason))
                let error = APIError(status: .badGateway, message: "The worker serving this answer failed mid-answer (\(reason)); the answer is incomplete.",
                                     type: "server_error", param: nil, code: "worker_failed")
                try await writer.write(Self.sse(error.body))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
                return
            case .done:
                break
            }
            break
        }
        switch await record(entry, candidate: candidate, relay: relay) {
        case .success(let stub):
            if let last = relay.finish(adding: ("verity", stub)) { try await writer.write(Self.sse(last)) }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        case .failure(let error):
            // Unrecorded or unaccounted for: an error event ends it.
            try await writer.write(Self.sse(error.body))
            if error.code == "worker_unaccounted" { try await writer.write(ByteBuffer(string: "data: [DONE]\n\n")) }
        }
        try await writer.finish(nil)
    }

    enum StreamOutcome {
        case done
        case clientGone
        case broken(String)
    }

    /// One worker's stream, relayed until its `[DONE]`, its failure, or the client's departure.
    /// `sent` turns true once a chunk with content (or a finish) reached the client.
    func relayOnce(_ body: HTTPClientResponse.Body, to writer: inout any ResponseBodyWriter, relay: inout AnswerRelay, sent: inout Bool,
                   closure: ConnectionClosure?) async -> StreamOutcome {
        let pump = BodyPump(body, closure: closure)
        var reader = ServerSentEventReader()
        var pending: [JSON] = []
        var outcome = StreamOutcome.done
        do {
            reading: for try await buffer in pump.stream {
                for event in reader.feed(buffer) {
                    let chunks: [JSON]
                    do { chunks = try relay.accept(event: event) } catch {
                        outcome = .broken("it sent an event that is not JSON")
                        break reading
                    }
                    for chunk in chunks {
                        if let error = chunk["error"] {
                            outcome = .broken("it reported: \(error["message"]?.stringValue ?? error.serialized())")
                            break reading
                        }
                        pending.append(chunk)
                        guard sent || Self.carriesContent(chunk) else { continue }
                        do {
                            for chunk in pending { try await writer.write(Self.sse(chunk)) }
                        } catch {
                            outcome = .clientGone
                            break reading
                        }
                        pending.removeAll()
                        if !sent {
                            services.metrics.record(ContinuousClock.now - arrived, first: true)
                            sent = true
                        }
                    }
                    if relay.done { break reading }
                }
            }
            if case .done = outcome, !relay.done { outcome = .broken("its stream ended without [DONE]") }
        } catch {
            outcome = error is ClientGone ? .clientGone : .broken("\(error)")
        }
        if Task.isCancelled { outcome = .clientGone }
        if relay.done { pump.done() } else { pump.cancel() }
        if case .done = outcome, !pending.isEmpty {
            // A stream that ended with nothing but its opening (an empty answer): send what there is.
            for chunk in pending { try? await writer.write(Self.sse(chunk)) }
        }
        return outcome
    }

    /// Whether a chunk gives the client something: text, a finish reason, or usage.
    static func carriesContent(_ chunk: JSON) -> Bool {
        let choices = chunk["choices"]?.arrayValue ?? []
        if choices.isEmpty { return true }
        return choices.contains { choice in
            if let text = choice["delta"]?["content"]?.stringValue ?? choice["text"]?.stringValue, !text.isEmpty { return true }
            if let reason = choice["finish_reason"], reason != .null { return true }
            return false
        }
    }

    static func sse(_ value: JSON) -> ByteBuffer {
        ByteBuffer(string: "data: " + value.serialized() + "\n\n")
    }

}
