import Foundation
import Ledger

/// The fleet's admission: which worker keys a gateway accepts adverts from (tables `workers` and
/// `join_tokens`, migration `v3`).
///
/// The operator admits a worker by its id (`verity workers admit ID`), or issues a single-use
/// join token (`vj_` and 43 Base58 characters of 256 random bits, shown once; only its SHA-256 is
/// kept) which the worker presents with its first advert: the first valid advert that carries it
/// admits its key, and the token is spent. Revoking a worker keeps its row (with `revoked_ms`),
/// so the listing shows who was admitted and when; admitting it again clears the revocation.
extension AccountRegistry {
    /// A worker key in the admission table.
    public struct AdmittedWorker: Sendable, Hashable {
        /// The worker.
        public var worker: WorkerID
        /// When it was (last) admitted, in ms since the Unix epoch.
        public var admittedMilliseconds: Int64
        /// When it was revoked, if it is.
        public var revokedMilliseconds: Int64?
        /// The operator's note ("lambda box 3"), or how it was admitted ("join token jt_…").
        public var note: String?
    }

    /// A freshly issued join token: the secret (shown once) and its public id.
    public struct IssuedJoinToken: Sendable {
        /// The token a worker presents: `vj_` and 43 Base58 characters.
        public var secret: String
        /// Its public id: `jt_` and the first 12 hex digits of its SHA-256.
        public var tokenID: String
        /// Until when it may be used, in ms since the Unix epoch.
        public var expiresMilliseconds: Int64
    }

    /// Admits worker keys in one transaction; a revoked one is admitted again, an admitted one
    /// keeps its admission time (and takes the new note, if one is given).
    /// - Parameters:
    ///   - workers: The worker ids.
    ///   - note: A note stored with each.
    ///   - now: The admission time in ms since the Unix epoch (nil: the clock).
    /// - Throws: ``LedgerError/Code/storage`` if the database fails.
    public func admitWorkers(_ workers: [WorkerID], note: String? = nil, now: Int64? = nil) throws {
        try wrap("admit \(workers.count) workers") {
            try database.write { db in
                for worker in workers { try Self.admit(worker, note: note, now: now ?? Self.now(), db) }
            }
        }
    }

    /// Admits one worker key (see ``admitWorkers(_:note:now:)``).
    public func admitWorker(_ worker: WorkerID, note: String? = nil, now: Int64? = nil) throws {
        try admitWorkers([worker], note: note, now: now)
    }

    private static func admit(_ worker: WorkerID, note: String?, now: Int64, _ db: any RegistrySession) throws {
        try db.execute("""
            INSERT INTO workers (worker_id, admitted_ms, note) VALUES (?, ?, ?)
            ON CONFLICT(worker_id) DO UPDATE SET
                admitted_ms = CASE WHEN workers.revoked_ms IS NULL THEN workers.admitted_ms ELSE excluded.admitted_ms END,
                revoked_ms = NULL,
                note = COALESCE(excluded.note, workers.note)
            """, [.text(worker.description), .integer(now), .text(note)])
    }

    /// Revokes an admitted worker key: its adverts are refused from now on (a running gateway's
    /// ``WorkerFleet`` drops it at its next ``WorkerFleet/reconcileAdmissions()``, or at once
    /// through ``WorkerFleet/revoke(_:now:)``).
    /// - Throws: ``LedgerError/Code/notFound`` if the worker is not admitted (or already revoked).
    public func revokeWorker(_ worker: WorkerID, now: Int64? = nil) throws {
        try wrap("revoke worker \(worker)") {
            try database.write { db in
                let changed = try db.execute("UPDATE workers SET revoked_ms = ? WHERE worker_id = ? AND revoked_ms IS NULL",
                                             [.integer(now ?? Self.now()), .text(worker.description)])
                guard changed == 1 else { throw LedgerError(.notFound, "worker \(worker) is not admitted") }
            }
        }
    }

