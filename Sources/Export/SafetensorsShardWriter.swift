import Foundation
import ModelFormats

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a model's weights as safetensors files the way transformers' `save_pretrained` lays
/// them out, streaming: tensors are appended one at a time (in pieces of any size), so no more
/// than the piece being written is ever in memory.
///
/// - Shards: tensors go into shards in the order given, a new shard starting when the next tensor
///   would take the current one past `maxShardBytes` of tensor data (a tensor larger than that gets
///   a shard of its own): huggingface_hub's `split_torch_state_dict_into_shards` rule. One shard
///   is `model.safetensors`; several are `model-00001-of-00003.safetensors`, … with
///   `model.safetensors.index.json` (`metadata.total_size`, the bytes of all tensors, and
///   `weight_map`, tensor → file).
/// - Each shard's header lists all its tensors' offsets up front, so the whole plan (names, dtypes,
///   shapes, byte counts) is fixed at `init`; the bytes must then arrive in exactly that order and
///   amount.
/// - Header: `__metadata__` {"format": "pt"} first, then the tensors in data order, padded with
///   spaces to a multiple of 8 bytes, as the safetensors library pads it.
/// - Files are written under temporary names (`<name>.partial`); ``finish()`` closes them and
///   writes the index (also under a temporary name) and returns the renames still to be done, so
///   the caller can publish the whole folder at once. ``abort()`` removes what was written.
struct SafetensorsShardWriter {
    struct Tensor: Sendable, Equatable {
        var name: String
        var dtype: SafetensorsFile.DType
        /// Row-major shape, outermost first.
        var shape: [Int]

        var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    }

    /// A file written under a temporary name, to be renamed to `final` (both absolute paths).
    struct Staged: Sendable, Equatable {
        var temporary: String
        var final: String
    }

    static let indexName = "model.safetensors.index.json"
    static let singleName = "model.safetensors"

    /// The shards, as ranges of tensor indices, under huggingface_hub's rule (see the type's notes).
    static func plan(_ byteCounts: [Int], maxShardBytes: Int) -> [Range<Int>] {
        var shards: [Range<Int>] = []
        var start = 0, size = 0
        for (i, bytes) in byteCounts.enumerated() {
            if i > start, size + bytes > maxShardBytes {
                shards.append(start..<i)
                start = i
                size = 0
            }
            size += bytes
        }
        if start < byteCounts.count || byteCounts.isEmpty { shards.append(start..<byteCounts.count) }
        return shards
    }

    /// The file names of `count` shards, as transformers names them.
    static func shardNames(count: Int) -> [String] {
        guard count > 1 else { return [singleName] }
        func five(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return (1...count).map { "model-\(five($0))-of-\(five(count)).safetensors" }
    }

    /// A shard's header: the 8-byte little-endian length, then the JSON, padded with spaces to 8.
    static func header(_ tensors: ArraySlice<Tensor>) -> [UInt8] {
        var entries = ["\"__metadata__\":{\"format\":\"pt\"}"]
        var offset = 0
        for t in tensors {
            let shape = t.shape.map(String.init).joined(separator: ",")
            entries.append("\(HFJSON.quote(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}")
            offset += t.byteCount
        }
        var json = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count)
        let length = UInt64(json.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
        out += json
        return out
    }

    /// `model.safetensors.index.json` for these shards, as transformers writes it.
    static func index(_ tensors: [Tensor], shards: [Range<Int>], names: [String]) -> HFJSON {
        var map: [(String, HFJSON)] = []
        for (shard, range) in shards.enumerated() {
            for i in range { map.append((tensors[i].name, .string(names[shard]))) }
        }
        let total = tensors.reduce(0) { $0 + $1.byteCount }
        return .object([
            ("metadata", .object([("total_size", .int(total))])),
            ("weight_map", .object(map.sorted { $0.0 < $1.0 })),
        ])
    }

    let directory: String
    let tensors: [Tensor]
    let shards: [Range<Int>]
    let names: [String]
    /// Tensor data bytes of all shards together.
    let totalBytes: Int

    private var shard = -1
    private var fd: Int32 = -1
    private var tensor = 0
    private var written = 0
    private var staged: [Staged] = []

    /// Plans the shards; writes nothing yet. `directory` must exist.
    init(directory: String, tensors: [Tensor], maxShardBytes: Int) throws(ExportError) {
        guard maxShardBytes > 0 else { throw ExportError(.invalidOption, "the shard size must be positive, not \(maxShardBytes) bytes") }
        var seen = Set<String>()
        for t in tensors {
            guard seen.insert(t.name).inserted else { throw ExportError(.invalidSource, "tensor '\(t.name)' would be written twice") }
            guard t.name != "__metadata__", !t.name.isEmpty else { throw ExportError(.invalidSource, "'\(t.name)' cannot name a safetensors tensor") }
        }
        self.directory = directory
        self.tensors = tensors
        shards = Self.plan(tensors.map(\.byteCount), maxShardBytes: maxShardBytes)
        guard shards.count <= 99_999 else {
            throw ExportError(.invalidOption, "a shard size of \(maxShardBytes) bytes makes \(shards.count) shards; pick a larger one")
        }
        names = Self.shardNames(count: shards.count)
        totalBytes = tensors.reduce(0) { $0 + $1.byteCount }
        for name in names + (names.count > 1 ? [Self.indexName] : []) {
            staged.append(Staged(temporary: directory + "/" + name + ".partial", final: directory + "/" + name))
        }
    }

    /// The final file names (relative) this writer produces: the shards, then the index if any.
    var fileNames: [String] { names + (names.count > 1 ? [Self.indexName] : []) }

    /// The tensor the next bytes belong to, or nil when all are written.
    var currentTensor: Tensor? { tensor < tensors.count ? tensors[tensor] : nil }

    /// Appends the next bytes: they continue the current tensor (and may not run past its end).
    mutating func append(_ bytes: UnsafeRawBufferPointer) throws(ExportError) {
        var rest = bytes
        while !rest.isEmpty {
            try skipEmptyTensors()
            guard tensor < tensors.count else {
                throw ExportError(.invalidSource, "\(rest.count) bytes more than the \(tensors.count) planned tensors hold")
            }
            if fd < 0 { try openShard(of: tensor) }
            let take = min(rest.count, tensors[tensor].byteCount - written)
            try writeAll(UnsafeRawBufferPointer(rebasing: rest[..<take]))
            written += take
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            try closeFinishedTensor()
        }
    }

    /// Checks that every tensor was written in full, closes the last shard and writes the index
    /// under its temporary name. Returns the renames that publish the files (shards first, the
    /// index last); nothing is renamed here.
    mutating func finish() throws(ExportError) -> [Staged] {
        try skipEmptyTensors()
        guard tensor == tensors.count else {
            throw ExportError(.invalidSource, "tensor '\(tensors[tensor].name)' got \(written) of its \(tensors[tensor].byteCount) bytes")
        }
        // A folder of zero-size tensors still gets its files.
        while shard + 1 < shards.count {
            try openShard(of: shards[shard + 1].lowerBound)
        }
        try closeShard()
        if names.count > 1 {
            let data = Array(Self.index(tensors, shards: shards, names: names).rendered().utf8)
            try Self.writeFile(staged.last!.temporary, data)
        }
        return staged
    }

    /// Removes every temporary file this writer created.
    mutating func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        for s in staged { unlink(s.temporary) }
    }

