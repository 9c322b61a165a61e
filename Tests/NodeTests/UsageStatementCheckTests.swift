import Crypto
import Foundation
import Ledger
import Testing
@testable import Node

@Suite("Usage statements: the gateway's check and the ledger record")
struct UsageStatementCheckTests {
    typealias H = FleetHarness
    static let body = Data(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.utf8)
    static let text = "Hello!"

    /// A fleet with one worker, its candidate, and the statement it would sign for `chatcmpl-1`.
    func setup() throws -> (H, WorkerKey, Candidate, UsageStatement) {
        let h = try H()
        let key = try h.worker()
        try h.ingest(H.advert(key), key)
        let candidate = try #require(try h.fleet.candidates(model: "m", now: H.t0).get().first)
        let statement = UsageStatement(
            requestID: "chatcmpl-1", worker: key.id, advertHash: candidate.advertHash, modelID: "m", modelDigest: H.digestA,
            promptSHA256: Data(SHA256.hash(data: Self.body)), responseSHA256: Data(SHA256.hash(data: Data(Self.text.utf8))),
            promptTokens: 12, completionTokens: 3, startedMilliseconds: H.t0, finishedMilliseconds: H.t0 + 900,
            gpu: "NVIDIA H100 80GB HBM3", provider: "lambda", pricePerHourMicros: 2_000_000, currency: "USD")
        return (h, key, candidate, statement)
    }

    @Test func aTruthfulStatementPassesAndFillsTheRecord() throws {
        let (h, key, candidate, statement) = try setup()
        defer { h.close() }
        let verified = try UsageStatement.verify(try statement.sign(with: key))
        try verified.check(.init(requestID: "chatcmpl-1", candidate: candidate, requestBody: Self.body, responseText: Self.text))

        var record = LedgerRecord(recordID: "chatcmpl-1", timestampMilliseconds: H.t0, gpu: "cpu", gpuProvider: "none",
                                  gpuPricePerHourMicros: 0, modelID: "m", modelDigest: H.digestA, parameters: ModelParameters(),
                                  prompt: "hi", response: Self.text, senderAddress: "anonymous", finishReason: "stop")
        record.attach(verified)
        #expect(record.gpu == "NVIDIA H100 80GB HBM3" && record.gpuProvider == "lambda" && record.gpuPricePerHourMicros == 2_000_000)
        #expect(record.workerID == key.id.description && record.advertHash == candidate.advertHash)
        #expect(record.costMicros == 500)   // 2.00/h × 0.9 s
        #expect(record.promptTokens == 12 && record.completionTokens == 3)
        // The record goes through its canonical encoding and still verifies offline.
        let reread = try LedgerRecord(canonicalBytes: try record.canonicalBytes())
        #expect(try reread.verifyUsageStatement().payload == statement)
    }

    /// Each lie is caught and named.
    @Test(arguments: ["request_id", "advert_sha256", "model_digest", "gpu", "provider", "price_per_hour_micros", "currency",
                      "prompt_sha256", "response_sha256"])
    func aStatementThatDiffersFromTheRequestIsRefused(field: String) throws {
        let (h, key, candidate, truthful) = try setup()
        defer { h.close() }
        var s = truthful
        switch field {
        case "request_id": s.requestID = "chatcmpl-2"
        case "advert_sha256": s.advertHash = Data(repeating: 0, count: 32)
        case "model_digest": s.modelDigest = H.digestB
        case "gpu": s.gpu = "NVIDIA B200"
        case "provider": s.provider = "cheap-cloud"
        case "price_per_hour_micros": s.pricePerHourMicros = 1
        case "currency": s.currency = "EUR"
        case "prompt_sha256": s.promptSHA256 = Data(repeating: 0, count: 32)
        case "response_sha256": s.responseSHA256 = Data(repeating: 0, count: 32)
        default: Issue.record("unknown field \(field)")
        }
        let verified = try UsageStatement.verify(try s.sign(with: key))
        let error = try #require(throws: FleetError.self) {
            try verified.check(.init(requestID: "chatcmpl-1", candidate: candidate, requestBody: Self.body, responseText: Self.text))
        }
        #expect(error.code == .usageMismatch)
        #expect(error.message.contains(" says \(field) "), "\(error.message)")
    }

    @Test func aRecordsStatementFailsOfflineWhenAnyPartIsAltered() throws {
        let (h, key, _, statement) = try setup()
        defer { h.close() }
        let document = try statement.sign(with: key)
        var record = LedgerRecord(recordID: "chatcmpl-1", timestampMilliseconds: H.t0, gpu: "", gpuProvider: "", gpuPricePerHourMicros: 0,
                                  modelID: "m", modelDigest: H.digestA, parameters: ModelParameters(), prompt: "", response: "",
                                  senderAddress: "anonymous", finishReason: "stop")
        record.attach(try UsageStatement.verify(document))
        #expect(throws: Never.self) { try record.verifyUsageStatement() }
        var altered = record
        altered.usageStatement![10] ^= 1
        #expect(try #require(throws: FleetError.self) { try altered.verifyUsageStatement() }.code == .badSignature)
        altered = record
        altered.workerID = WorkerKey().id.description
        #expect(throws: FleetError.self) { try altered.verifyUsageStatement() }
        altered = record
        altered.recordID = "chatcmpl-9"
        #expect(try #require(throws: FleetError.self) { try altered.verifyUsageStatement() }.code == .usageMismatch)
        altered = record
        altered.usageSignature = nil
        #expect(try #require(throws: FleetError.self) { try altered.verifyUsageStatement() }.code == .notFound)
    }
}
