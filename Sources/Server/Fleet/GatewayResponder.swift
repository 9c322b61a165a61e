import AsyncHTTPClient
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import NIOCore
import NIOFoundationCompat
import Node

/// What a gateway's completion endpoints share: the fleet, the client that signs jobs, the
/// ledger, the limits and the routing settings.
struct GatewayServices: Sendable {
    let fleet: WorkerFleet
    let jobs: JobClient
    let ledger: LedgerAppender
    let metrics: ServerMetrics
    let limits: RequestLimits
    let limiter: RateLimiter
    let routing: GatewayRouting
    /// TLS pinned to each worker's advertised certificate.
    let tls: PinnedWorkerTLS
    let logger: Logger
}

/// How a gateway routes and retries.
public struct GatewayRouting: Sendable {
    /// How candidates are ranked.
    public var policy = RoutingPolicy.cheapest
    /// Workers tried for one request before it fails (a refused, failed or timed-out worker
    /// before the answer's first byte is retried on the next candidate).
    public var maxAttempts = 3
    /// How long a worker may take to start a streamed answer's response.
    public var headTimeout: Duration = .seconds(15)
    /// How long one job may take in all (a non-streamed answer's head comes with its end).
    public var jobTimeout: Duration = .seconds(600)
    /// Constraints for requests that set none (before any account's).
    public var defaults = RoutingConstraints()
    public init() {}
}

/// One request as the gateway sends it to workers.
struct GatewayJob: Sendable {
    /// The worker's path (`/v1/chat/completions`, `/v1/completions`).
    var path: String
    var model: String
    var streaming: Bool
    /// The body the workers get: the client's, less the `verity` extension object.
    var body: Data
    /// The request's own constraints (the `verity` object).
    var constraints: RoutingConstraints
    /// The conversation's prefix key, so that its next turn goes where its cache is warm.
    var affinityKey: String?

    private struct Extension: Decodable {
        var verity: RoutingConstraints?
    }

    /// Reads the request's `verity` object (refusing a malformed one, naming its field) and takes
    /// it out of the body the workers get; the body passes byte for byte when it has none.
    init(path: String, model: String, streaming: Bool, body: Data, affinitySeed: String?) throws(APIError) {
        self.path = path
        self.model = model
        self.streaming = streaming
        let ext = try RequestBody.decode(Extension.self, from: body)
        constraints = ext.verity ?? RoutingConstraints()
        if ext.verity != nil, let parsed = try? JSON.parse(body) {
            self.body = Data(parsed.setting("verity", nil).serialized().utf8)
        } else {
            self.body = body
        }
        affinityKey = affinitySeed.map { Interaction.textDigest(model + "\u{0}" + $0) }
    }
}

/// A completion answered by the fleet: routed by the request's model and constraints, recorded
/// ahead in the ledger, sent to the best worker (the next on a failure before its first byte),
/// relayed to the client as the worker writes it, and recorded with the worker's checked usage
/// statement before the answer's end is sent.
struct GatewayResponder: Sendable {
    let services: GatewayServices
    let job: GatewayJob
    let interaction: Interaction
    let quota: RateLimiter.Quota
    let arrived: ContinuousClock.Instant

    var id: String { interaction.recordID }
    private var fleet: WorkerFleet { services.fleet }
    private var logger: Logger { services.logger }

