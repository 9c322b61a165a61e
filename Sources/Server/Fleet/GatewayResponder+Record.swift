import Engine
import Foundation
import Ledger
import Node

extension GatewayResponder {
    // MARK: The record

    /// Checks the worker's usage statement and records the answer with it: the `verity` stub for
    /// the answer's end, or the error to send instead (an answer the worker did not account for,
    /// or that could not be recorded).
    func record(_ entry: LedgerAppender.Entry, candidate: Candidate, relay: AnswerRelay) async -> Result<JSON, APIError> {
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
        var interaction = self.interaction
        if relay.choices > 1 { interaction.parameters.extra["finish_reasons"] = JSON.array(relay.choiceFinishReasons.map { .string($0) }).serialized() }
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

    enum Outcome {
        case abandoned
        case failed(String)
    }

    /// Records an answer that did not finish: what the worker sent (if anything), finish reason
    /// `cancelled` (the client left) or `failed` (the worker broke off, or its statement was
    /// refused), naming the worker and its advert but with no statement; and tells the fleet.
    func end(_ entry: LedgerAppender.Entry, candidate: Candidate, relay: AnswerRelay?, outcome: Outcome) async {
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
