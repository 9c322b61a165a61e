import Foundation
import GRDB

/// The body of a C2SP `tlog-witness` add-checkpoint request:
/// ```
/// old <size of the checkpoint the witness last cosigned for this log>
/// <consistency proof from that size, one base64 hash per line, at most 63>
/// <empty line>
/// <the checkpoint, a signed note>
/// ```
public struct AddCheckpointRequest: Sendable, Hashable {
    public var oldSize: UInt64
    public var proof: [Data]
    public var checkpoint: SignedNote

    public init(oldSize: UInt64, proof: [Data], checkpoint: SignedNote) {
        self.oldSize = oldSize
        self.proof = proof
        self.checkpoint = checkpoint
    }

    /// The request body.
    public var encoded: Data {
        Data(("old \(oldSize)\n" + proof.map { $0.base64EncodedString() + "\n" }.joined() + "\n" + checkpoint.formatted).utf8)
    }

    /// Parses a request body strictly.
    /// - Throws: ``LedgerError/Code/malformed`` naming what is wrong.
    public init(parsing body: Data) throws {
        guard let text = String(validating: body, as: UTF8.self) else { throw LedgerError(.malformed, "the body is not UTF-8") }
        var rest = Substring(text)
        func line() throws -> Substring {
            guard let end = rest.firstIndex(of: "\n") else { throw LedgerError(.malformed, "a line does not end in a newline") }
            defer { rest = rest[rest.index(after: end)...] }
            return rest[..<end]
        }
        let first = try line()
        guard first.hasPrefix("old "), let size = UInt64(first.dropFirst(4)), String(size) == first.dropFirst(4) else {
            throw LedgerError(.malformed, "the first line must be \"old <size>\" in decimal without leading zeros")
        }
        var proof: [Data] = []
        while true {
            let l = try line()
            if l.isEmpty { break }
            guard proof.count < 63 else { throw LedgerError(.malformed, "more than 63 consistency proof lines") }
            guard let hash = Data(base64Encoded: String(l)), hash.count == RFC6962.hashSize, hash.base64EncodedString() == l else {
                throw LedgerError(.malformed, "a consistency proof line is not the base64 of a 32-byte hash")
            }
            proof.append(hash)
        }
        self.init(oldSize: size, proof: proof, checkpoint: try SignedNote(parsing: String(rest)))
    }
}

/// A witness (C2SP `tlog-witness` v1.0.0): it cosigns a log's checkpoint only if the log signed it
/// and it is consistent with the last checkpoint of that log the witness cosigned, which it keeps,
/// durably, before answering. Its answers, as the spec gives them:
/// - 200 with the cosignature line (``CosignatureSigner``);
/// - 400 for a malformed body, or an old size above the checkpoint's;
/// - 403 if no signature by the log's key verifies; 404 for a log it does not witness;
/// - 409 with the size it last cosigned (`text/x.tlog.size`) when the old size is not that size,
///   or the checkpoint is that size with another root hash;
/// - 422 when the consistency proof does not verify (or is not empty from size 0).
/// One request is checked and recorded at a time; state is in an SQLite file (WAL, full sync).
public final class Witness: Sendable {
    /// An HTTP answer.
    public struct Response: Sendable, Hashable {
        public var status: Int
        public var contentType: String
        public var body: String
    }

    public let signer: CosignatureSigner
    private let logs: [String: NoteVerifier]
    private let queue: DatabaseQueue
    private let clock: @Sendable () -> UInt64