    /// Every worker ever admitted, revoked ones included, oldest admission first.
    /// - Throws: ``LedgerError/Code/storage`` if the database fails; ``LedgerError/Code/malformed``
    ///   for a stored id that does not parse.
    public func admittedWorkers() throws -> [AdmittedWorker] {
        try wrap("list workers") {
            try database.read { db in
                try db.rows("SELECT worker_id, admitted_ms, revoked_ms, note FROM workers ORDER BY admitted_ms, worker_id", [])
                    .map { row in
                        let text = try row.text("worker_id")
                        let worker: WorkerID
                        do { worker = try WorkerID(text) } catch {
                            throw LedgerError(.malformed, "the workers table holds \"\(text)\", not a worker id", cause: error)
                        }
                        return AdmittedWorker(worker: worker, admittedMilliseconds: try row.integer("admitted_ms"),
                                              revokedMilliseconds: try row.optionalInteger("revoked_ms"), note: try row.optionalText("note"))
                    }
            }
        }
    }

    /// Whether the worker key is admitted and not revoked.
    public func isAdmitted(_ worker: WorkerID) throws -> Bool {
        try wrap("read worker \(worker)") {
            try database.read { db in
                try db.exists("SELECT 1 FROM workers WHERE worker_id = ? AND revoked_ms IS NULL", [.text(worker.description)])
            }
        }
    }

    /// Issues a single-use join token.
    /// - Parameters:
    ///   - note: Stored with the token, and with the worker it admits.
    ///   - lifetime: How long it may be used.
    ///   - now: The issue time (nil: the clock).
    public func issueJoinToken(note: String? = nil, lifetime: Duration = .seconds(86_400),
                               now: Int64? = nil) throws -> IssuedJoinToken {
        var random = SystemRandomNumberGenerator()
        let secret = "vj_" + Base58.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &random) })
        let hash = Self.hash(secret)
        let tokenID = "jt_" + hash.prefix(6).hex
        let now = now ?? Self.now(), expires = now + lifetime.milliseconds
        try wrap("issue a join token") {
            try database.write { db in
                try db.execute("""
                    INSERT INTO join_tokens (token_hash, token_id, created_ms, expires_ms, note) VALUES (?, ?, ?, ?, ?)
                    """, [.blob(hash), .text(tokenID), .integer(now), .integer(expires), .text(note)])
            }
        }
        return IssuedJoinToken(secret: secret, tokenID: tokenID, expiresMilliseconds: expires)
    }

    /// Spends a join token on a worker key, admitting it, in one transaction.
    /// - Throws: ``LedgerError/Code/notFound`` if the token is unknown, spent or expired.
    public func redeemJoinToken(_ secret: String, for worker: WorkerID, now: Int64? = nil) throws {
        let hash = Self.hash(secret), now = now ?? Self.now()
        try wrap("redeem a join token") {
            try database.write { db in
                // FOR UPDATE would be PostgreSQL's; the update below is conditional instead, so
                // two gateways redeeming one token at once admit one worker.
                guard let row = try db.row("""
                    SELECT token_id, note FROM join_tokens WHERE token_hash = ? AND used_ms IS NULL AND expires_ms > ?
                    """, [.blob(hash), .integer(now)]) else {
                    throw LedgerError(.notFound, "the join token is unknown, spent or expired")
                }
                let tokenID = try row.text("token_id"), note = try row.optionalText("note")
                let spent = try db.execute("UPDATE join_tokens SET used_ms = ?, worker_id = ? WHERE token_hash = ? AND used_ms IS NULL",
                                           [.integer(now), .text(worker.description), .blob(hash)])
                guard spent == 1 else { throw LedgerError(.notFound, "the join token is unknown, spent or expired") }
                try Self.admit(worker, note: note.map { "\($0) (join token \(tokenID))" } ?? "join token \(tokenID)", now: now, db)
            }
        }
    }
}
