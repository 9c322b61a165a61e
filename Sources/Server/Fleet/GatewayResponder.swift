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
    var fleet: WorkerFleet { services.fleet }
    var logger: Logger { services.logger }

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

    enum Attempt {
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
    func next(_ attempts: inout Attempts) async -> Attempt {
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
    func route() throws(APIError) -> [Candidate] {
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