    /// - Parameters:
    ///   - signer: The witness key.
    ///   - logs: The verifier keys of the logs it witnesses; each key's name is its log's origin.
    ///   - statePath: The state database (created if missing).
    ///   - clock: POSIX seconds for the cosignatures' time.
    /// - Throws: ``LedgerError/Code/storage`` if the state cannot be opened;
    ///   ``LedgerError/Code/invalidValue`` if two keys name the same origin.
    public init(signer: CosignatureSigner, logs: [NoteVerifier], statePath: String,
                clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970) }) throws {
        var byOrigin: [String: NoteVerifier] = [:]
        for log in logs {
            guard byOrigin.updateValue(log, forKey: log.name) == nil else { throw LedgerError(.invalidValue, "two log keys for the origin \(log.name)") }
        }
        self.signer = signer
        self.logs = byOrigin
        self.clock = clock
        do {
            queue = try SQLiteLedgerStore.openDurable(path: statePath, busyTimeout: nil)
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS checkpoints (
                        origin TEXT PRIMARY KEY,
                        size INTEGER NOT NULL,
                        root BLOB NOT NULL,
                        note TEXT NOT NULL
                    )
                    """)
            }
        } catch {
            throw LedgerError(.storage, "cannot open the witness state at \(statePath)", cause: error)
        }
    }

    /// The size and root of the checkpoint of `origin` last cosigned, if any.
    public func latest(origin: String) throws -> (size: UInt64, root: Data)? {
        try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT size, root FROM checkpoints WHERE origin = ?", arguments: [origin]).map {
                (UInt64(bitPattern: $0["size"]), $0["root"])
            }
        }
    }

    /// Handles an add-checkpoint request body.
    public func addCheckpoint(_ body: Data) -> Response {
        func answer(_ status: Int, _ message: String) -> Response { Response(status: status, contentType: "text/plain; charset=utf-8", body: message + "\n") }
        let request: AddCheckpointRequest
        let checkpoint: Checkpoint
        do {
            request = try AddCheckpointRequest(parsing: body)
            checkpoint = try Checkpoint(text: request.checkpoint.text)
        } catch {
            return answer(400, "malformed add-checkpoint request: \(error)")
        }
        guard let log = logs[checkpoint.origin] else { return answer(404, "unknown log origin \(checkpoint.origin)") }
        do { _ = try log.verify(request.checkpoint) } catch {
            return answer(403, "the checkpoint is not signed by the log's key: \(error)")
        }
        guard request.oldSize <= checkpoint.size else {
            return answer(400, "the old size \(request.oldSize) is above the checkpoint's size \(checkpoint.size)")
        }
        do {
            let outcome: Response? = try queue.write { db in
                let stored = try Row.fetchOne(db, sql: "SELECT size, root FROM checkpoints WHERE origin = ?", arguments: [checkpoint.origin])
                let latest = stored.map { UInt64(bitPattern: $0["size"]) } ?? 0
                let latestRoot: Data = stored?["root"] ?? RFC6962.emptyRoot
                guard request.oldSize == latest else {
                    return Response(status: 409, contentType: "text/x.tlog.size", body: "\(latest)\n")
                }
                if checkpoint.size == latest {
                    guard checkpoint.rootHash == latestRoot else {
                        return Response(status: 409, contentType: "text/x.tlog.size", body: "\(latest)\n")
                    }
                    guard request.proof.isEmpty else { return answer(422, "a consistency proof between equal sizes is empty") }
                } else if request.oldSize == 0 {
                    guard request.proof.isEmpty else { return answer(422, "a consistency proof from size 0 is empty") }
                } else {
                    do {
                        try MerkleProof.verifyConsistency(oldSize: latest, newSize: checkpoint.size, oldRoot: latestRoot,
                                                          newRoot: checkpoint.rootHash, proof: request.proof)
                    } catch {
                        return answer(422, "the consistency proof from size \(latest) does not verify: \(error)")
                    }
                }
                try db.execute(sql: """
                    INSERT INTO checkpoints (origin, size, root, note) VALUES (?, ?, ?, ?)
                    ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note
                    """, arguments: [checkpoint.origin, Int64(bitPattern: checkpoint.size), checkpoint.rootHash, request.checkpoint.formatted])
                return nil
            }
            if let outcome { return outcome }
        } catch {
            return answer(500, "the witness could not record the checkpoint")
        }
        // Recorded durably; now cosign.
        do {
            let line = try signer.cosign(checkpoint: request.checkpoint.text, time: clock())
            return Response(status: 200, contentType: "text/plain; charset=utf-8",
                            body: String(SignedNote(text: "", signatures: [line]).formatted.dropFirst()))
        } catch {
            return answer(500, "the witness could not sign")
        }
    }
}
