import Engine
import Foundation
import Ledger
import Node

/// What one answer's record is while it is being made: the ledger's write-ahead entry (where this
/// server keeps a ledger), and when the answer started.
struct AnswerHandle: Sendable {
    var entry: LedgerAppender.Entry?
    var startedMilliseconds: Int64
}

/// Where an answer is recorded. `verity serve` and a gateway's own answers go to the ledger
/// (``LedgerRecorder``); a worker's go to its gateway, as a signed usage statement
/// (``UsageStatementSigner``) that the gateway verifies and puts in its ledger.
protocol AnswerRecorder: Sendable {
    /// How often an answer being made reports its progress (``progress(_:_:response:promptTokens:completionTokens:)``).
    var progressInterval: Duration { get }
    /// Before the answer's first token (and before generation starts): a refusal is a 503.
    func begin(_ interaction: Interaction, promptTokens: Int) async throws(APIError) -> AnswerHandle
    /// The answer so far, every ``LedgerConfiguration/partialFlushInterval`` at most.
    func progress(_ handle: AnswerHandle, _ interaction: Interaction, response: String, promptTokens: Int, completionTokens: Int)
    /// The request was refused after ``begin(_:promptTokens:)`` (a full queue): forget it.
    func discard(_ handle: AnswerHandle)
    /// The finished answer, recorded before its end is sent; returns the field added to the
    /// answer's last chunk (or body): the ledger's `verity` receipt stub, or a worker's signed
    /// `verity_usage` statement.
    /// - Throws: A 500 ``APIError`` if it cannot be recorded (a response that is not recorded is
    ///   not given).
    func complete(_ handle: AnswerHandle, _ interaction: Interaction, response: String,
                  summary: GenerationSummary) async throws(APIError) -> (key: String, value: JSON)
    /// An answer that did not finish (the client left, generation failed); nobody waits for it.
    func abandon(_ handle: AnswerHandle, _ interaction: Interaction, response: String, promptTokens: Int, completionTokens: Int) async
}

/// Answers recorded in this server's ledger: a write-ahead record before the first token, the
/// completed record before the last.
struct LedgerRecorder: AnswerRecorder {
    let ledger: LedgerAppender
    let metrics: ServerMetrics

    var progressInterval: Duration { ledger.configuration.partialFlushInterval }

    func begin(_ interaction: Interaction, promptTokens: Int) async throws(APIError) -> AnswerHandle {
        do {
            let entry = try await ledger.begin(interaction.record(response: "", promptTokens: promptTokens, completionTokens: 0,
                                                                  finishReason: Interaction.interrupted, worker: ledger.worker),
                                               sender: interaction.caller)
            return AnswerHandle(entry: entry, startedMilliseconds: Interaction.now())
        } catch {
            throw APIError.ledgerUnavailable()
        }
    }

    func progress(_ handle: AnswerHandle, _ interaction: Interaction, response: String, promptTokens: Int, completionTokens: Int) {
        guard let entry = handle.entry else { return }
        ledger.update(entry, interaction.record(response: response, promptTokens: promptTokens, completionTokens: completionTokens,
                                                finishReason: Interaction.interrupted, worker: ledger.worker))
    }

    func discard(_ handle: AnswerHandle) {
        if let entry = handle.entry { ledger.discard(entry) }
    }

    func complete(_ handle: AnswerHandle, _ interaction: Interaction, response: String,
                  summary: GenerationSummary) async throws(APIError) -> (key: String, value: JSON) {
        let record = interaction.record(response: response, promptTokens: summary.promptTokens, completionTokens: summary.completionTokens,
                                        finishReason: summary.finishReason.rawValue, worker: ledger.worker)
        let start = ContinuousClock.now
        guard let entry = handle.entry, let appended = try? await ledger.complete(entry, record) else {
            var failure = APIError.server("The interaction could not be recorded in the ledger, so no answer is given; "
                                          + "it is kept and written once storage is back.")
            failure.headers[CompletionResponder.recordHeader] = interaction.recordID
            throw failure
        }
        metrics.ledgerRecorded(in: ContinuousClock.now - start)
        return ("verity", Self.stub(appended))
    }

    func abandon(_ handle: AnswerHandle, _ interaction: Interaction, response: String, promptTokens: Int, completionTokens: Int) async {
        guard let entry = handle.entry else { return }
        let record = interaction.record(response: response, promptTokens: promptTokens, completionTokens: completionTokens,
                                        finishReason: FinishReason.cancelled.rawValue, worker: ledger.worker)
        _ = try? await ledger.complete(entry, record)
    }

    /// A response's `verity` object: `{"record_id", "leaf_index", "leaf_hash" (base64), "receipt_url"}`.
    static func stub(_ appended: LedgerNode.Appended) -> JSON {
        ["record_id": .string(appended.recordID), "leaf_index": .int(Int(appended.leafIndex)),
         "leaf_hash": .string(appended.leafHash.base64EncodedString()),
         "receipt_url": .string("/v1/ledger/records/\(appended.recordID)/receipt")]
    }
}
