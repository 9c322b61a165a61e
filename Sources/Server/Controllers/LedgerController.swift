import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import NIOCore
import Node

/// The ledger's HTTP API under `/v1/ledger/`, and the log itself as C2SP tlog-tiles under the
/// prefix `/v1/ledger/log/` (`checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`).
///
/// The log is a transparency log, so reading it needs no key: anyone may fetch blocks, proofs,
/// receipts and the (encrypted) envelopes, and audit the whole chain. Only listing "my records"
/// needs an API key bound to an account, because it is per account. Hashes, proofs and
/// envelopes are base64; a receipt is the ``Receipt`` JSON that `verity ledger verify-receipt`
/// reads.
struct LedgerController: Sendable {
    let ledger: LedgerAppender
    /// Envelope bytes per `/v1/ledger/entries` page: a page ends early beyond them (at least one
    /// entry is always given), so a page's size is bounded whatever its records hold.
    let maxPageBytes: Int

    /// Most entries one `/v1/ledger/entries` page returns.
    static let pageLimit = 1000

    /// Largest receipt `/v1/ledger/verify-receipt` reads.
    static let maxReceiptBytes = 1 << 20

    /// The public routes go on `open` (a `/v1/ledger` group without authentication); listing
    /// one's own records goes on `keyed` (the `/v1` group that needs a key).
    func addRoutes(open: RouterGroup<VerityRequestContext>, keyed: RouterGroup<VerityRequestContext>) {
        keyed.get("ledger/records") { _, context in try await records(context.caller) }
        open.get("head") { _, _ in try await head() }
        open.get("node-key") { _, _ in
            var body: JSON = ["verifier_key": .string(ledger.node.verifier.verifierKey), "origin": .string(ledger.node.verifier.name)]
            if let policy = ledger.node.witnessPolicy {
                body = body.setting("witnesses", .array(policy.witnesses.map { .string($0.verifierKey) }))
                    .setting("witness_threshold", .int(policy.threshold))
            }
            return Response.json(body)
        }
        open.get("blocks/{height}") { _, context in
            let text = context.parameters.get("height") ?? ""
            guard let height = UInt64(text) else { throw APIError.invalidRequest("The block height must be a number; got '\(text)'.", param: "height") }
            let (block, note) = try await mapped { (try await ledger.node.block(height: height), try await ledger.node.cosignedNote(height: height)) }
            return Response.json(blockObject(block).setting("note", .string(note.formatted)))
        }
        open.get("records/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            let (leaf, envelope) = try await mapped { () async throws -> (StoredLeaf, RecordEnvelope) in
                let leaf = try await ledger.node.leaf(recordID: id)
                return (leaf, try RecordEnvelope(canonicalBytes: leaf.envelope))
            }
            return Response.json(["record_id": .string(id), "leaf_index": .int(Int(leaf.index)), "leaf_hash": .string(leaf.leafHash.base64EncodedString()),
                         "timestamp_ms": .int(Int(envelope.timestampMilliseconds)), "node_id": .string(envelope.nodeID),
                         "version": .int(Int(envelope.version)), "recipients": .int(envelope.recipients.count),
                         "envelope": .string(leaf.envelope.base64EncodedString())])
        }
        open.get("records/{id}/receipt") { request, context in
            let id = context.parameters.get("id") ?? ""
            let wait = request.uri.queryParameters.get("wait").map { ["true", "1", "yes"].contains($0.lowercased()) } ?? false
            let receipt = try await mapped { try await ledger.receipt(recordID: id, wait: wait) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(receipt))))
        }
        open.get("consistency") { request, _ in
            let from = try Self.number(request, "from"), to = try Self.number(request, "to")
            guard from <= to else { throw APIError.invalidRequest("from (\(from)) must not exceed to (\(to)).", param: "from") }
            let size = await ledger.node.size
            guard to <= size else { throw APIError.invalidRequest("to (\(to)) exceeds the tree size \(size).", param: "to") }
            let proof = try await mapped { try await ledger.node.consistencyProof(from: from, to: to) }
            return Response.json(["from": .int(Int(from)), "to": .int(Int(to)), "proof": .array(proof.map { .string($0.base64EncodedString()) })])
        }
        open.post("verify-receipt") { request, _ in try await verifyReceipt(request) }
        // The log as C2SP tlog-tiles under the prefix /v1/ledger/log/.
        open.get("log/checkpoint") { _, _ in
            guard let note = await ledger.node.checkpoint else {
                throw APIError(status: .notFound, message: "The log has no checkpoint yet: no block is sealed" + (ledger.node.witnessPolicy == nil ? "." : " and witnessed."),
                               type: "invalid_request_error", param: nil, code: "not_found")
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "public, max-age=2"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: note.formatted)))
        }
        open.get("log/tile/**") { _, context in
            let path = "tile/" + context.parameters.getCatchAll().joined(separator: "/")
            let address: TileAddress
            do { address = try TileAddress(path: path) } catch let error as LedgerError {
                throw APIError(status: .notFound, message: error.message + ".", type: "invalid_request_error", param: nil, code: "not_found")
            }
            var bytes: Data
            if address.level != nil {
                bytes = TileCodec.bytes(try await mapped { try await ledger.node.tileHashes(address) })
            } else {
                let leaves = try await mapped { try await ledger.node.bundle(address) }
                bytes = Data()
                for leaf in leaves {
                    guard leaf.envelope.count <= Int(UInt16.max) else {
                        throw APIError(status: .notFound, message: "Entry bundle \(address.path) cannot be written: leaf \(leaf.index) is \(leaf.envelope.count) bytes, "
                                       + "over the 65535 an entry bundle's length prefix holds. Read these entries from /v1/ledger/entries?start=\(address.index * 256)&limit=\(address.width).",
                                       type: "invalid_request_error", param: nil, code: "entry_too_large")
                    }
                    bytes.append(UInt8(leaf.envelope.count >> 8))
                    bytes.append(UInt8(leaf.envelope.count & 0xFF))
                    bytes.append(leaf.envelope)
                }
            }
            return Response(status: .ok, headers: [.contentType: "application/octet-stream", .cacheControl: "public, max-age=31536000, immutable"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        open.get("entries") { request, _ in
            let start = request.uri.queryParameters.get("start") == nil ? 0 : try Self.number(request, "start")
            let limit = request.uri.queryParameters.get("limit") == nil ? UInt64(Self.pageLimit) : try Self.number(request, "limit")
            var leaves = try await mapped { try await ledger.node.leaves(from: start, limit: Int(min(limit, UInt64(Self.pageLimit)))) }
            var bytes = 0
            if let cut = leaves.indices.first(where: { i in bytes += leaves[i].envelope.count; return i > 0 && bytes > maxPageBytes }) {
                leaves.removeSubrange(cut...)
            }
            return Response.json(["entries": .array(leaves.map {
                ["leaf_index": .int(Int($0.index)), "record_id": .string($0.recordID), "leaf_hash": .string($0.leafHash.base64EncodedString()),
                 "envelope": .string($0.envelope.base64EncodedString())]
            })])
        }
    }

    /// Checks a receipt (the JSON `/v1/ledger/records/{id}/receipt` returns) under this node's key,
    /// for clients that cannot check an Ed25519 signature themselves (a browser without Ed25519
    /// in Web Crypto). The answer is a verdict, not an error: `{"valid": true, "block": {…}, …}`
    /// with the record's proven time and node, or `{"valid": false, "reason": "…"}` for any
    /// mismatch (no envelope, an envelope of another record, a bad proof or signature); only an
    /// unreadable body is a 400.
    private func verifyReceipt(_ request: Request) async throws -> Response {
        let data = try await RequestBody.read(request, limit: Self.maxReceiptBytes)
        let receipt = try RequestBody.decode(Receipt.self, from: data)
        do {
            let verified = try receipt.verify(verifier: ledger.node.verifier)
            var body: JSON = ["valid": true, "record_id": .string(verified.recordID), "leaf_index": .int(Int(receipt.leafIndex)),
                              "timestamp_ms": .int(Int(verified.timestampMilliseconds)), "node_id": .string(verified.nodeID),
                              "verifier_key": .string(ledger.node.verifier.verifierKey), "block": blockObject(verified.block)]
            if let policy = ledger.node.witnessPolicy, let note = try? SignedNote(parsing: receipt.block) {
                let cosigners = policy.cosigners(of: note)
                body = body.setting("witnesses", ["cosigned": .array(cosigners.map { .string($0.name) }), "threshold": .int(policy.threshold),
                                                  "met": .bool(cosigners.count >= policy.threshold)])
            }
            return Response.json(body)
        } catch let error as LedgerError {
            return Response.json(["valid": false, "record_id": .string(receipt.recordID), "reason": .string(error.message),
                         "verifier_key": .string(ledger.node.verifier.verifierKey)])
        }
    }

    private func head() async throws -> Response {
        let size = await ledger.node.size
        let block = await ledger.node.publishedBlock
        let latest = await ledger.node.latestBlock
        var body: JSON = ["origin": .string(ledger.node.verifier.name), "tree_size": .int(Int(size)),
                          "sealed_size": .int(Int(block?.treeSize ?? 0)), "block": block.map(blockObject) ?? .null,
                          "latest_block_height": latest.map { .int(Int($0.height)) } ?? .null]
        if ledger.configuration.dataDirectory.database != nil {
            // A log several gateways share: whether this one integrates and seals it.
            let role: JSON = .string(await ledger.node.isLeader ? "leader" : "follower")
            body = body.setting("shared", ["role": role])
        }
        return Response.json(body)
    }

    private func records(_ caller: Caller) async throws -> Response {
        guard case .account(let account) = caller else {
            throw APIError.unauthorized("Listing records needs an API key bound to an account (verity keys create --account …).")
        }
        let records = try await mapped { try await ledger.records(of: account) }
        return Response.json(["object": "list", "address": .string(account.address.description), "data": .array(records.map {
            ["record_id": .string($0.recordID), "leaf_index": .int(Int($0.leafIndex)), "leaf_hash": .string($0.leafHash.base64EncodedString()),
             "timestamp_ms": .int(Int($0.timestampMilliseconds))]
        })])
    }

    private func blockObject(_ block: Block) -> JSON {
        ["height": .int(Int(block.height)), "tree_size": .int(Int(block.treeSize)), "root_hash": .string(block.rootHash.base64EncodedString()),
         "previous_hash": .string(block.previousHash.base64EncodedString()), "hash": .string(block.hash.base64EncodedString()),
         "note": .string(block.note.formatted)]
    }

    private static func number(_ request: Request, _ name: String) throws(APIError) -> UInt64 {
        guard let text = request.uri.queryParameters.get(name) else { throw APIError.missing(name) }
        guard let value = UInt64(text) else { throw APIError.invalidRequest("\(name) must be a non-negative integer; got '\(text)'.", param: name) }
        return value
    }

    /// Runs a ledger call, mapping its errors onto HTTP: not found 404, not sealed yet 409,
    /// a bad argument 400; anything else is an internal error (logged, a generic 500).
    private func mapped<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as LedgerError {
            switch error.code {
            case .notFound:
                throw APIError(status: .notFound, message: error.message.prefix(1).uppercased() + error.message.dropFirst() + ".",
                               type: "invalid_request_error", param: nil, code: "not_found")
            case .notYetSealed:
                throw APIError(status: .conflict, message: "The record is not in a sealed block yet; retry shortly or add ?wait=true.",
                               type: "invalid_request_error", param: nil, code: "not_yet_sealed")
            case .proofInvalid, .invalidValue:
                throw APIError.invalidRequest(error.message)
            default:
                throw error
            }
        }
    }
}
