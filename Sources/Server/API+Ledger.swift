import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Ledger

/// Recording completions in the ledger, and the receipt stub every completion response carries.
extension API {
    /// Records a finished completion durably and returns the response's `verity` object:
    /// `{"record_id", "leaf_index", "leaf_hash" (base64), "receipt_url"}`.
    /// - Throws: A 500 ``APIError`` if the record cannot be stored: a response that is not
    ///   recorded is not given.
    func record(_ job: Job, response: String, summary: BatchScheduler.Summary) async throws(APIError) -> JSON {
        let record = job.interaction.record(response: response, promptTokens: summary.promptTokens,
                                            completionTokens: summary.completionTokens, finishReason: summary.finishReason,
                                            worker: ledger.worker)
        let appended: LedgerNode.Appended
        let start = ContinuousClock.now
        do { appended = try await ledger.record(record, sender: job.interaction.caller) } catch {
            throw APIError.server("The interaction could not be recorded in the ledger: \(error)")
        }
        metrics.ledgerRecorded(in: ContinuousClock.now - start)
        return ["record_id": .string(appended.recordID), "leaf_index": .int(Int(appended.leafIndex)),
                "leaf_hash": .string(appended.leafHash.base64EncodedString()),
                "receipt_url": .string("/v1/ledger/records/\(appended.recordID)/receipt")]
    }

    /// Records a stream the client left: the text generated so far, finish reason `cancelled`.
    /// Nothing is acknowledged to anyone, so a failure is only logged.
    func recordCancelled(_ job: Job, response: String, completionTokens: Int) async {
        let record = job.interaction.record(response: response, promptTokens: job.promptTokens,
                                            completionTokens: completionTokens, finishReason: .cancelled, worker: ledger.worker)
        do { _ = try await ledger.record(record, sender: job.interaction.caller) } catch {
            ledger.logger.error("ledger: cannot record cancelled \(job.id): \(error)")
        }
    }

    /// Adds the `X-Verity-Record: <record id>` header.
    func receiptHeader(_ job: Job, _ response: Response) -> Response {
        var response = response
        response.headers[Self.recordHeader] = job.id
        return response
    }

    static let recordHeader = HTTPField.Name("X-Verity-Record")!
}

extension JSON {
    /// This object with one more field at the end.
    func adding(_ key: String, _ value: JSON) -> JSON {
        guard case .object(let fields) = self else { return self }
        return .object(fields + [(key, value)])
    }
}
