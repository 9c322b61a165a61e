import ArgumentParser
import Export
import Foundation
import Ledger
import Node

/// `verity ledger provenance FILE`: which export produced a file, with the receipt that proves
/// its record is in the log.
struct LedgerProvenanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provenance",
        abstract: "Hash a file and find the export record that produced it, with its receipt.",
        discussion: """
            Looks the file's SHA-256 up in the data directory's export index, checks that the record is in the log, \
            and prints it with a receipt verified against the node's key. The receipt verifies offline with \
            `verity ledger verify-receipt`; the record itself (source, adapter, digests, type) decrypts with \
            `verity ledger decrypt ID --account …` for whoever it was sealed to. Exits with status 1 when no export \
            produced the file.
            """)

    @Argument(help: "The file to look up (a GGUF file, a safetensors shard, any file an export wrote).") var file: String
    @OptionGroup var data: DataDirectoryOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let digest: String
        do { digest = try FileDigest.sha256(file: file).digest } catch { throw CLIError(error.message) }
        let directory = data.directory
        let entries = try ledgerCall { try ExportProvenance.lookup(sha256: digest, directory: directory) }
        guard let entry = entries.last else {
            if json {
                print(JSON.object([("file", .string(file)), ("sha256", .string(digest)), ("found", .bool(false))]).serialized())
            } else {
                FileHandle.standardError.write(Data("no export in \(directory.path) produced \(file) (\(digest))\n".utf8))
            }
            throw ExitCode(1)
        }
        let signer = try ledgerCall { try directory.nodeSigner(create: false) }
        let store = try ledgerCall { try directory.ledgerStoreForReading() }
        let node = try ledgerCall { try LedgerNode(store: store, signer: signer) }
        let receipt: Receipt
        do { receipt = try await node.receipt(recordID: entry.recordID) } catch let error as LedgerError {
            throw CLIError("\(file) was exported as record \(entry.recordID), but its receipt is not available: \(error.message)")
        }
        let verified = try ledgerCall { try receipt.verify(verifier: signer.verifier) }
        guard receipt.leafIndex == entry.leafIndex, verified.recordID == entry.recordID else {
            throw CLIError("the export index of \(directory.path) says \(entry.recordID) is leaf \(entry.leafIndex), but the log disagrees")
        }
        let name = entry.files.first { $0.sha256 == digest }?.name ?? URL(fileURLWithPath: file).lastPathComponent
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if json {
            var receiptJSON = JSON.null
            if let data = try? JSONEncoder().encode(receipt), let parsed = try? JSON.parse(data) { receiptJSON = parsed }
            print(JSON.object([
                ("file", .string(file)), ("sha256", .string(digest)), ("found", .bool(true)),
                ("record_id", .string(entry.recordID)), ("leaf_index", .int(Int(entry.leafIndex))),
                ("recorded_at", .string(formatter.string(from: verified.date))), ("node", .string(verified.nodeID)),
                ("block", .int(Int(verified.block.height))), ("format", .string(entry.format)), ("type", .string(entry.type)),
                ("source", .string(entry.source)), ("name", .string(name)),
                ("files", .array(entry.files.map { .object([("name", .string($0.name)), ("sha256", .string($0.sha256)), ("bytes", .int($0.bytes))]) })),
                ("receipt", receiptJSON),
            ]).serialized())
        } else {
            print("\(file) (\(digest)) is \(name) of export \(entry.recordID): \(entry.format) \(entry.type) from \(entry.source)")
            print("ok: record \(entry.recordID) is leaf \(receipt.leafIndex) of block \(verified.block.height) (tree size \(verified.block.treeSize)), "
                  + "signed by \(signer.verifier.name); recorded at \(formatter.string(from: verified.date)) by node \(verified.nodeID)")
        }
    }
}
