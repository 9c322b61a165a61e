import Crypto
import Foundation
import Testing
@testable import Ledger

/// Witness cosigning (C2SP tlog-witness v1.0.0, tlog-cosignature v1.0.1), against the specs'
/// worked examples byte for byte, and the witness's answers to every kind of request.
@Suite("Witnesses: cosignatures and add-checkpoint")
struct WitnessTests {
    // MARK: The specs' examples

    /// signed-note's example key and note: the key id formula and an Ed25519 signature.
    @Test func theSignedNoteExampleVerifies() throws {
        let key = try NoteVerifier(verifierKey: "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
        let note = try SignedNote(parsing: "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")
        #expect(try key.verify(note) == "This is an example message.\n")
    }

    /// tlog-cosignature's example message and signature line: the header and time lines, and the
    /// line's key id and big-endian timestamp.
    @Test func theCosignatureExampleParses() throws {
        let checkpoint = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        #expect(Cosignature.message(checkpoint: checkpoint, time: 1_679_315_147)
                == Data("cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n".utf8))
        let note = try SignedNote(parsing: checkpoint + "\n"
            + "\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
            + "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
        let line = try #require(note.signatures.last)
        #expect(line.name == "witness.example.com/w1" && line.keyID == 0x8d66_cf3f && line.signature.count == 72)
        #expect(line.signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } == 1_679_315_147)
    }

    /// Our cosignatures: the key id with type 0x04, the 72-byte blob, the verifier key text, a
    /// round trip, and any altered byte refused.
    @Test func cosignaturesVerifyAndAnyChangeIsRefused() throws {
        let seed = Data((0..<32).map { UInt8($0) })
        let signer = try CosignatureSigner(name: "witness.test/w1", privateKey: try .init(rawRepresentation: seed))
        let public32 = signer.verifier.publicKey.rawRepresentation
        let id = SHA256.hash(data: Data("witness.test/w1".utf8) + [0x0A, 0x04] + public32).prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(signer.verifier.keyID == id)
        #expect(signer.verifier.verifierKey == "witness.test/w1+\(Cosignature.hex(id))+" + (Data([0x04]) + public32).base64EncodedString())
        #expect(try CosignatureVerifier(verifierKey: signer.verifier.verifierKey) == signer.verifier)
        #expect(try CosignatureSigner(signerKey: signer.signerKey).verifier == signer.verifier)
        // A note verifier key (type 0x01) is not a cosigner key.
        let log = try NoteSigner(name: "log.test/l")
        #expect(throws: LedgerError.self) { try CosignatureVerifier(verifierKey: log.verifier.verifierKey) }

        let checkpoint = try log.sign("log.test/l\n5\n\(Data(repeating: 7, count: 32).base64EncodedString())\n")
        let line = try signer.cosign(checkpoint: checkpoint.text, time: 1_700_000_000)
        #expect(line.signature.count == 72 && line.keyID == id)
        var note = checkpoint
        note.signatures.append(line)
        let reparsed = try SignedNote(parsing: note.formatted)
        #expect(try signer.verifier.cosignatureTime(on: reparsed) == 1_700_000_000)
        #expect(try log.verifier.verify(reparsed) == checkpoint.text)   // the log's own check ignores it
        for i in 0..<72 {
            var bad = reparsed
            bad.signatures[1].signature[i] ^= 1
            #expect(throws: LedgerError.self, "byte \(i)") { try signer.verifier.cosignatureTime(on: bad) }
        }
        let policy = try WitnessPolicy(witnesses: [signer.verifier, try CosignatureSigner(name: "witness.test/w2").verifier], threshold: 2)
        #expect(policy.cosigners(of: reparsed) == [signer.verifier])
        #expect(throws: LedgerError.self) { try policy.check(reparsed) }
        #expect(throws: LedgerError.self) { try WitnessPolicy(witnesses: [signer.verifier], threshold: 2) }
        #expect(throws: LedgerError.self) { try WitnessPolicy(witnesses: [signer.verifier, signer.verifier], threshold: 1) }
    }

    // MARK: The witness's answers

    struct Setup {
        let witness: Witness
        let node: LedgerNode
        let log: NoteSigner
        let directory: URL
    }

    func setup() throws -> Setup {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("witness-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let log = try NoteSigner(name: "log.test/ledger")
        let witness = try Witness(signer: try CosignatureSigner(name: "witness.test/w1"), logs: [log.verifier],
                                  statePath: directory.appendingPathComponent("witness.sqlite").path, clock: { 1_800_000_000 })
        return Setup(witness: witness, node: try LedgerNode(store: InMemoryLedgerStore(), signer: log), log: log, directory: directory)
    }

    func grow(_ node: LedgerNode, by n: Int) async throws -> Block {
        let alice = Account()
        let start = await node.size
        for i in 0..<n {
            _ = try await node.append(try RecordEnvelope.seal(Fixtures.record("w\(start + UInt64(i))", sender: alice), to: [alice.recipientKey], nodeID: "n"),
                                      owner: nil)
        }
        return try #require(try await node.seal())
    }

    func body(old: UInt64, proof: [Data], _ note: SignedNote) -> Data {
        AddCheckpointRequest(oldSize: old, proof: proof, checkpoint: note).encoded
    }

    @Test func theWitnessAnswersAsTheSpecSays() async throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let first = try await grow(s.node, by: 3)
        // First contact: old size 0, no proof.
        var answer = s.witness.addCheckpoint(body(old: 0, proof: [], first.note))
        #expect(answer.status == 200)
        let lines = try SignedNote(parsing: "x\n\n" + answer.body).signatures
        var cosigned = first.note
        cosigned.signatures += lines
        #expect(try s.witness.signer.verifier.cosignatureTime(on: cosigned) == 1_800_000_000)
        // The same checkpoint again: cosigned again (old size = its size, empty proof).
        #expect(s.witness.addCheckpoint(body(old: 3, proof: [], first.note)).status == 200)

        let second = try await grow(s.node, by: 4)
        let proof = try await s.node.consistencyProof(from: 3, to: 7)
        // A stale old size: 409 with the size the witness knows, as text/x.tlog.size.
        answer = s.witness.addCheckpoint(body(old: 0, proof: [], second.note))
        #expect(answer == Witness.Response(status: 409, contentType: "text/x.tlog.size", body: "3\n"))
        // A proof that does not verify: 422.
        var bad = proof
        bad[0][0] ^= 1
        #expect(s.witness.addCheckpoint(body(old: 3, proof: bad, second.note)).status == 422)
        #expect(s.witness.addCheckpoint(body(old: 3, proof: Array(proof.dropLast()), second.note)).status == 422)
        // Old size above the checkpoint's: 400. Malformed bodies: 400.
        #expect(s.witness.addCheckpoint(body(old: 9, proof: [], second.note)).status == 400)
        for junk in ["", "old 3\n", "old 03\n\n" + second.note.formatted, "old 3\nnot-base64\n\n" + second.note.formatted,
                     "old -1\n\n" + second.note.formatted, "old 3\n\n" + second.note.text, "new 3\n\n" + second.note.formatted] {
            #expect(s.witness.addCheckpoint(Data(junk.utf8)).status == 400, "\(junk.prefix(20))")
        }
        #expect(s.witness.addCheckpoint(Data([0xFF, 0xFE])).status == 400)
        // Signed by another key under the log's name: 403; another log: 404.
        let impostor = try NoteSigner(name: "log.test/ledger")
        #expect(s.witness.addCheckpoint(body(old: 3, proof: proof, try impostor.sign(second.note.text))).status == 403)
        let other = try NoteSigner(name: "other.test/log")
        #expect(s.witness.addCheckpoint(body(old: 0, proof: [], try other.sign("other.test/log\n1\n\(Data(count: 32).base64EncodedString())\n"))).status == 404)
        // None of that moved the witness.
        #expect(try s.witness.latest(origin: "log.test/ledger")?.size == 3)
        // The right request: cosigned, and the state moves on, durably.
        #expect(s.witness.addCheckpoint(body(old: 3, proof: proof, second.note)).status == 200)
        let reopened = try Witness(signer: s.witness.signer, logs: [s.log.verifier],
                                   statePath: s.directory.appendingPathComponent("witness.sqlite").path)
        #expect(try reopened.latest(origin: "log.test/ledger")?.size == 7)
    }

    /// A fork (a copy of the log that went another way) is refused: at the same size with another
    /// root (409), and beyond it with a proof from the witnessed tree that cannot exist (422).
    @Test func aForkedLogIsNeverCosigned() async throws {
        let s = try setup()
        defer { try? FileManager.default.removeItem(at: s.directory) }
        let base = try await grow(s.node, by: 2)
        #expect(s.witness.addCheckpoint(body(old: 0, proof: [], base.note)).status == 200)
        // The fork: the same two records, then others, signed by the same key.
        let forkStore = InMemoryLedgerStore()
        let fork = try LedgerNode(store: forkStore, signer: s.log)
        for leaf in try await s.node.leaves(from: 0, limit: 2) {
            _ = try await fork.append(try RecordEnvelope(canonicalBytes: leaf.envelope), owner: nil)
        }
        _ = try await fork.seal()
        let honest = try await grow(s.node, by: 1)
        let forked = try await grow(fork, by: 1)
        #expect(honest.treeSize == forked.treeSize && honest.rootHash != forked.rootHash)
        #expect(s.witness.addCheckpoint(body(old: 2, proof: try await s.node.consistencyProof(from: 2, to: 3), honest.note)).status == 200)
        let sameSize = s.witness.addCheckpoint(body(old: 3, proof: [], forked.note))
        #expect(sameSize.status == 409 && sameSize.body == "3\n")
        let further = try await grow(fork, by: 2)
        #expect(s.witness.addCheckpoint(body(old: 3, proof: try await fork.consistencyProof(from: 3, to: 5), further.note)).status == 422)
        #expect(try s.witness.latest(origin: "log.test/ledger")?.root == honest.rootHash)
    }
}
