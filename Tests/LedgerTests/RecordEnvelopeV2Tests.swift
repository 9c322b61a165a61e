import Crypto
import Foundation
import Testing
@testable import Ledger

/// Version 2's promises: anonymous recipients, a key commitment every recipient checks, and
/// padding to size buckets.
@Suite("Record envelopes, version 2: anonymous, key-committing, padded")
struct RecordEnvelopeV2Tests {
    let sender = Account()
    let auditor = Account()
    let stranger = Account()

    static let record = Fixtures.fullRecord

    /// Seals by hand, as a dishonest node could: each recipient gets its own data key, the
    /// payload is `padded` under `payloadKey`, and the header carries `commitment`.
    func handSealed(_ padded: Data, keys: [(RecipientKey, Data)], payloadKey: Data, commitment: Data) throws -> RecordEnvelope {
        var envelope = RecordEnvelope(
            version: 2, recordID: Self.record.recordID, timestampMilliseconds: Self.record.timestampMilliseconds, nodeID: "node-1",
            keyCommitment: commitment, recipients: [], nonce: Data(), ciphertext: Data()
        )
        let header = try envelope.headerBytes()
        for (recipient, dataKey) in keys {
            var hpke = try HPKE.Sender(recipientKey: recipient.publicKey, ciphersuite: RecordEnvelope.ciphersuite, info: RecordEnvelope.hpkeInfoV2)
            let sealedKey = try hpke.seal(dataKey, authenticating: header)
            envelope.recipients.append(.init(encapsulatedKey: hpke.encapsulatedKey, sealedKey: sealedKey))
        }
        let box = try AES.GCM.seal(padded, using: SymmetricKey(data: payloadKey), nonce: AES.GCM.Nonce(),
                                   authenticating: header + (try envelope.recipientBytes()))
        envelope.nonce = Data(box.nonce)
        envelope.ciphertext = box.ciphertext + box.tag
        return envelope
    }

