import Foundation
import Ledger
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The provenance of one model export: what was exported (source and adapter, with digests), how
/// (format, type, merge), by which tool and for whom, and the digest of every file written.
///
/// It is recorded like an answer: a ``LedgerRecord`` sealed to the requester (and the auditor),
/// appended to the log, covered by a signed block, with a receipt. Its record id starts with the
/// first file's digest (`export-<24 hex>-<8 hex>`), so the public log itself links a file to its
/// record; the data directory's `exports.jsonl` indexes every file's digest for
/// `verity ledger provenance`.
public struct ExportProvenance: Sendable, Codable, Equatable {
    public struct File: Sendable, Codable, Equatable {
        /// The file's name inside the export (`model-00001-of-00002.safetensors`).
        public var name: String
        public var sha256: String
        public var bytes: Int

        public init(name: String, sha256: String, bytes: Int) {
            self.name = name
            self.sha256 = sha256
            self.bytes = bytes
        }
    }

    public var format: String
    public var type: String
    public var source: String
    public var sourceDigest: String
    public var adapter: String?
    public var adapterDigest: String?
    public var adapterScale: Double?
    public var merged: Bool
    public var tool: String
    public var files: [File]

    public init(format: String, type: String, source: String, sourceDigest: String, adapter: String? = nil, adapterDigest: String? = nil,
                adapterScale: Double? = nil, merged: Bool = false, tool: String, files: [File]) {
        self.format = format
        self.type = type
        self.source = source
        self.sourceDigest = sourceDigest
        self.adapter = adapter
        self.adapterDigest = adapterDigest
        self.adapterScale = adapterScale
        self.merged = merged
        self.tool = tool
        self.files = files
    }

    /// The finish reason of an export's record.
    public static let finishReason = "export"

    /// A new record id for this export: `export-` + the first file's digest (24 hex digits) + 8
    /// random hex digits (the same bytes may be exported twice).
    public func newRecordID() -> String {
        let hex = files.first.map { String($0.sha256.dropFirst("sha256:".count).prefix(24)) } ?? "empty"
        let random = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return "export-\(hex)-\(random)"
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The ledger record: the model fields name the source, `parameters.extra` the format, type
    /// and adapter; the prompt is the export request as JSON, the response the files written as
    /// JSON; the finish reason is `export`.
    public func record(id: String, worker: WorkerInfo, sender: String, at milliseconds: Int64) -> LedgerRecord {
        struct Request: Encodable {
            var kind = "export"
            var format, type, source, sourceDigest: String
            var adapter, adapterDigest: String?
            var adapterScale: Double?
            var merged: Bool
            var tool: String
        }
        struct Response: Encodable { var files: [File] }
        var extra = ["export_format": format, "export_type": type, "tool": tool]
        if let adapter { extra["adapter"] = adapter }
        if let adapterDigest { extra["adapter_digest"] = adapterDigest }
        if let adapterScale { extra["adapter_scale"] = String(adapterScale) }
        if merged { extra["merged"] = "true" }
        let request = Request(format: format, type: type, source: source, sourceDigest: sourceDigest, adapter: adapter, adapterDigest: adapterDigest,
                              adapterScale: adapterScale, merged: merged, tool: tool)
        return LedgerRecord(
            recordID: id, timestampMilliseconds: milliseconds, gpu: worker.gpu, gpuProvider: worker.provider,
            gpuPricePerHourMicros: worker.pricePerHourMicros, currency: worker.currency, modelID: source, modelDigest: sourceDigest,
            parameters: ModelParameters(extra: extra), prompt: Self.json(request), response: Self.json(Response(files: files)),
            senderAddress: sender, finishReason: Self.finishReason)
    }

    // MARK: - The index

    /// One line of `exports.jsonl`.
    public struct IndexEntry: Sendable, Codable, Equatable {
        public var recordID: String
        public var leafIndex: UInt64
        public var timestampMilliseconds: Int64
        public var format: String
        public var type: String
        public var source: String
        public var files: [File]

        /// The index's spelling (snake case), stated so that reading does not depend on how a
        /// key strategy would split `recordID`.
        enum CodingKeys: String, CodingKey {
            case recordID = "record_id", leafIndex = "leaf_index", timestampMilliseconds = "timestamp_milliseconds"
            case format, type, source, files
        }
    }

    /// Appends an entry to the data directory's export index (one JSON object a line, flushed to
    /// disk before returning).
    public static func appendIndex(_ entry: IndexEntry, directory: DataDirectory) throws {
        var line = Data(json(entry).utf8)
        line.append(0x0A)
        let fd = open(directory.exportsIndexPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LedgerError(.storage, "cannot open \(directory.exportsIndexPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let ok = line.withUnsafeBytes { buf -> Bool in
            var done = 0
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return fsync(fd) == 0
        }
        guard ok else { throw LedgerError(.storage, "cannot write \(directory.exportsIndexPath): \(String(cString: strerror(errno)))") }
    }

    /// The index entries with a file of digest `sha256`, oldest first. Lines that do not parse (a
    /// write cut short by a crash) are skipped.
    public static func lookup(sha256: String, directory: DataDirectory) throws -> [IndexEntry] {
        guard FileManager.default.fileExists(atPath: directory.exportsIndexPath) else { return [] }
        guard let data = FileManager.default.contents(atPath: directory.exportsIndexPath) else {
            throw LedgerError(.storage, "cannot read \(directory.exportsIndexPath)")
        }
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(IndexEntry.self, from: Data($0)) }
            .filter { $0.files.contains { $0.sha256 == sha256 } }
    }
}

extension DataDirectory {
    /// The index of exports' files by digest (`verity ledger provenance`).
    public var exportsIndexPath: String { path + "/exports.jsonl" }
}

extension LedgerAppender {
    /// Records an export: appends its record (durably), indexes its files, seals a block and
    /// returns the receipt.
    public func recordExport(_ provenance: ExportProvenance, sender: Caller) async throws -> (recordID: String, receipt: Receipt) {
        let id = provenance.newRecordID()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let record = provenance.record(id: id, worker: worker, sender: sender.address, at: now)
        let entry = try await begin(record, sender: sender)
        let appended = try await complete(entry, record)
        try ExportProvenance.appendIndex(ExportProvenance.IndexEntry(
            recordID: id, leafIndex: appended.leafIndex, timestampMilliseconds: now, format: provenance.format, type: provenance.type,
            source: provenance.source, files: provenance.files), directory: directory)
        await seal()
        return (id, try await receipt(recordID: id, wait: true))
    }
}