    // MARK: -

    private mutating func skipEmptyTensors() throws(ExportError) {
        while tensor < tensors.count, tensors[tensor].byteCount == 0 {
            if fd < 0 { try openShard(of: tensor) }
            try closeFinishedTensor()
        }
    }

    private mutating func closeFinishedTensor() throws(ExportError) {
        guard tensor < tensors.count, written == tensors[tensor].byteCount else { return }
        tensor += 1
        written = 0
        if tensor == shards[shard].upperBound, shard + 1 < shards.count { try closeShard() }
    }

    private mutating func openShard(of index: Int) throws(ExportError) {
        try closeShard()
        shard = shards.firstIndex { $0.contains(index) } ?? shards.count - 1
        let path = staged[shard].temporary
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw Self.ioError("cannot create \(path)") }
        let fd = fd
        try Self.withBytes(Self.header(tensors[shards[shard]])) { (buffer) throws(ExportError) in try Self.writeAll(fd, buffer, path: path) }
    }

    private mutating func closeShard() throws(ExportError) {
        guard fd >= 0 else { return }
        let path = staged[shard].temporary
        let synced = fsync(fd) == 0
        let failure = synced ? nil : Self.ioError("cannot write \(path)")
        let closed = close(fd) == 0
        fd = -1
        if let failure { throw failure }
        guard closed else { throw Self.ioError("cannot write \(path)") }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(ExportError) {
        try Self.writeAll(fd, bytes, path: staged[shard].temporary)
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(ExportError) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, min(bytes.count - offset, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("cannot write \(path)")
            }
            guard n > 0 else { throw ExportError(.io, "cannot write \(path): the disk took no bytes") }
            offset += n
        }
    }

    /// Writes a small file in one go (created or truncated), synced to disk.
    static func writeFile(_ path: String, _ bytes: [UInt8]) throws(ExportError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ioError("cannot create \(path)") }
        do throws(ExportError) {
            try withBytes(bytes) { (buffer) throws(ExportError) in try writeAll(fd, buffer, path: path) }
            guard fsync(fd) == 0 else { throw ioError("cannot write \(path)") }
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        guard close(fd) == 0 else { throw ioError("cannot write \(path)") }
    }

    /// `body` over an array's bytes, keeping the error's type.
    static func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ExportError) -> R) throws(ExportError) -> R {
        let result: Result<R, ExportError> = bytes.withUnsafeBytes { buffer in
            do throws(ExportError) { return .success(try body(buffer)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// An I/O error naming `what` and errno's reason (disk full says so).
    static func ioError(_ what: String) -> ExportError {
        let code = errno
        let reason = code == ENOSPC ? "the disk is full (ENOSPC)" : code == EDQUOT ? "the disk quota is exhausted (EDQUOT)" : String(cString: strerror(code))
        return ExportError(.io, "\(what): \(reason)")
    }
}
