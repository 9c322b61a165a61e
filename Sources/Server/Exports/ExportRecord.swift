import Foundation
import Ledger
import Node

/// One export job as the API shows it and the data directory keeps it (`exports/<id>.json`, next
/// to its files in `exports/<id>/`): what was asked, by whom, where it stands, and, once done, the
/// files written with their digests and the ledger record that proves them.
struct ExportRecord: Sendable, Codable, Equatable {
    enum Status: String, Sendable, Codable {
        case queued, running, succeeded, failed, cancelled

        var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
    }

    struct Progress: Sendable, Codable, Equatable {
        var stage: String
        var done: Int
        var total: Int
        var item: String?
    }

    struct File: Sendable, Codable, Equatable {
        /// The name inside the export's folder (`SmolLM2-135M-Instruct-Q8_0.gguf`).
        var name: String
        /// `sha256:<64 hex>`.
        var sha256: String
        var bytes: Int
    }

    struct Failure: Sendable, Codable, Equatable {
        /// `invalid_option`, `unsupported`, `io`, `recording_failed`, `interrupted`, …
        var code: String
        var message: String
    }

    var id: String
    /// Who asked (see ``Exporter/owner``): only they, and the admin, see the job.
    var owner: String
    /// The sender address its ledger record names.
    var sender: String
    /// The model or adapter the request named, and the base model and adapter it resolved to.
    var model: String
    var base: String
    var adapter: String?
    var merge: Bool
    var format: String
    /// The type asked for (nil: the format's default) until the export resolves it.
    var type: String?
    var status: Status
    var progress: Progress?
    var createdAt: Int
    var startedAt: Int?
    var finishedAt: Int?
    var files: [File] = []
    var notes: [String] = []
    var recordID: String?
    var receipt: Receipt?
    var error: Failure?

    // Snake case spelled out: a key strategy would also rename the receipt's own keys.
    enum CodingKeys: String, CodingKey {
        case id, owner, sender, model, base, adapter, merge, format, type, status, progress, files, notes, receipt, error
        case createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at", recordID = "record_id"
    }

    /// The job as `GET /v1/exports/{id}` shows it.
    func json(queuePosition: Int? = nil) -> JSON {
        let base = "/v1/exports/\(id)"
        var fields: [(String, JSON)] = [
            ("id", .string(id)), ("object", "export"), ("status", .string(status.rawValue)),
            ("model", .string(model)), ("base_model", .string(self.base)), ("adapter", .optional(adapter)), ("merge", .bool(merge)),
            ("format", .string(format)), ("type", .optional(type)),
            ("progress", progress.map { p in
                .object([("stage", .string(p.stage)), ("done", .int(p.done)), ("total", .int(p.total)), ("item", .optional(p.item))])
            } ?? .null),
            ("created_at", .int(createdAt)), ("started_at", startedAt.map(JSON.int) ?? .null),
            ("finished_at", finishedAt.map(JSON.int) ?? .null),
        ]
        if let queuePosition { fields.append(("queue_position", .int(queuePosition))) }
        fields.append(("files", .array(files.map { file in
            .object([("name", .string(file.name)), ("sha256", .string(file.sha256)), ("bytes", .int(file.bytes)),
                     ("url", .string(base + "/files/" + Self.percentEncoded(file.name)))])
        })))
        fields.append(("download_url", files.count == 1 ? .string(base + "/file") : .null))
        fields.append(("notes", .array(notes.map(JSON.string))))
        fields.append(("record_id", .optional(recordID)))
        fields.append(("receipt", receipt.flatMap(Self.receiptJSON) ?? .null))
        fields.append(("error", error.map { .object([("code", .string($0.code)), ("message", .string($0.message))]) } ?? .null))
        return .object(fields)
    }

    /// The receipt as `GET /v1/ledger/records/{id}/receipt` gives it (what `verity ledger verify-receipt` reads).
    static func receiptJSON(_ receipt: Receipt) -> JSON? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(receipt)).flatMap { try? JSON.parse($0) }
    }

    static func percentEncoded(_ name: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }
}

extension ExportRecord {
    /// Reads a record kept by ``write(to:)``; nil for a file that does not parse.
    static func read(_ path: String) -> ExportRecord? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(ExportRecord.self, from: data)
    }

    /// Writes the record atomically (a temporary file renamed over the old one).
    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
