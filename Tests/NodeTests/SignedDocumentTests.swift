import Crypto
import Foundation
import Testing
@testable import Node

@Suite("Signed documents: adverts, heartbeats, usage statements")
struct SignedDocumentTests {
    let key = WorkerKey()
    var advert: Advert { FleetHarness.advert(key) }

    var usage: UsageStatement {
        UsageStatement(requestID: "chatcmpl-1", worker: key.id, advertHash: Data(repeating: 1, count: 32), modelID: "m",
                       modelDigest: FleetHarness.digestA, promptSHA256: Data(repeating: 2, count: 32),
                       responseSHA256: Data(repeating: 3, count: 32), promptTokens: 10, completionTokens: 5,
                       startedMilliseconds: FleetHarness.t0, finishedMilliseconds: FleetHarness.t0 + 1_800,
                       gpu: "NVIDIA H100 80GB HBM3", provider: "lambda", pricePerHourMicros: 2_000_000, currency: "USD")
    }

    @Test func anAdvertSurvivesTheWireAndItsHashIsThePayloadsSHA256() throws {
        let document = try advert.sign(with: key)
        let received = try SignedDocument(jsonData: document.jsonData())
        #expect(received == document)
        #expect(received.hash == Data(SHA256.hash(data: document.payload)))
        let verified = try Advert.verify(received, now: FleetHarness.t0)
        #expect(verified.payload == advert)
        #expect(verified.worker == key.id)
        // The payload is plain JSON with the documented names.
        let object = try #require(try JSONSerialization.jsonObject(with: document.payload) as? [String: Any])
        #expect(Set(object.keys) == ["type", "worker", "endpoint", "models", "hardware", "provider", "price_per_hour_micros",
                                     "currency", "region", "capacity", "version", "issued_ms", "expires_ms"])
        #expect(object["type"] as? String == "verity.advert.v1")
    }

    @Test func everyFlippedPayloadByteBreaksTheSignature() throws {
        let document = try advert.sign(with: key)
        for i in stride(from: 0, to: document.payload.count, by: 7) {
            var payload = document.payload
            payload[i] ^= 0x01
            let forged = SignedDocument(payload: payload, signature: document.signature, worker: key.id)
            let error = try #require(throws: FleetError.self) { try Advert.verify(forged) }
            #expect(error.code == .badSignature, "byte \(i)")
        }
    }

    @Test func aDocumentClaimingAnotherSignerFails() throws {
        let document = try advert.sign(with: key)
        let other = WorkerKey()
        let claimed = SignedDocument(payload: document.payload, signature: document.signature, worker: other.id)
        #expect(throws: FleetError.self) { try Advert.verify(claimed) }
        // Signed by the other worker, but the payload names the first: a worker mismatch.
        let resigned = SignedDocument(payload: document.payload, signature: try other.signature(for: document.payload), worker: other.id)
        let error = try #require(throws: FleetError.self) { try Advert.verify(resigned) }
        #expect(error.code == .workerMismatch)
        // And `sign` refuses another worker's key outright.
        #expect(throws: FleetError.self) { try advert.sign(with: other) }
    }

    @Test func aHeartbeatIsNotAnAdvertNorAUsageStatement() throws {
        let beat = Heartbeat(worker: key.id, sentMilliseconds: FleetHarness.t0, active: 1, queued: 0, tokensPerSecond: 12.5,
                             advertHash: Data(repeating: 9, count: 32))
        let document = try beat.sign(with: key)
        #expect(try Heartbeat.verify(document).payload == beat)
        #expect(try #require(throws: FleetError.self) { try Advert.verify(document) }.code == .malformed)
        #expect(try #require(throws: FleetError.self) { try UsageStatement.verify(document) }.code == .malformed)
    }

    @Test func anAdvertStandsOnlyBetweenIssueMinusSkewAndExpiry() throws {
        let document = try advert.sign(with: key)
        let t0 = FleetHarness.t0
        #expect(throws: Never.self) { try Advert.verify(document, now: t0 + 299_999) }
        #expect(try #require(throws: FleetError.self) { try Advert.verify(document, now: t0 + 300_000) }.code == .expired)
        #expect(throws: Never.self) { try Advert.verify(document, now: t0 - 60_000) }
        #expect(try #require(throws: FleetError.self) { try Advert.verify(document, now: t0 - 60_001) }.code == .notYetValid)
    }

    @Test func aHeartbeatMustBeRecent() throws {
        let beat = Heartbeat(worker: key.id, sentMilliseconds: FleetHarness.t0, active: 0, queued: 0, tokensPerSecond: 0,
                             advertHash: Data(repeating: 9, count: 32))
        let document = try beat.sign(with: key)
        let t0 = FleetHarness.t0
        #expect(try #require(throws: FleetError.self) { try Heartbeat.verify(document, now: t0 + 15_001, maxAge: .seconds(15)) }.code == .expired)
        #expect(try #require(throws: FleetError.self) { try Heartbeat.verify(document, now: t0 - 60_001, maxAge: .seconds(15)) }.code == .notYetValid)
        #expect(throws: Never.self) { try Heartbeat.verify(document, now: t0 + 15_000, maxAge: .seconds(15)) }
    }

    /// Each case breaks one field; `sign` and `verify` both refuse it as malformed.
    @Test(arguments: [
        "endpoint", "scheme", "pin", "no models", "twin models", "bad digest", "hf without digest", "source", "context",
        "gpu count", "price", "currency", "capacity", "expiry", "control character", "twin adapters",
        "pin without certificate", "certificate without pin", "certificate over http", "huge certificate",
    ])
    func malformedAdvertsAreRefused(field: String) throws {
        var a = advert
        switch field {
        case "endpoint": a.endpoint = "not a url"
        case "scheme": a.endpoint = "ftp://host/"
        case "pin": a.tlsSPKISHA256 = Data(repeating: 0, count: 31)
        case "pin without certificate":
            a.endpoint = "https://gpu1.example:8443"
            a.tlsSPKISHA256 = Data(repeating: 0, count: 32)
        case "certificate without pin":
            a.endpoint = "https://gpu1.example:8443"
            a.tlsCertificate = Data(repeating: 1, count: 400)
        case "certificate over http":
            a.endpoint = "http://gpu1.example:8443"
            a.tlsSPKISHA256 = Data(repeating: 0, count: 32)
            a.tlsCertificate = Data(repeating: 1, count: 400)
        case "huge certificate":
            a.endpoint = "https://gpu1.example:8443"
            a.tlsSPKISHA256 = Data(repeating: 0, count: 32)
            a.tlsCertificate = Data(repeating: 1, count: Advert.maxCertificateBytes + 1)
        case "no models": a.models = []
        case "twin models": a.models = [a.models[0], a.models[0]]
        case "bad digest": a.models[0].digest = "sha256:" + String(repeating: "A", count: 64)
        case "hf without digest": a.models[0].digest = nil
        case "source": a.models[0].source = "s3://bucket/model"
        case "context": a.models[0].contextLength = 0
        case "gpu count": a.hardware.gpuCount = -1
        case "price": a.pricePerHourMicros = -1
        case "currency": a.currency = "usd"
        case "capacity": a.capacity = 0
        case "expiry": a.expiresMilliseconds = a.issuedMilliseconds
        case "control character": a.provider = "lambda\u{0}"
        case "twin adapters": a.models[0].adapters = ["x", "x"]
        default: Issue.record("unknown case \(field)")
        }
        #expect(try #require(throws: FleetError.self) { try a.sign(with: key) }.code == .malformed)
        // Signed anyway (by hand), verification refuses it too.
        let encoder = JSONEncoder()
        var object = try #require(try JSONSerialization.jsonObject(with: try encoder.encode(a)) as? [String: Any])
        object["type"] = Advert.documentType
        let payload = try JSONSerialization.data(withJSONObject: object)
        let document = SignedDocument(payload: payload, signature: try key.signature(for: payload), worker: key.id)
        #expect(try #require(throws: FleetError.self) { try Advert.verify(document) }.code == .malformed)
    }

    @Test func anUpstreamModelMayOmitItsDigest() throws {
        var a = advert
        a.models = [Advert.Model(id: "qwen", source: "upstream:qwen", digest: nil, contextLength: 32_768)]
        let verified = try Advert.verify(try a.sign(with: key))
        #expect(verified.payload.models[0].digest == nil)
    }

    @Test(arguments: [
        Data(), Data("null".utf8), Data("{}".utf8), Data(#"{"payload":"!!","signature":"","worker":"x"}"#.utf8),
        Data(#"{"payload":"e30=","signature":"AAAA","worker":"4agkdHEMddgEqnahmCvbDTRo4RshS9nkh4uocZysuykKtxy8FeX"}"#.utf8),
        Data(repeating: 0x20, count: SignedDocument.maxBytes + 1),
    ])
    func malformedWrappersAreRefused(bytes: Data) {
        #expect(throws: FleetError.self) { try SignedDocument(jsonData: bytes) }
    }

    @Test func aUsageStatementRoundTripsAndCostsPriceTimesDuration() throws {
        let verified = try UsageStatement.verify(try usage.sign(with: key))
        #expect(verified.payload == usage)
        // 2.00/h for 1.8 s = 0.001 = 1000 micros.
        #expect(usage.costMicros == 1_000)
    }

    @Test(arguments: [(Int64(3_600_000), Int64(1_000), Int64(1_000)), (1_000, 1_799, 0), (1_000, 1_800, 1), (1, 1_800, 0), (1_000_000_000_000, 604_800_000, 168_000_000_000_000)])
    func costRoundsToTheNearestMicro(price: Int64, milliseconds: Int64, expected: Int64) {
        var s = usage
        s.pricePerHourMicros = price
        s.finishedMilliseconds = s.startedMilliseconds + milliseconds
        #expect(s.costMicros == expected)
    }
}
