import Foundation
import Testing
@testable import Ledger

/// The canonical "VLR1" encoding, pinned by vectors generated independently from the format
/// description by `Fixtures/make_vectors.py` (CPython 3.11 `struct`).
@Suite("Record canonical encoding")
struct RecordEncodingTests {
    static let fullHex =
        "564c5231000000087265712d303030310000019b76daa87b0000000b4e56494449412048323030000000066c616d62646100000000003540d0000000"
        + "03555344000000156c6c616d612d332e322d31622d696e737472756374000000477368613235363a6162616261626162616261626162616261626162"
        + "616261626162616261626162616261626162616261626162616261626162616261626162616261626162616201000000477368613235363a63646364"
        + "636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364"
        + "013fe6666666666666013fee66666666666601000000000000002801000000000000010001000000000000002a00000002000000056d696e5f700000"
        + "0004302e30350000000473746f70000000020a0a010000000e596f75206172652074657273652e0000000f48c3a96c6c6f2c2077c3b6726c643f0000"
        + "000348692e0000000653454e44455201000000000000000c0100000000000000030000000473746f70"
    static let minimalHex =
        "564c52310000000172000000000000000000000003637075000000046e6f6e65000000000000000000000003555344000000016d0000000973686132"
        + "35363a303000000000000000000000000000000000000000000000015300000000000963616e63656c6c6564"

    @Test func fullRecordMatchesTheKnownAnswer() throws {
        let bytes = try Fixtures.fullRecord.canonicalBytes()
        #expect(bytes.hex == Self.fullHex)
        #expect(bytes.count == 401)
        #expect(try LedgerRecord(canonicalBytes: bytes) == Fixtures.fullRecord)
    }

    @Test func minimalRecordMatchesTheKnownAnswer() throws {
        let bytes = try Fixtures.minimalRecord.canonicalBytes()
        #expect(bytes.hex == Self.minimalHex)
        #expect(try LedgerRecord(canonicalBytes: bytes) == Fixtures.minimalRecord)
    }

    @Test func extraParameterOrderDoesNotChangeTheBytes() throws {
        var a = Fixtures.minimalRecord, b = Fixtures.minimalRecord
        a.parameters.extra = ["z": "1", "a": "2", "é": "3", "Z": "4"]
        b.parameters.extra = ["é": "3", "Z": "4", "a": "2", "z": "1"]
        #expect(try a.canonicalBytes() == b.canonicalBytes())
    }

    @Test func everyTruncationAndTrailingByteIsRejected() throws {
        let bytes = try Fixtures.fullRecord.canonicalBytes()
        for n in 0..<bytes.count {
            #expect(throws: LedgerError.self, "prefix of \(n) bytes decoded") { try LedgerRecord(canonicalBytes: bytes.prefix(n)) }
        }
        #expect(throws: LedgerError.self) { try LedgerRecord(canonicalBytes: bytes + [0]) }
    }

    /// A decoder that accepted two encodings of one record would let a leaf change without its
    /// record changing; every byte flip either fails to decode or decodes to another record.
    @Test func everyByteFlipIsRejectedOrChangesTheRecord() throws {
        let bytes = try Fixtures.fullRecord.canonicalBytes()
        for i in 0..<bytes.count {
            let mutated = bytes.flipping(i)
            if let record = try? LedgerRecord(canonicalBytes: mutated) {
                #expect(record != Fixtures.fullRecord, "byte \(i)")
                #expect(try record.canonicalBytes() == mutated, "byte \(i) decoded non-canonically")
            }
        }
    }

    @Test func nonCanonicalInputsAreRejected() throws {
        // Extra keys out of order: swap the two (key, value) pairs.
        var unsorted = Fixtures.minimalRecord
        unsorted.parameters.extra = ["a": "1", "b": "2"]
        var bytes = try unsorted.canonicalBytes()
        let pairA = Data([0, 0, 0, 1, 0x61, 0, 0, 0, 1, 0x31]), pairB = Data([0, 0, 0, 1, 0x62, 0, 0, 0, 1, 0x32])
        let range = try #require(bytes.range(of: pairA + pairB))
        bytes.replaceSubrange(range, with: pairB + pairA)
        #expect(throws: LedgerError.self) { try LedgerRecord(canonicalBytes: bytes) }
        // A presence byte of 2: chatTemplateHash's is at offset 65 of the minimal record.
        var presence = try Fixtures.minimalRecord.canonicalBytes()
        #expect(presence[65] == 0)
        presence[65] = 2
        #expect(throws: LedgerError.self) { try LedgerRecord(canonicalBytes: presence) }
    }

    @Test func nonFiniteParametersCannotBeEncoded() {
        var r = Fixtures.minimalRecord
        r.parameters.temperature = .nan
        #expect(throws: LedgerError.self) { try r.canonicalBytes() }
        r.parameters.temperature = .infinity
        #expect(throws: LedgerError.self) { try r.canonicalBytes() }
    }

    @Test func invalidUTF8IsRejected() throws {
        var bytes = try Fixtures.minimalRecord.canonicalBytes()
        // recordID "r" is at offset 8 (after magic and its 4-byte length).
        bytes[8] = 0xff
        #expect(throws: LedgerError.self) { try LedgerRecord(canonicalBytes: bytes) }
    }
}