    func respond(context: VerityRequestContext) async throws -> Response {
        let candidates = try route()
        do { try services.limiter.admitTokens(quota, prompt: 0) } catch { throw APIError.rateLimited(error) }
        // The write-ahead record is made while the first worker starts on the job: the worker
        // may see the prompt before the record is durable, the client sees nothing before it is
        // (the answer's head waits for it), so its fsync overlaps the worker's prefill instead
        // of adding to the time to first token.
        async let began = services.ledger.begin(interaction.record(response: "", promptTokens: 0, completionTokens: 0,
                                                                   finishReason: Interaction.interrupted, worker: Self.info(candidates[0])),
                                                sender: interaction.caller)
        var attempts = Attempts(candidates: candidates)
        let attempt = await next(&attempts)
        let entry: LedgerAppender.Entry
        do { entry = try await began } catch {
            if case .answer(let response, let candidate) = attempt {
                BodyPump(response.body, closure: nil).cancel()
                fleet.recordAbandoned(candidate.worker, now: WorkerFleet.now())
            }
            if Task.isCancelled { throw CancellationError() }
            throw APIError.ledgerUnavailable()
        }
        switch attempt {
        case .answer(let response, let candidate):
            return try await answer(response, candidate: candidate, entry: entry, attempts: attempts, context: context)
        case .refused(let status, let body):
            services.ledger.discard(entry)
            var headers: HTTPFields = [.contentType: "application/json"]
            headers[CompletionResponder.recordHeader] = id
            return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(data: body)))
        case .cancelled:
            services.ledger.discard(entry)
            throw CancellationError()
        case .exhausted:
            services.ledger.discard(entry)
            throw attempts.exhausted()
        }
    }

    /// The candidates of one request, and how its tries went.
    struct Attempts: Sendable {
        let candidates: [Candidate]
        var next = 0
        var tried = 0
        var failures: [String] = []

        /// The 503 once no candidate is left.
        func exhausted() -> APIError {
            var error = APIError(status: .serviceUnavailable,
                                 message: "No worker could answer: \(failures.isEmpty ? "every candidate was busy or its breaker open" : failures.joined(separator: "; ")).",
                                 type: "server_error", param: nil, code: "workers_unavailable")
            error.headers[.retryAfter] = "1"
            return error
        }
    }

    private enum Attempt {
        /// A worker answered 200; the answer follows.
        case answer(HTTPClientResponse, Candidate)
        /// A worker refused the request itself (400, 413, 422): its answer is the client's.
        case refused(status: Int, body: Data)
        /// The client left.
        case cancelled
        /// Every candidate within the bound failed or was busy.
        case exhausted
    }

    /// Sends the job to the next candidates until one answers, within ``GatewayRouting/maxAttempts``.
    /// The caller discards the write-ahead record when nothing will answer.
    private func next(_ attempts: inout Attempts) async -> Attempt {
        let bound = services.routing.maxAttempts
        while attempts.next < attempts.candidates.count && attempts.tried < bound {
            let candidate = attempts.candidates[attempts.next]
            attempts.next += 1
            guard fleet.beginAttempt(candidate.worker, now: WorkerFleet.now()) else { continue }
            attempts.tried += 1
            let then = attempts.tried < bound ? "trying the next" : "giving up"
            let response: HTTPClientResponse
            do {
                let tls = try services.tls.configuration(for: candidate.advert, hash: candidate.advertHash)
                response = try await services.jobs.send(
                    base: candidate.advert.endpoint, path: job.path, body: job.body, requestID: id, tls: tls,
                    extraHeaders: [(JobAuthMiddleware.advertHeader, candidate.advertHash.base64EncodedString())],
                    headTimeout: job.streaming ? services.routing.headTimeout : services.routing.jobTimeout,
                    totalTimeout: services.routing.jobTimeout)
            } catch {
                if Task.isCancelled {
                    fleet.recordAbandoned(candidate.worker, now: WorkerFleet.now())
                    return .cancelled
                }
                fleet.recordFailure(candidate.worker, now: WorkerFleet.now())
                attempts.failures.append("\(candidate.worker.short): \(error)")
                logger.warning("\(id): worker \(candidate.worker) failed before answering (\(error)); \(then)")
                continue
            }
            let status = Int(response.status.code)
            if status == 200 { return .answer(response, candidate) }
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data(buffer: $0) } ?? Data()
            if [400, 413, 422].contains(status) {
                // The request's own fault: the worker's answer is the client's.
                fleet.recordSuccess(candidate.worker, now: WorkerFleet.now())
                return .refused(status: status, body: body)
            }
            let message = (try? JSON.parse(body))?["error"]?["message"]?.stringValue ?? String(decoding: body.prefix(200), as: UTF8.self)
            if status == 429 || status == 503 {
                // Busy, not broken.
                fleet.recordAbandoned(candidate.worker, now: WorkerFleet.now())
            } else {
                fleet.recordFailure(candidate.worker, now: WorkerFleet.now())
            }
            attempts.failures.append("\(candidate.worker.short): HTTP \(status) \(message)")
            logger.warning("\(id): worker \(candidate.worker) answered HTTP \(status) (\(message)); \(then)")
        }
        return .exhausted
    }

    /// The candidates, best first; a 404 for a model no worker serves, a 503 saying which
    /// constraint or condition excluded each worker that does.
    private func route() throws(APIError) -> [Candidate] {
        var constraints = job.constraints
        if case .account(let account) = interaction.caller, let routing = account.routing { constraints = constraints.over(routing) }
        constraints = constraints.over(services.routing.defaults)
        let start = ContinuousClock.now
        let decision = fleet.candidates(model: job.model, constraints: constraints, policy: services.routing.policy,
                                        affinityKey: job.affinityKey, now: WorkerFleet.now())
        services.metrics.routed(in: ContinuousClock.now - start)
        switch decision {
        case .success(let candidates):
            return candidates
        case .failure(let none):
            if none.serving == 0 && none.conflicting.isEmpty {
                throw APIError(status: .notFound, message: "No worker serves the model '\(job.model)'; GET /v1/models lists the models the fleet serves.",
                               type: "invalid_request_error", param: "model", code: "model_not_found")
            }
            var error = APIError(status: .serviceUnavailable, message: "No worker can take this request: \(none.message)",
                                 type: "server_error", param: none.constraints.first.map { "verity.\($0)" }, code: "no_worker_available")
            if none.constraints.isEmpty { error.headers[.retryAfter] = "1" }
            throw error
        }
    }

    // MARK: The answer

    private func answer(_ response: HTTPClientResponse, candidate: Candidate, entry: LedgerAppender.Entry, attempts: Attempts,
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
    private func stream(_ body: HTTPClientResponse.Body, to writer: inout any ResponseBodyWriter, candidate: Candidate,
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

    private enum StreamOutcome {
        case done
        case clientGone
        case broken(String)
    }

    /// One worker's stream, relayed until its `[DONE]`, its failure, or the client's departure.
    /// `sent` turns true once a chunk with content (or a finish) reached the client.
    private func relayOnce(_ body: HTTPClientResponse.Body, to writer: inout any ResponseBodyWriter, relay: inout AnswerRelay, sent: inout Bool,
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

    private static func sse(_ value: JSON) -> ByteBuffer {
        ByteBuffer(string: "data: " + value.serialized() + "\n\n")
    }

    // MARK: The record

    /// Checks the worker's usage statement and records the answer with it: the `verity` stub for
    /// the answer's end, or the error to send instead (an answer the worker did not account for,
    /// or that could not be recorded).
    private func record(_ entry: LedgerAppender.Entry, candidate: Candidate, relay: AnswerRelay) async -> Result<JSON, APIError> {
        let verified: VerifiedUsageStatement
        do throws(FleetError) {
            guard let statement = relay.usageStatement else {
                throw FleetError(.notFound, "the answer carries no usage statement")
            }
            verified = try UsageStatement.verify(SignedDocument(jsonData: Data(statement.serialized().utf8)))
            try verified.check(.init(requestID: id, candidate: candidate, requestBody: job.body, responseText: relay.text))
        } catch {
            logger.warning("\(id): worker \(candidate.worker) did not account for its answer: \(error.message)")
            await end(entry, candidate: candidate, relay: relay, outcome: .failed("usage statement refused: \(error.message)"))
            return .failure(APIError(status: .badGateway, message: "The worker's answer was refused: \(error.message).",
                                     type: "server_error", param: nil, code: "worker_unaccounted"))
        }
        let usage = verified.payload
        var record = interaction.record(response: relay.text, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
                                        finishReason: relay.finishReason ?? "stop", worker: Self.info(candidate))
        record.modelDigest = candidate.model.digest ?? Self.noDigest
        record.attach(verified)
        let start = ContinuousClock.now
        let appended: LedgerNode.Appended
        do { appended = try await services.ledger.complete(entry, record) } catch {
            fleet.recordSuccess(candidate.worker, now: WorkerFleet.now())
            var failure = APIError.server("The interaction could not be recorded in the ledger, so no answer is given; "
                                          + "it is kept and written once storage is back.")
            failure.headers[CompletionResponder.recordHeader] = id
            return .failure(failure)
        }
        services.metrics.ledgerRecorded(in: ContinuousClock.now - start)
        services.metrics.tokens(model: job.model, prompt: usage.promptTokens, completion: usage.completionTokens)
        services.limiter.charge(quota, completion: usage.promptTokens + usage.completionTokens)
        fleet.recordSuccess(candidate.worker, affinityKey: job.affinityKey, now: WorkerFleet.now())
        return .success(LedgerRecorder.stub(appended).adding("served_by", ServedBy(record).json))
    }

    private enum Outcome {
        case abandoned
        case failed(String)
    }

    /// Records an answer that did not finish: what the worker sent (if anything), finish reason
    /// `cancelled` (the client left) or `failed` (the worker broke off, or its statement was
    /// refused), naming the worker and its advert but with no statement; and tells the fleet.
    private func end(_ entry: LedgerAppender.Entry, candidate: Candidate, relay: AnswerRelay?, outcome: Outcome) async {
        let now = WorkerFleet.now()
        var record = interaction.record(response: relay?.text ?? "", promptTokens: 0, completionTokens: 0,
                                        finishReason: FinishReason.cancelled.rawValue, worker: Self.info(candidate))
        record.modelDigest = candidate.model.digest ?? Self.noDigest
        record.workerID = candidate.worker.description
        record.advertHash = candidate.advertHash
        switch outcome {
        case .abandoned:
            fleet.recordAbandoned(candidate.worker, now: now)
        case .failed:
            record.finishReason = Self.failed
            fleet.recordFailure(candidate.worker, now: now)
        }
        _ = try? await services.ledger.complete(entry, record)
    }

    /// The finish reason of an answer whose worker broke off or did not account for it.
    static let failed = "failed"
    /// The digest recorded for a model an external engine serves (matched by id alone).
    static let noDigest = "none"

    /// The worker as its advert describes it (before a usage statement confirms it).
    static func info(_ candidate: Candidate) -> WorkerInfo {
        WorkerInfo(gpu: candidate.advert.hardware.gpu, provider: candidate.advert.provider,
                   pricePerHourMicros: candidate.advert.pricePerHourMicros, currency: candidate.advert.currency)
    }
}

/// An error in another server's answer.
struct RelayError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Who served an answer and what it cost, as the `verity` stub's `served_by` tells the client
/// (and the web chat shows): `{"worker", "provider", "gpu", "price_per_hour", "currency", "cost"}`,
/// prices and cost in currency units.
struct ServedBy {
    var worker: String?
    var provider: String
    var gpu: String
    var pricePerHourMicros: Int64
    var currency: String
    var costMicros: Int64?

    init(_ record: LedgerRecord) {
        worker = record.workerID
        provider = record.gpuProvider
        gpu = record.gpu
        pricePerHourMicros = record.gpuPricePerHourMicros
        currency = record.currency
        costMicros = record.costMicros
    }

    var json: JSON {
        ["worker": .optional(worker), "provider": .string(provider), "gpu": .string(gpu),
         "price_per_hour": .double(Double(pricePerHourMicros) / 1_000_000), "currency": .string(currency),
         "cost": costMicros.map { .double(Double($0) / 1_000_000) } ?? .null]
    }
}

extension WorkerID {
    /// The id's first characters, for messages.
    var short: String { String(description.prefix(10)) + "…" }
}
