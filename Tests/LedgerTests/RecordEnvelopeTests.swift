import Crypto
import Foundation
import Testing
@testable import Ledger

@Suite("Record envelopes: AES-256-GCM payload, HPKE-wrapped data keys (version 2, as sealed now)")
struct RecordEnvelopeTests {
    let sender = Account()
    let auditor = Account()
    let stranger = Account()

    func sealed(_ record: LedgerRecord = Fixtures.fullRecord) throws -> RecordEnvelope {
        try RecordEnvelope.seal(record, to: [sender.recipientKey, auditor.recipientKey], nodeID: "node-1")
    }

    @Test func senderAndAuditorCanReadIt() throws {
        let envelope = try sealed()
        #expect(try sender.open(envelope) == Fixtures.fullRecord)
        #expect(try auditor.open(envelope) == Fixtures.fullRecord)
        #expect(envelope.recordID == "req-0001")
        #expect(envelope.timestampMilliseconds == Fixtures.fullRecord.timestampMilliseconds)
        #expect(envelope.nodeID == "node-1")
        #expect(envelope.version == 2 && envelope.recipients.count == 2)
        #expect(envelope.recipients.allSatisfy { $0.keyID == nil }, "version-2 recipients are anonymous")
    }

    @Test func anotherAccountIsToldItIsNotARecipient() throws {
        let envelope = try sealed()
        let error = try #require(throws: LedgerError.self) { try stranger.open(envelope) }
        #expect(error.code == .notARecipient)
    }


    @Test func eachSealUsesAFreshDataKeyAndNonce() throws {
        let a = try sealed(), b = try sealed()
        #expect(a.ciphertext != b.ciphertext)
        #expect(a.nonce != b.nonce)
        #expect(a.recipients[0].encapsulatedKey != b.recipients[0].encapsulatedKey)
    }

    @Test func noPlaintextIsInTheEnvelope() throws {
        var record = Fixtures.fullRecord
        record.prompt = "MARKER-7f3c9e-PROMPT"
        record.systemPrompt = "MARKER-7f3c9e-SYSTEM"
        record.response = "MARKER-7f3c9e-RESPONSE"
        let bytes = try sealed(record).canonicalBytes()
        #expect(bytes.range(of: Data("MARKER-7f3c9e".utf8)) == nil)
        #expect(bytes.range(of: Data("NVIDIA".utf8)) == nil)
    }

    @Test func canonicalBytesRoundTrip() throws {
        let envelope = try sealed()
        let bytes = try envelope.canonicalBytes()
        let decoded = try RecordEnvelope(canonicalBytes: bytes)
        #expect(decoded == envelope)
        #expect(try decoded.canonicalBytes() == bytes)
        #expect(try sender.open(decoded) == Fixtures.fullRecord)
        #expect(throws: LedgerError.self) { try RecordEnvelope(canonicalBytes: bytes + [0]) }
    }

    /// Flipping any byte of a stored envelope makes it unreadable: it no longer parses, or no
    /// longer names the recipient, or no longer authenticates.
    @Test func everyByteFlipIsDetected() throws {
        let bytes = try sealed(Fixtures.minimalRecord).canonicalBytes()
        for i in 0..<bytes.count {
            #expect(throws: LedgerError.self, "flip of byte \(i) went unnoticed") {
                try sender.open(try RecordEnvelope(canonicalBytes: bytes.flipping(i)))
            }
        }
    }

    @Test func droppingARecipientBreaksThePayload() throws {
        var envelope = try sealed()
        envelope.recipients.removeLast()
        let error = try #require(throws: LedgerError.self) { try sender.open(envelope) }
        #expect(error.code == .decryptionFailed)
    }

    @Test func sealingNeedsDistinctRecipients() {
        #expect(throws: LedgerError.self) { try RecordEnvelope.seal(Fixtures.fullRecord, to: [], nodeID: "n") }
        #expect(throws: LedgerError.self) {
            try RecordEnvelope.seal(Fixtures.fullRecord, to: [sender.recipientKey, sender.recipientKey], nodeID: "n")
        }
    }

    @Test func recipientKeyIDIsTruncatedSHA256OfTheKey() {
        let key = sender.recipientKey
        #expect(key.keyID == Data(SHA256.hash(data: key.publicKey.rawRepresentation).prefix(8)))
    }
}
