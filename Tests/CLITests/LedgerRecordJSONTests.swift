import Foundation
import Ledger
import Node
import Testing
@testable import VerityCLI

/// What `verity ledger decrypt` prints for a record served by a fleet worker.
@Suite("verity ledger decrypt: the serving worker")
struct LedgerRecordJSONTests {
    static func record(worker key: WorkerKey) throws -> LedgerRecord {
        let statement = UsageStatement(
            requestID: "chatcmpl-1", worker: key.id, advertHash: Data(repeating: 7, count: 32), modelID: "m", modelDigest: nil,
            promptSHA256: Data(repeating: 1, count: 32), responseSHA256: Data(repeating: 2, count: 32), promptTokens: 4,
            completionTokens: 2, startedMilliseconds: 1_000, finishedMilliseconds: 4_600, gpu: "NVIDIA L4", provider: "acme",
            pricePerHourMicros: 1_000_000, currency: "USD")
        var record = LedgerRecord(recordID: "chatcmpl-1", timestampMilliseconds: 1_000, gpu: "cpu", gpuProvider: "none",
                                  gpuPricePerHourMicros: 0, modelID: "m", modelDigest: "none", parameters: ModelParameters(),
                                  prompt: "hi", response: "ok", senderAddress: "anonymous", finishReason: "stop")
        record.attach(try UsageStatement.verify(try statement.sign(with: key)))
        return record
    }

    func object(_ record: LedgerRecord) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(record.json.serialized().utf8)) as? [String: Any])
    }

    @Test func theWorkerPriceCostAndAVerifiedStatementAreShown() throws {
        let key = WorkerKey()
        let json = try object(try Self.record(worker: key))
        #expect(json["worker"] as? String == key.id.description)
        #expect(json["gpu_provider"] as? String == "acme" && json["gpu"] as? String == "NVIDIA L4")
        #expect(json["gpu_price_per_hour"] as? Double == 1)
        #expect(json["cost_micros"] as? Int == 1_000 && json["cost"] as? Double == 0.001)   // 1.00/h × 3.6 s
        let usage = try #require(json["usage_statement"] as? [String: Any])
        #expect(usage["verified"] as? Bool == true)
        #expect((usage["payload"] as? String)?.contains("\"request_id\":\"chatcmpl-1\"") == true)
    }

    @Test func aTamperedStatementIsShownAsNotVerified() throws {
        var record = try Self.record(worker: WorkerKey())
        record.usageStatement![5] ^= 1
        let usage = try #require(try object(record)["usage_statement"] as? [String: Any])
        #expect(usage["verified"] as? Bool == false)
        #expect((usage["error"] as? String)?.contains("does not verify") == true)
    }

    @Test func aRecordOfTheServersOwnEngineHasNullFleetFields() throws {
        let record = LedgerRecord(recordID: "r", timestampMilliseconds: 0, gpu: "cpu", gpuProvider: "none", gpuPricePerHourMicros: 0,
                                  modelID: "m", modelDigest: "sha256:00", parameters: ModelParameters(), prompt: "", response: "",
                                  senderAddress: "S", finishReason: "stop")
        let json = try object(record)
        for key in ["worker", "advert_sha256", "cost", "cost_micros", "usage_statement"] { #expect(json[key] is NSNull, "\(key)") }
    }
}
