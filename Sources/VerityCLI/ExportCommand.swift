import ArgumentParser
import Engine
import Export
import Foundation
import Kernels
import Ledger
import Logging
import ModelFormats
import Node

/// `verity export SOURCE --to gguf|safetensors|lora`: a model in a format other tools load, with
/// its provenance in the ledger.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a model as GGUF (quantized as llama.cpp does), as a Hugging Face safetensors folder, or a LoRA adapter alone.",
        discussion: """
            SOURCE is anything Verity loads: a GGUF file (or the first shard of a split one), a Hugging Face folder \
            (bitsandbytes 4-bit included: it is dequantized), or hf:ORG/NAME[:QUANT].

              --to gguf         one GGUF file; --type F32, F16 (default), BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, \
            Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS: llama-quantize's per-tensor \
            type rules and quantizers, byte for byte. --split-max-size 2G writes gguf-split shards.
              --to safetensors  a folder transformers and vLLM load: config, tokenizer, chat template, sharded \
            weights; --type F32, F16 or BF16 (default: the source's float type; F32 from a quantized source).
              --to lora         the adapter given with --lora alone: --type peft (a PEFT folder, default) or gguf \
            (a llama.cpp GGUF LoRA).

            With --lora ADAPTER --merge, the adapter is folded into the base first (PEFT's merge_and_unload \
            arithmetic, in F32; onto the dequantized 16-bit weights of a 4-bit base).

            Without --out, the file or folder is named by llama.cpp's naming convention \
            (e.g. SmolLM2-135M-Instruct-Q4_K_M.gguf) in the current directory; an existing folder as --out gets \
            that name inside it. Nothing is overwritten, and an export that fails leaves no partial output.

            Every export is recorded in the ledger of --data-dir (default: the server's data directory), with \
            the source's and the output's digests; `verity ledger provenance FILE` finds the record later. The \
            directory must not be in use by a running server (export through its API, POST /v1/exports, \
            instead), or pass --no-record.
            """)

    enum Target: String, ExpressibleByArgument, CaseIterable {
        case gguf, safetensors, lora
    }

    @Argument(help: "The model: a GGUF file, a Hugging Face folder, or hf:ORG/NAME[:QUANT].") var source: String
    @Option(name: .customLong("to"), help: "The format: gguf, safetensors or lora.") var target: Target
    @Option(help: "The type: a GGUF file type (Q4_K_M, Q8_0, F16, …), a safetensors dtype (F32, F16, BF16), or peft|gguf for --to lora.")
    var type: String?
    @Option(help: "A LoRA adapter (PEFT folder, GGUF LoRA or hf:ORG/NAME) to merge (--merge) or export (--to lora).") var lora: String?
    @Option(name: .customLong("lora-scale"), help: "Multiplies the adapter's low-rank term when merging (default 1).") var loraScale: Float = 1
    @Flag(help: "Fold the adapter into the base's weights before writing.") var merge = false
    @Option(help: "The output file (GGUF) or folder (safetensors, PEFT), or an existing folder to write the default name into.")
    var out: String?
    @Option(name: .customLong("split-max-size"), help: "GGUF: split into shards of at most this size (e.g. 500M, 2G), as gguf-split does.")
    var splitMaxSize: String?
    @Option(help: "Threads for quantizing (default: all cores).") var threads: Int?
    @Option(help: "For hf: sources: the branch, tag or commit.") var revision: String?
    @Flag(help: "Print the result as one JSON object (files, digests, record id and receipt).") var json = false
    @Option(name: .customLong("data-dir"), help: "The data directory whose ledger records the export (default: $VERITY_DATA_DIR, else ~/.local/share/verity).")
    var dataDir: String?
    @Flag(name: .customLong("no-record"), help: "Do not record the export in a ledger.") var noRecord = false

    func validate() throws {
        guard loraScale.isFinite else { throw ValidationError("--lora-scale must be a finite number") }
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
        if let splitMaxSize, Self.parseSize(splitMaxSize) == nil {
            throw ValidationError("--split-max-size takes a size such as 500M or 2G (bytes, K, M, G), not '\(splitMaxSize)'")
        }
        if splitMaxSize != nil, target != .gguf { throw ValidationError("--split-max-size applies to --to gguf") }
        if noRecord, dataDir != nil { throw ValidationError("use --data-dir or --no-record, not both") }
    }

    /// `500M`, `2G`, `1024`: bytes (K, M, G are powers of 1000, as gguf-split reads them).
    static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Int)] = [("K", 1000), ("M", 1000 * 1000), ("G", 1000 * 1000 * 1000)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let n = Int(t.dropLast()), n > 0, n <= Int.max / scale else { return nil }
            return n * scale
        }
        guard let n = Int(t), n > 0 else { return nil }
        return n
    }

    func run() async throws {
        let progress = ExportProgressPrinter(enabled: !json && isatty(2) != 0)
        let resolved = try await ModelResolver.resolve(source, revision: revision)
        var adapterPath: String?
        if let lora { adapterPath = try await ModelResolver.resolve(lora).path }
        // Hashed on a thread of its own while the ledger opens and the export starts.
        let pendingDigest = PendingDigest(path: resolved.path)

        // Take the ledger first: an export that cannot be recorded is refused before the work.
        var appender: LedgerAppender?
        if !noRecord {
            var configuration = LedgerConfiguration()
            configuration.dataDirectory = DataDirectory(path: dataDir ?? DataDirectory.defaultPath)
            do {
                appender = try LedgerAppender(configuration: configuration, logger: Logger(label: "verity.export"))
                try await appender?.prepare()
            } catch {
                throw CLIError("cannot record the export in \(configuration.dataDirectory.path): \(error). If a server runs on it, export through its API (POST /v1/exports); or pass --data-dir, or --no-record.")
            }
        }

        let model: GGUFFile
        do { model = try ModelFiles.open(resolved.path) } catch { throw CLIError(error.message) }
        var adapter: LoRAFile?
        if let adapterPath {
            do { adapter = try LoRAFile.load(path: adapterPath, base: model) } catch { throw CLIError("\(adapterPath): \(error.message)") }
        }
        var job: ExportJob
        do throws(ExportError) {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: resolved.path, isDirectory: &isDirectory)
            job = ExportJob(
                format: ExportFormat(rawValue: target.rawValue)!, type: type, output: out, splitMaxBytes: splitMaxSize.flatMap(Self.parseSize),
                merge: merge, adapterScale: loraScale, threads: threads ?? ThreadPool.defaultThreadCount,
                source: resolved.source ?? resolved.path, sourceDigest: "",
                sourceDirectory: isDirectory.boolValue ? resolved.path : nil,
                adapterSource: lora.map { ModelResolver.isHubReference($0) ? $0 : adapterPath! }, adapterDigest: try adapterPath.map(FileDigest.modelDigest),
                tool: ModelExport.tool)
        } catch {
            throw CLIError(error.message)
        }
        let outcome: ExportOutcome
        do {
            outcome = try ModelExport.run(job, model: model, adapter: adapter, pendingDigest: pendingDigest) { progress.update($0) }
            job.sourceDigest = try pendingDigest.wait()
        } catch {
            progress.finish()
            throw CLIError(error.message)
        }
        progress.finish()

        var recordID: String?
        var receipt: Receipt?
        if let appender {
            let root = outcome.format == .gguf ? URL(fileURLWithPath: outcome.output).deletingLastPathComponent().path : outcome.output
            let files = outcome.files.map { file in
                ExportProvenance.File(name: Self.relative(file.path, to: root), sha256: file.sha256, bytes: file.bytes)
            }
            let provenance = ExportProvenance(
                format: outcome.format.rawValue, type: outcome.type, source: job.source, sourceDigest: job.sourceDigest,
                adapter: job.adapterSource, adapterDigest: job.adapterDigest, adapterScale: job.adapterSource != nil ? Double(job.adapterScale) : nil,
                merged: job.merge, tool: job.tool, files: files)
            do {
                let recorded = try await appender.recordExport(provenance, sender: .anonymous)
                recordID = recorded.recordID
                receipt = recorded.receipt
            } catch {
                throw CLIError("the export was written (\(outcome.output)) but recording it failed: \(error)")
            }
            await appender.finalSeal()
        }

        if json {
            var receiptJSON = JSON.null
            if let receipt, let data = try? JSONEncoder().encode(receipt), let parsed = try? JSON.parse(data) { receiptJSON = parsed }
            let object: [(String, JSON)] = [
                ("format", .string(outcome.format.rawValue)), ("type", .string(outcome.type)), ("output", .string(outcome.output)),
                ("source", .object([("path", .string(job.source)), ("digest", .string(job.sourceDigest))])),
                ("adapter", job.adapterSource.map { .object([("path", .string($0)), ("digest", job.adapterDigest.map(JSON.string) ?? .null)]) } ?? .null),
                ("merged", .bool(job.merge)),
                ("files", .array(outcome.files.map { .object([("path", .string($0.path)), ("sha256", .string($0.sha256)), ("bytes", .int($0.bytes))]) })),
                ("notes", .array(outcome.notes.map(JSON.string))),
                ("record_id", recordID.map(JSON.string) ?? .null),
                ("receipt", receiptJSON),
            ]
            print(JSON.object(object).serialized())
        } else {
            let total = outcome.files.reduce(0) { $0 + $1.bytes }
            print("exported \(job.source) as \(outcome.format.rawValue) \(outcome.type): \(outcome.output) (\(outcome.files.count) file\(outcome.files.count == 1 ? "" : "s"), \(Self.humanBytes(total)))")
            for note in outcome.notes { print("note: \(note)") }
            if let recordID { print("recorded as \(recordID) in \(dataDir ?? DataDirectory.defaultPath); check a file with: verity ledger provenance FILE") }
        }
    }

    static func relative(_ path: String, to root: String) -> String {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : URL(fileURLWithPath: path).lastPathComponent
    }

    static func humanBytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var v = Double(n), i = 0
        while v >= 1000, i < units.count - 1 { v /= 1000; i += 1 }
        return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
    }
}

/// One status line on standard error, redrawn as an export goes (only on a terminal).
final class ExportProgressPrinter: @unchecked Sendable {
    let enabled: Bool
    private var last = Date.distantPast
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: ExportProgress) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) > 0.1 || p.stage == "done" else { return }
        last = now
        let width = 30
        let filled = p.total > 0 ? min(width, p.done * width / p.total) : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var line = "\r\u{1B}[2K\(p.stage) [\(bar)] \(p.done)/\(p.total)"
        if let item = p.item { line += " \(item)" }
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}
