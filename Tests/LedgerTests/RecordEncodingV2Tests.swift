import Crypto
import Foundation
import Testing
@testable import Ledger

/// The "VLR2" encoding (a record served by a fleet worker), pinned by vectors generated from the
/// format description by `Fixtures/make_vectors.py` (CPython 3.11 `struct`, `cryptography` 48.0.0).
@Suite("Record canonical encoding, version 2")
struct RecordEncodingV2Tests {
    /// The RFC 8032 §7.1 TEST 1 key's worker id (version byte 0x6A).
    static let workerID = "4agkdHEMddgEqnahmCvbDTRo4RshS9nkh4uocZysuykKtxy8FeX"
    static let usage = Data(#"{"request_id":"req-0001","type":"verity.usage.v1"}"#.utf8)
    static let signature = Data(hex: "1c1ce817b728696f6079811222d624c403767743937234030fa339f758e733990c02bbbd1b3e9fe36ddd079bccd1536cda6ce68361f9185eb612dd05"
                                + "79f5c30d")

    /// The "full" record with every fleet field (the "fleet" vector).
    static var fleetRecord: LedgerRecord {
        var record = Fixtures.fullRecord
        record.workerID = workerID
        record.advertHash = Data(SHA256.hash(data: Data("advert".utf8)))
        record.usageStatement = usage
        record.usageSignature = signature
        record.costMicros = 2_424
        return record
    }

    static let fleetHex =
        "564c5232000000087265712d303030310000019b76daa87b0000000b4e56494449412048323030000000066c616d62646100000000003540d0000000"
        + "03555344000000156c6c616d612d332e322d31622d696e737472756374000000477368613235363a6162616261626162616261626162616261626162"
        + "616261626162616261626162616261626162616261626162616261626162616261626162616261626162616201000000477368613235363a63646364"
        + "636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364"
        + "013fe6666666666666013fee66666666666601000000000000002801000000000000010001000000000000002a00000002000000056d696e5f700000"
        + "0004302e30350000000473746f70000000020a0a010000000e596f75206172652074657273652e0000000f48c3a96c6c6f2c2077c3b6726c643f0000"
        + "000348692e0000000653454e44455201000000000000000c0100000000000000030000000473746f7001000000333461676b6448454d64646745716e"
        + "61686d4376624454526f3452736853396e6b6834756f635a797375796b4b7478793846655801a64463d76711f306bb55c0a28fa954bc39fae2984479"
        + "0228063775ee89c5144801000000327b22726571756573745f6964223a227265712d30303031222c2274797065223a227665726974792e7573616765"
        + "2e7631227d01000000401c1ce817b728696f6079811222d624c403767743937234030fa339f758e733990c02bbbd1b3e9fe36ddd079bccd1536cda6c"
        + "e68361f9185eb612dd0579f5c30d010000000000000978"
    /// The "minimal" record with only a cost of -1 (the "cost-only" vector).
    static let costOnlyHex =
        "564c52320000000172000000000000000000000003637075000000046e6f6e65000000000000000000000003555344000000016d0000000973686132"
        + "35363a303000000000000000000000000000000000000000000000015300000000000963616e63656c6c65640000000001ffffffffffffffff"

    @Test func fleetRecordMatchesTheKnownAnswer() throws {
        let bytes = try Self.fleetRecord.canonicalBytes()
        #expect(bytes.hex == Self.fleetHex)
        #expect(bytes.count == 623)
        #expect(try LedgerRecord(canonicalBytes: bytes) == Self.fleetRecord)
    }

    @Test func oneFleetFieldIsEnoughForVersion2() throws {
        var record = Fixtures.minimalRecord
        record.costMicros = -1
        let bytes = try record.canonicalBytes()
        #expect(bytes.hex == Self.costOnlyHex)
        #expect(try LedgerRecord(canonicalBytes: bytes) == record)
    }

    /// `verity serve`'s records have no fleet fields; their bytes (and so their leaves) must not change.
    @Test func recordsWithoutFleetFieldsStayVersion1() throws {
        #expect(!Fixtures.fullRecord.hasFleetFields)
        #expect(try Fixtures.fullRecord.canonicalBytes().prefix(4) == Data("VLR1".utf8))
        #expect(try Self.fleetRecord.canonicalBytes().prefix(4) == Data("VLR2".utf8))
    }

    /// The same record relabelled "VLR2" with five absent fleet fields would be a second encoding.
    @Test func version2WithoutFleetFieldsIsRejected() throws {
        var bytes = try Fixtures.minimalRecord.canonicalBytes()
        bytes[3] = 0x32
        bytes.append(contentsOf: [0, 0, 0, 0, 0])
        let error = try #require(throws: LedgerError.self) { try LedgerRecord(canonicalBytes: bytes) }
        #expect(error.code == .malformed)
        // And a VLR1 record may not carry them.
        var v1 = try Self.fleetRecord.canonicalBytes()
        v1[3] = 0x31
        #expect(throws: LedgerError.self) { try LedgerRecord(canonicalBytes: v1) }
    }

    @Test(arguments: [0, 31, 33, 64])
    func anAdvertHashMustBe32Bytes(count: Int) {
        var record = Fixtures.minimalRecord
        record.advertHash = Data(repeating: 7, count: count)
        #expect(throws: LedgerError.self) { try record.canonicalBytes() }
    }

    @Test func everyTruncationAndTrailingByteIsRejected() throws {
        let bytes = try Self.fleetRecord.canonicalBytes()
        for n in 0..<bytes.count {
            #expect(throws: LedgerError.self, "prefix of \(n) bytes decoded") { try LedgerRecord(canonicalBytes: bytes.prefix(n)) }
        }
        #expect(throws: LedgerError.self) { try LedgerRecord(canonicalBytes: bytes + [0]) }
    }

    @Test func everyByteFlipIsRejectedOrChangesTheRecord() throws {
        let bytes = try Self.fleetRecord.canonicalBytes()
        for i in 0..<bytes.count {
            let mutated = bytes.flipping(i)
            if let record = try? LedgerRecord(canonicalBytes: mutated) {
                #expect(record != Self.fleetRecord, "byte \(i)")
                #expect(try record.canonicalBytes() == mutated, "byte \(i) decoded non-canonically")
            }
        }
    }

    /// A fleet record survives sealing and opening like any other.
    @Test func aFleetRecordSealsAndOpens() throws {
        let sender = Account()
        let envelope = try RecordEnvelope.seal(Self.fleetRecord, to: [sender.recipientKey], nodeID: "node-1")
        let reread = try RecordEnvelope(canonicalBytes: try envelope.canonicalBytes())
        #expect(try sender.open(reread) == Self.fleetRecord)
    }
}
