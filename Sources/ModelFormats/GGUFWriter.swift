#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a GGUF file (version 3 by default) in memory.
///
/// Metadata keeps insertion order; tensors are laid out in the order added, each at an
/// offset that is a multiple of ``alignment`` and padded to it (the layout llama.cpp expects).
/// If the alignment is not the default 32, `general.alignment` is written automatically.
///
/// ```swift
/// var w = GGUFWriter()
/// w.set("general.architecture", .string("llama"))
/// try w.addTensor(name: "x", type: .f32, dimensions: [4], data: bytes)
/// try w.write(to: path)
/// ```
public struct GGUFWriter: Sendable {
    /// Tensor data alignment in bytes; must be a non-zero power of two when serializing.
    public var alignment: Int
    /// The format version written: 3 (default) or 2 (same layout).
    public var version: UInt32 = 3

    var entries: [(key: String, value: GGUFValue)] = []
    var keyIndex: [String: Int] = [:]
    private var tensorEntries: [(info: GGUFTensorInfo, data: [UInt8])] = []
    private var tensorNames: Set<String> = []

    /// Creates an empty writer.
    public init(alignment: Int = 32) {
        self.alignment = alignment
    }

    /// Metadata keys in the order they will be written.
    public var metadataKeys: [String] { entries.map(\.key) }

    /// The tensors added so far, in order. Their `offset` is 0: data offsets are assigned
    /// by ``serialize()``.
    public var tensors: [GGUFTensorInfo] { tensorEntries.map(\.info) }