    static func randomKey() -> Data { SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) } }

    @Test(arguments: [1, 2])
    func roundTripEveryRecipientReadsIt(count: Int) throws {
        let readers = Array([sender, auditor].prefix(count))
        let envelope = try RecordEnvelope.seal(Self.record, to: readers.map(\.recipientKey), nodeID: "node-1")
        let bytes = try envelope.canonicalBytes()
        #expect(bytes.prefix(4) == Data("VLE2".utf8))
        let decoded = try RecordEnvelope(canonicalBytes: bytes)
        #expect(decoded == envelope && decoded.version == 2 && decoded.recipients.count == count)
        #expect(try decoded.canonicalBytes() == bytes)
        for reader in readers { #expect(try reader.open(decoded) == Self.record) }
        let error = try #require(throws: LedgerError.self) { try stranger.open(decoded) }
        #expect(error.code == .notARecipient)
        #expect(error.message.contains("not encrypted to"))
        if count == 1 {
            #expect(throws: LedgerError.self) { try auditor.open(decoded) }
        }
    }

    /// Nothing in a public envelope names its recipients: neither their key ids (what version 1
    /// listed) nor their public keys appear anywhere in its bytes.
    @Test func noRecipientIsNamed() throws {
        for _ in 0..<20 {
            let bytes = try RecordEnvelope.seal(Self.record, to: [sender.recipientKey, auditor.recipientKey], nodeID: "node-1").canonicalBytes()
            for account in [sender, auditor] {
                #expect(bytes.range(of: account.recipientKey.keyID) == nil)
                #expect(bytes.range(of: account.recipientKey.rawRepresentation) == nil)
            }
        }
    }

    /// Ciphertext sizes show only the bucket: records with 10 and 700 bytes of response are the
    /// same size; 1000 bytes go to the next bucket.
    @Test func ciphertextSizesAreBuckets() throws {
        func size(response: Int) throws -> Int {
            var record = Fixtures.record("pad", sender: sender)
            record.response = String(repeating: "x", count: response)
            #expect(try record.canonicalBytes().count + 4 <= (response < 800 ? 1024 : 2048))
            return try RecordEnvelope.seal(record, to: [sender.recipientKey], nodeID: "n").ciphertext.count
        }
        #expect(try size(response: 10) == 1024 + 16)
        #expect(try size(response: 700) == 1024 + 16)
        #expect(try size(response: 1000) == 2048 + 16)
    }

    /// The padding rule, against Fixtures/make_vectors.py: bucket = the smallest power of two
    /// ≥ max(1024, 4 + n); plaintext = u32 n ‖ record ‖ zeros.
    @Test(arguments: [(0, 1024), (1020, 1024), (1021, 2048), (2044, 2048), (2045, 4096)])
    func paddingBuckets(n: Int, bucket: Int) throws {
        let record = Data((0..<n).map { UInt8(truncatingIfNeeded: $0 &+ 1) })
        let padded = try RecordEnvelope.pad(record)
        #expect(padded.count == bucket)
        #expect(padded.prefix(4) == Data([UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]))
        #expect(padded.dropFirst(4).prefix(n) == record)
        #expect(padded.dropFirst(4 + n).allSatisfy { $0 == 0 })
        #expect(try RecordEnvelope.unpad(padded) == record)
    }

    @Test func unpaddingRejectsWhatPaddingCannotProduce() throws {
        let padded = try RecordEnvelope.pad(Data("record".utf8))
        #expect(throws: LedgerError.self, "non-zero padding") { try RecordEnvelope.unpad(padded.flipping(padded.count - 1)) }
        #expect(throws: LedgerError.self, "length past the end") { try RecordEnvelope.unpad(Data([0, 0, 4, 0]) + padded.dropFirst(4)) }
        #expect(throws: LedgerError.self, "not a bucket size") { try RecordEnvelope.unpad(padded.dropLast()) }
        #expect(throws: LedgerError.self, "below the smallest bucket") { try RecordEnvelope.unpad(Data([0, 0, 0, 0])) }
        #expect(try RecordEnvelope.unpad(Data([0, 0, 3, 0xfc]) + Data(count: 1020)) == Data(count: 1020))
    }

    /// The commitment input, exactly as documented, against Fixtures/make_vectors.py (hashlib).
    @Test func keyCommitmentKnownAnswers() {
        #expect(RecordEnvelope.keyCommitment(dataKey: Data(count: 32)).hex
                == "03bf4318916fce833812216953ff944039a6997bafb7d88ff4db2daf85eddf62")
        #expect(RecordEnvelope.keyCommitment(dataKey: Data(0..<32)).hex
                == "3ceb6272a132b71d7c4a2d8259f27cbaa591baeb9ff25610e703076ddd5eb4c2")
    }

    /// The bytes follow the layout at the top of RecordEnvelope+Encoding.swift, read here field
    /// by field without the module's decoder.
    @Test func theBytesFollowTheDocumentedLayout() throws {
        let envelope = try RecordEnvelope.seal(Self.record, to: [sender.recipientKey, auditor.recipientKey], nodeID: "node-1")
        let b = [UInt8](try envelope.canonicalBytes())
        var at = 0
        func take(_ n: Int) -> [UInt8] { defer { at += n }; return Array(b[at..<at + n]) }
        func u32() -> Int { take(4).reduce(0) { $0 << 8 | Int($1) } }
        #expect(take(4) == Array("VLE2".utf8))
        #expect(String(decoding: take(u32()), as: UTF8.self) == Self.record.recordID)
        #expect(Int64(bitPattern: take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) == Self.record.timestampMilliseconds)
        #expect(String(decoding: take(u32()), as: UTF8.self) == "node-1")
        #expect(Data(take(32)) == envelope.keyCommitment)
        let headerEnd = at
        #expect(take(1) == [2])
        for i in 0..<2 {
            #expect(Data(take(32)) == envelope.recipients[i].encapsulatedKey)
            #expect(u32() == 48)
            #expect(Data(take(48)) == envelope.recipients[i].sealedKey)
        }
        #expect(Data(take(12)) == envelope.nonce)
        #expect(u32() == 1024 + 16)
        #expect(Data(take(1024 + 16)) == envelope.ciphertext)
        #expect(at == b.count)
        #expect(Data(b[..<headerEnd]) == (try envelope.headerBytes()))
    }

    /// The hand sealer is faithful: used honestly (one key, its commitment, padded), both
    /// recipients read the record. So what fails below fails because of what was changed.
    @Test func anHonestHandSealedEnvelopeOpens() throws {
        let key = Self.randomKey()
        let envelope = try handSealed(try RecordEnvelope.pad(try Self.record.canonicalBytes()),
                                      keys: [(sender.recipientKey, key), (auditor.recipientKey, key)],
                                      payloadKey: key, commitment: RecordEnvelope.keyCommitment(dataKey: key))
        let reread = try RecordEnvelope(canonicalBytes: try envelope.canonicalBytes())
        #expect(try sender.open(reread) == Self.record)
        #expect(try auditor.open(reread) == Self.record)
    }

    /// The key-commitment attack: a dishonest node wraps a different data key for each recipient,
    /// hoping (with an AES-GCM ciphertext crafted to open under both keys, which AES-GCM allows)
    /// to show each a different plaintext. The commitment is checked on the unwrapped key, before
    /// any decryption, so whatever the ciphertext, at most the committed key's holder reads it.
    @Test func recipientsGivenDifferentKeysAreRefused() throws {
        let padded = try RecordEnvelope.pad(try Self.record.canonicalBytes())
        let k1 = Self.randomKey(), k2 = Self.randomKey()
        let keys = [(sender.recipientKey, k1), (auditor.recipientKey, k2)]

        // Committed to neither key: every open fails on the commitment.
        let neither = try handSealed(padded, keys: keys, payloadKey: k1, commitment: RecordEnvelope.keyCommitment(dataKey: Self.randomKey()))
        for account in [sender, auditor] {
            let error = try #require(throws: LedgerError.self) { try account.open(neither) }
            #expect(error.code == .keyCommitmentMismatch, "\(error)")
        }

        // Committed to k1: its holder reads the record; the other is refused on the commitment,
        // not on the payload's tag (the check comes first).
        let first = try handSealed(padded, keys: keys, payloadKey: k1, commitment: RecordEnvelope.keyCommitment(dataKey: k1))
        #expect(try sender.open(first) == Self.record)
        let error = try #require(throws: LedgerError.self) { try auditor.open(first) }
        #expect(error.code == .keyCommitmentMismatch)
        // Even when the payload is sealed under the key it was given.
        let second = try handSealed(padded, keys: keys, payloadKey: k2, commitment: RecordEnvelope.keyCommitment(dataKey: k1))
        let secondError = try #require(throws: LedgerError.self) { try auditor.open(second) }
        #expect(secondError.code == .keyCommitmentMismatch)
    }

    /// Padding that the sealer did not write as documented is refused after decryption.
    @Test func badPaddingIsRefused() throws {
        let key = Self.randomKey()
        let record = try Self.record.canonicalBytes()
        let padded = try RecordEnvelope.pad(record)
        func open(_ plaintext: Data) throws -> LedgerRecord {
            try sender.open(try handSealed(plaintext, keys: [(sender.recipientKey, key)], payloadKey: key,
                                           commitment: RecordEnvelope.keyCommitment(dataKey: key)))
        }
        #expect(try open(padded) == Self.record)
        for (what, plaintext) in [("a non-zero padding byte", padded.flipping(padded.count - 1, mask: 0x20)),
                                  ("no padding", Data([0, 0, UInt8(record.count >> 8), UInt8(record.count & 0xff)]) + record),
                                  ("a bucket and a byte", padded + [0]),
                                  ("a length past the end", Data([0, 0, 0x10, 0]) + padded.dropFirst(4))] {
            let error = try #require(throws: LedgerError.self, Comment(rawValue: what)) { try open(plaintext) }
            #expect(error.code == .malformed, Comment(rawValue: what))
        }
    }

    /// Any single flipped byte of a version-2 envelope stops it opening, for either recipient.
    @Test func everyByteFlipIsDetected() throws {
        let bytes = try RecordEnvelope.seal(Fixtures.minimalRecord, to: [sender.recipientKey, auditor.recipientKey], nodeID: "n").canonicalBytes()
        for i in 0..<bytes.count {
            #expect(throws: LedgerError.self, "flip of byte \(i) went unnoticed") {
                try sender.open(try RecordEnvelope(canonicalBytes: bytes.flipping(i)))
            }
            #expect(throws: LedgerError.self, "flip of byte \(i) went unnoticed") {
                try auditor.open(try RecordEnvelope(canonicalBytes: bytes.flipping(i, mask: 0x80)))
            }
        }
    }

    @Test func encodingRefusesMixedVersions() throws {
        var envelope = try RecordEnvelope.seal(Self.record, to: [sender.recipientKey], nodeID: "n")
        var withID = envelope
        withID.recipients[0].keyID = sender.recipientKey.keyID
        #expect(throws: LedgerError.self) { try withID.canonicalBytes() }
        var noCommitment = envelope
        noCommitment.keyCommitment = nil
        #expect(throws: LedgerError.self) { try noCommitment.canonicalBytes() }
        envelope.version = 1
        #expect(throws: LedgerError.self) { try envelope.canonicalBytes() }
        envelope.version = 3
        #expect(throws: LedgerError.self) { try envelope.canonicalBytes() }
    }
}
