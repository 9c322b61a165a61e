import Foundation
import Testing
@testable import Ledger

/// C2SP signed-note, against the known answers of Go's `golang.org/x/mod/sumdb/note`
/// (package documentation and `note_test.go`), and the C2SP tlog-checkpoint example.
@Suite("Signed notes and checkpoints")
struct SignedNoteTests {
    static let signerKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let verifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let note = text + "\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

    @Test func keysMatchGo() throws {
        let signer = try NoteSigner(signerKey: Self.signerKey)
        #expect(signer.verifier.verifierKey == Self.verifierKey)
        #expect(signer.keyID == 0xc74f20a3)
        #expect(signer.signerKey == Self.signerKey)
        #expect(try NoteVerifier(verifierKey: Self.verifierKey) == signer.verifier)
    }

    @Test func goNoteVerifies() throws {
        let verifier = try NoteVerifier(verifierKey: Self.verifierKey)
        #expect(try verifier.verify(try SignedNote(parsing: Self.note)) == Self.text)
    }

    /// Ed25519 is deterministic (RFC 8032), so signing reproduces Go's note byte for byte.
    /// (On Apple platforms swift-crypto defers to CryptoKit, whose Ed25519 signatures are
    /// randomised; there only verification is checked.)
    @Test func signingReproducesGo() throws {
        let signed = try NoteSigner(signerKey: Self.signerKey).sign(Self.text)
        #if os(Linux)
        #expect(signed.formatted == Self.note)
        #endif
        #expect(try NoteVerifier(verifierKey: Self.verifierKey).verify(try SignedNote(parsing: signed.formatted)) == Self.text)
    }

    /// Flipping any bit pattern of any byte of the note makes it fail to parse or verify.
    @Test func everyByteFlipOfTheNoteFails() throws {
        let verifier = try NoteVerifier(verifierKey: Self.verifierKey)
        let bytes = Data(Self.note.utf8)
        for i in 0..<bytes.count {
            for mask: UInt8 in [0x01, 0x20, 0x80] {
                #expect(throws: LedgerError.self, "byte \(i) ^ \(mask)") {
                    _ = try verifier.verify(try SignedNote(parsing: bytes.flipping(i, mask: mask)))
                }
            }
        }
    }

    @Test func unknownSignaturesAreIgnoredAndABadKnownOneRejects() throws {
        let verifier = try NoteVerifier(verifierKey: Self.verifierKey)
        let other = try NoteSigner(name: "witness.example/w1")
        var note = try SignedNote(parsing: Self.note)
        note.signatures.insert(try other.sign(Self.text).signatures[0], at: 0)
        #expect(try verifier.verify(try SignedNote(parsing: note.formatted)) == Self.text)
        // Same name and id as the known key, but a wrong signature: reject.
        var forged = note
        forged.signatures.append(.init(name: "PeterNeumann", keyID: 0xc74f20a3, signature: Data(count: 64)))
        #expect(throws: LedgerError.self) { try verifier.verify(forged) }
        // Only a stranger's signature: reject.
        #expect(throws: LedgerError.self) { try verifier.verify(SignedNote(text: Self.text, signatures: [note.signatures[0]])) }
    }

    @Test func malformedNotesAndKeysAreRejected() {
        for bad in [
            Self.text,                                                      // no signatures
            Self.text + "\n",                                               // blank line, no signatures
            Self.note.replacingOccurrences(of: "\u{2014}", with: "-"),      // not an em dash
            Self.note.replacingOccurrences(of: "\nthen", with: "\n\tthen"), // control character
            String(Self.note.dropLast()),                                   // no final newline
        ] {
            #expect(throws: LedgerError.self) { try SignedNote(parsing: bad) }
        }
        for bad in [
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // wrong id
            "PeterNeumann+c74f20a3+AhpcmQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  // wrong algorithm
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", // space in name
            "PeterNeumann+c74f20a3",
        ] {
            #expect(throws: LedgerError.self, "\(bad)") { try NoteVerifier(verifierKey: bad) }
        }
        #expect(throws: LedgerError.self) { try NoteSigner(name: "a+b") }
        #expect(throws: LedgerError.self) { try NoteSigner(name: "") }
    }

    /// The example of c2sp.org/tlog-checkpoint.
    @Test func checkpointExampleRoundTrips() throws {
        let text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        let checkpoint = try Checkpoint(text: text)
        #expect(checkpoint.origin == "example.com/behind-the-sofa")
        #expect(checkpoint.size == 20_852_163)
        #expect(checkpoint.rootHash.count == 32)
        #expect(checkpoint.extensions.isEmpty)
        #expect(try checkpoint.text() == text)
    }

    @Test func nonCanonicalCheckpointsAreRejected() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
        for bad in [
            "o\n020852163\n\(root)\n",      // leading zero
            "o\n-1\n\(root)\n",
            "o\n1\n\(root)",               // no final newline
            "\n1\n\(root)\n",              // empty origin
            "o\n1\n\(root)\n\n",           // empty extension line
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", // non-canonical base64
            "o\n1\nAAAA\n",                // short root
        ] {
            #expect(throws: LedgerError.self, "\(bad)") { try Checkpoint(text: bad) }
        }
    }
}
