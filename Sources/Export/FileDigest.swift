import Crypto
import Foundation

/// SHA-256 of files, as exports and provenance name them: `sha256:<64 lowercase hex>`.
public enum FileDigest {
    /// The digest of the file at `path`, read in 4 MiB pieces.
    public static func sha256(file path: String) throws(ExportError) -> (digest: String, bytes: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ExportError(.io, "cannot read \(path) to compute its digest")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var total = 0
        do {
            while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                total += chunk.count
            }
        } catch {
            throw ExportError(.io, "cannot read \(path): \(error.localizedDescription)")
        }
        return (hex(hasher.finalize()), total)
    }

    /// The ``ExportedFile`` for a written file.
    public static func exported(_ path: String) throws(ExportError) -> ExportedFile {
        let (digest, bytes) = try sha256(file: path)
        return ExportedFile(path: path, sha256: digest, bytes: bytes)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        "sha256:" + digest.map { String(format: "%02x", $0) }.joined()
    }
}

extension FileDigest {
    /// `sha256:<hex>` naming a model's weights (or an adapter's): a GGUF file's own digest; for a
    /// Hugging Face folder, a PEFT adapter folder or a split GGUF, the digest of its manifest, one
    /// line `<sha256 hex>  <file>` per weight file (the safetensors files, config.json,
    /// tokenizer.json, adapter_config.json; or every shard), sorted by name. This is the digest
    /// records, `/v1/models` and exports name a model by.
    public static func modelDigest(_ path: String) throws(ExportError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ExportError(.invalidSource, "\(path) does not exist")
        }
        var files: [String] = []
        if isDirectory.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw ExportError(.io, "cannot list \(path): \(error.localizedDescription)")
            }
            files = names.filter { $0.hasSuffix(".safetensors") || ["config.json", "tokenizer.json", "adapter_config.json"].contains($0) }.sorted()
                .map { path + "/" + $0 }
        } else if let match = path.range(of: #"-00001-of-(\d{5})\.gguf$"#, options: .regularExpression),
                  let count = Int(path[match].dropFirst(10).prefix(5)), count > 1 {
            let prefix = path[..<match.lowerBound]
            files = (1...count).map { String(format: "%@-%05d-of-%05d.gguf", String(prefix), $0, count) }
        } else {
            return try sha256(file: path).digest
        }
        var manifest = ""
        for file in files {
            let hex = try sha256(file: file).digest.dropFirst("sha256:".count)
            manifest += "\(hex)  \(URL(fileURLWithPath: file).lastPathComponent)\n"
        }
        return hex(SHA256.hash(data: Data(manifest.utf8)))
    }
}

/// A model digest computed on a thread of its own, so that an export can start while the source is
/// hashed (hashing a multi-gigabyte file takes as long as quantizing a good part of it).
public final class PendingDigest: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<String, ExportError>?

    /// Starts hashing `path` as ``FileDigest/modelDigest(_:)`` does.
    public init(path: String) {
        let thread = Thread { [self] in
            let value: Result<String, ExportError>
            do throws(ExportError) { value = .success(try FileDigest.modelDigest(path)) } catch { value = .failure(error) }
            condition.lock()
            result = value
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "verity-digest"
        thread.start()
    }

    /// Whether the digest is known (or failed).
    public var isReady: Bool {
        condition.lock()
        defer { condition.unlock() }
        return result != nil
    }

    /// The digest, waiting for it if need be.
    public func wait() throws(ExportError) -> String {
        condition.lock()
        while result == nil { condition.wait() }
        let value = result!
        condition.unlock()
        return try value.get()
    }
}