    /// Sets a metadata value. A new key is appended; an existing key keeps its position and
    /// gets the new value.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = keyIndex[key] {
            entries[i].value = value
        } else {
            keyIndex[key] = entries.count
            entries.append((key, value))
        }
    }

    /// Removes a metadata key if present.
    public mutating func remove(_ key: String) {
        guard let i = keyIndex[key] else { return }
        entries.remove(at: i)
        keyIndex = [:]
        for (j, e) in entries.enumerated() { keyIndex[e.key] = j }
    }

    /// Adds a tensor. `dimensions` are in ggml order (`dimensions[0]` is the row length) and
    /// `data` must be exactly the tensor's byte count.
    ///
    /// Throws `.invalidTensor` for a bad shape or data size, `.duplicateTensor` for a repeated
    /// name, `.invalidString` for an empty name, `.overflow` for sizes that overflow.
    public mutating func addTensor(name: String, type: GGMLType, dimensions: [Int], data: [UInt8]) throws(GGUFError) {
        guard !name.isEmpty else {
            throw GGUFError(.invalidString, "tensor name is empty")
        }
        guard !tensorNames.contains(name) else {
            throw GGUFError(.duplicateTensor, "tensor '\(name)' was already added")
        }
        let info = try GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: 0)
        guard data.count == info.byteCount else {
            throw GGUFError(.invalidTensor, "tensor '\(name)' \(type.name) \(dimensions) needs \(info.byteCount) bytes, got \(data.count)")
        }
        tensorNames.insert(name)
        tensorEntries.append((info, data))
    }

    /// The complete file image.
    public func serialize() throws(GGUFError) -> [UInt8] {
        guard alignment > 0, alignment & (alignment - 1) == 0, let alignment32 = UInt32(exactly: alignment) else {
            throw GGUFError(.invalidAlignment, "alignment \(alignment) is not a non-zero power of two that fits in UInt32")
        }
        guard version == 2 || version == 3 else {
            throw GGUFError(.unsupportedVersion, "GGUFWriter writes versions 2 and 3, not \(version)")
        }
        let kv = try resolvedEntries(alignment32)

        // Lay out the data section.
        var offsets: [Int] = []
        offsets.reserveCapacity(tensorEntries.count)
        var dataSize = 0
        for t in tensorEntries {
            offsets.append(dataSize)
            let (end, o) = dataSize.addingReportingOverflow(GGUFWriter.padded(t.info.byteCount, alignment))
            guard !o else { throw GGUFError(.overflow, "data section size overflows") }
            dataSize = end
        }

        var out = try GGUFWriter.header(version: version, kv: kv, alignment: alignment,
                                        tensors: zip(tensorEntries, offsets).map { ($0.info.name, $0.info.dimensions, $0.info.type, $1) })
        out.reserveCapacity(out.count + dataSize)
        for t in tensorEntries {
            out.append(contentsOf: t.data)
            out.append(contentsOf: repeatElement(0, count: GGUFWriter.padded(t.data.count, alignment) - t.data.count))
        }
        return out
    }

    /// Serializes and writes the file to `path` (created or truncated, mode 0644).
    public func write(to path: String) throws(GGUFError) {
        let bytes = try serialize()
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw GGUFError(.io, "cannot create '\(path)': \(MappedFile.errnoText())")
        }
        var failure: GGUFError?
        bytes.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count, let base = buf.baseAddress {
                let n = Glibc_write(fd, base + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = GGUFError(.io, "cannot write '\(path)': \(MappedFile.errnoText())")
                    return
                }
                done += n
            }
        }
        if close(fd) != 0, failure == nil {
            failure = GGUFError(.io, "cannot close '\(path)': \(MappedFile.errnoText())")
        }
        if let failure { throw failure }
    }

    /// The metadata as written: ``entries`` plus `general.alignment` when it is not the default.
    func resolvedEntries(_ alignment32: UInt32) throws(GGUFError) -> [(key: String, value: GGUFValue)] {
        var kv = entries
        if let i = keyIndex[GGUFFile.alignmentKey] {
            guard kv[i].value.intValue == alignment else {
                throw GGUFError(.invalidAlignment, "'\(GGUFFile.alignmentKey)' is \(kv[i].value) but the writer's alignment is \(alignment)")
            }
        } else if alignment != GGUFFile.defaultAlignment {
            kv.append((GGUFFile.alignmentKey, .uint32(alignment32)))
        }
        return kv
    }

    // MARK: Encoding

    /// `n` rounded up to a multiple of `alignment` (a power of two).
    public static func padded(_ n: Int, _ alignment: Int) -> Int {
        (n + alignment - 1) & ~(alignment - 1)
    }

    static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func putString(_ s: String, _ out: inout [UInt8]) {
        let utf8 = s.utf8
        put(UInt64(utf8.count), &out)
        out.append(contentsOf: utf8)
    }

    static func putValue(_ v: GGUFValue, _ out: inout [UInt8]) {
        switch v {
        case .uint8(let x): put(x, &out)
        case .int8(let x): put(x, &out)
        case .uint16(let x): put(x, &out)
        case .int16(let x): put(x, &out)
        case .uint32(let x): put(x, &out)
        case .int32(let x): put(x, &out)
        case .float32(let x): put(x.bitPattern, &out)
        case .bool(let x): put(UInt8(x ? 1 : 0), &out)
        case .string(let s): putString(s, &out)
        case .uint64(let x): put(x, &out)
        case .int64(let x): put(x, &out)
        case .float64(let x): put(x.bitPattern, &out)
        case .array(let a): putArray(a, &out)
        }
    }

    static func putArray(_ a: GGUFArray, _ out: inout [UInt8]) {
        put(a.elementType.rawValue, &out)
        put(UInt64(a.count), &out)
        switch a {
        case .uint8(let xs): out.append(contentsOf: xs)
        case .int8(let xs): for x in xs { put(x, &out) }
        case .uint16(let xs): for x in xs { put(x, &out) }
        case .int16(let xs): for x in xs { put(x, &out) }
        case .uint32(let xs): for x in xs { put(x, &out) }
        case .int32(let xs): for x in xs { put(x, &out) }
        case .float32(let xs): for x in xs { put(x.bitPattern, &out) }
        case .bool(let xs): for x in xs { put(UInt8(x ? 1 : 0), &out) }
        case .strings(let xs): for x in xs { putString(x, &out) }
        case .uint64(let xs): for x in xs { put(x, &out) }
        case .int64(let xs): for x in xs { put(x, &out) }
        case .float64(let xs): for x in xs { put(x.bitPattern, &out) }
        case .arrays(let xs): for x in xs { putArray(x, &out) }
        }
    }
}

#if canImport(Darwin)
private func Glibc_write(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, buf, n) }
#elseif canImport(Musl)
private func Glibc_write(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Musl.write(fd, buf, n) }
#else
private func Glibc_write(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, buf, n) }
#endif

extension GGUFWriter {
    /// A GGUF header: magic, version, counts, the key-value pairs, the tensor infos (name,
    /// dimensions, type, data offset), padded to `alignment`. The one encoding both
    /// ``serialize()`` and ``Stream`` write.
    static func header(version: UInt32, kv: [(String, GGUFValue)], alignment: Int,
                       tensors: [(name: String, dimensions: [Int], type: GGMLType, offset: Int)]) throws(GGUFError) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: [0x47, 0x47, 0x55, 0x46])
        put(version, &out)
        put(UInt64(tensors.count), &out)
        put(UInt64(kv.count), &out)
        for (key, value) in kv {
            guard !key.isEmpty else { throw GGUFError(.invalidString, "metadata key is empty") }
            putString(key, &out)
            put(value.type.rawValue, &out)
            putValue(value, &out)
        }
        for t in tensors {
            putString(t.name, &out)
            put(UInt32(t.dimensions.count), &out)
            for d in t.dimensions { put(Int64(d), &out) }
            put(t.type.rawValue, &out)
            put(UInt64(t.offset), &out)
        }
        out.append(contentsOf: repeatElement(0, count: padded(out.count, alignment) - out.count))
        return out
    }
}
