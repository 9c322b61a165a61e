// GGUF binary format (versions 2 and 3; all numbers little-endian)
// =================================================================
//
//   offset  size  field
//   0       4     magic: the ASCII bytes "GGUF" (0x47 0x47 0x55 0x46)
//   4       4     version: UInt32. 1 is the obsolete v1 (32-bit counts, rejected);
//                 2 and 3 share the layout below (v3 only added big-endian files,
//                 which this reader rejects: their version reads as 0x0?000000 here).
//   8       8     tensor_count: UInt64
//   16      8     metadata_kv_count: UInt64
//   24      ...   metadata_kv_count key/value pairs, then tensor_count tensor infos,
//                 then padding, then the tensor data section.
//
// string  := UInt64 byte length, then that many UTF-8 bytes (no NUL terminator)
//
// kv      := key: string                (non-empty, unique, conventionally "a.b.c")
//            value_type: UInt32         (GGUFValueType)
//            value                      (encoding depends on value_type)
//
// value   := uint8/int8/bool: 1 byte (bool: 0 false, non-zero true)
//            uint16/int16: 2, uint32/int32/float32: 4, uint64/int64/float64: 8
//            string: as above
//            array: element_type: UInt32, count: UInt64, then `count` values of
//                   element_type. An element type of array means nested arrays:
//                   each element is itself element_type + count + values.
//
// tensor_info := name: string           (unique)
//                n_dims: UInt32         (1...4, ggml's GGML_MAX_DIMS)
//                dims: n_dims × Int64   (ne[0] first: the contiguous row length)
//                type: UInt32           (ggml_type / GGMLType)
//                offset: UInt64         (relative to the data section; a multiple of
//                                        the alignment)
//
// The data section starts at the first multiple of `alignment` after the last tensor
// info. `alignment` is the metadata key "general.alignment" (a UInt32 in practice; any
// non-zero power of two integer is accepted) and defaults to 32. Each tensor occupies
// (ne[0] / blockSize × blockBytes) × ne[1] × ne[2] × ne[3] bytes starting at
// data_start + offset; writers pad every tensor to the alignment. Files with no tensors
// (vocab-only files) may end right after the metadata without the padding.
//
// The reader trusts nothing: every count and length is checked against the bytes left
// before allocating, every size computation is overflow-checked, and every tensor's
// bytes must lie inside the file.

/// A parsed GGUF file: header, metadata and tensor directory, with zero-copy access to the
/// tensor bytes.
///
/// `GGUFFile(path:)` memory-maps the file (read-only, private); metadata is decoded at init,
/// tensor data is never copied — ``tensorData(_:)`` returns pointers into the mapping, valid
/// for as long as the `GGUFFile` lives. The object is immutable after `init` and safe to
/// share across threads.
public final class GGUFFile: @unchecked Sendable {
    /// The GGUF default tensor data alignment, used when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// The metadata key that overrides the alignment.
    public static let alignmentKey = "general.alignment"

    /// The owner of the bytes (mapping or heap copy).
    public let storage: MappedFile
    /// The file's format version (2 or 3).
    public let version: UInt32
    /// Tensor data alignment in bytes (a power of two).
    public let alignment: Int
    /// All metadata, keyed by name.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor descriptions in file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute byte offset of the data section (tensor offsets are relative to this).
    public let dataOffset: Int

    private let tensorIndex: [String: Int]
    /// For an assembled file (``init(metadata:tensors:)``): the owner of each tensor's bytes, in
    /// `tensors` order, each tensor's `offset` being absolute in its owner. `nil` for a parsed file.
    private let tensorOwners: [MappedFile]?

    /// Memory-maps and parses the file at `path`. The file is not read into memory.
    public convenience init(path: String) throws(GGUFError) {
        try self.init(storage: try MappedFile(path: path))
    }

    /// Parses a GGUF image held in memory (the bytes are copied once into an aligned buffer).
    public convenience init(bytes: [UInt8]) throws(GGUFError) {
        try self.init(storage: MappedFile(copying: bytes))
    }

    /// Parses the bytes owned by `storage`.
    public init(storage: MappedFile) throws(GGUFError) {
        self.storage = storage
        let bytes = storage.buffer
        var p = GGUFParser(bytes)

        // Header.
        let magic = try p.readBytes(4, "magic")
        guard magic.elementsEqual([0x47, 0x47, 0x55, 0x46]) else {
            let shown = magic.map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "?" }.joined()
            throw GGUFError(.badMagic, "not a GGUF file: magic is '\(shown)', expected 'GGUF'")
        }
        let version = try p.readU32("version")
        if version != 0, version & 0xFFFF == 0 {
            throw GGUFError(.unsupportedVersion, "version \(version) (0x\(String(version, radix: 16))) looks byte-swapped: this is probably a big-endian GGUF file; only little-endian files are supported")
        }
        guard version == 2 || version == 3 else {
            let why = version == 1 ? "GGUF v1 is obsolete and not supported" : "only versions 2 and 3 are supported"
            throw GGUFError(.unsupportedVersion, "unsupported GGUF version \(version): \(why)")
        }
        self.version = version
        let tensorCount = try p.readCount("tensor count")
        let kvCount = try p.readCount("metadata key/value count")

        // Metadata. Each pair takes at least 8 (key length) + 4 (type) + 1 bytes.
        guard kvCount <= p.remaining / 13 else {
            throw GGUFError(.truncated, "header declares \(kvCount) metadata entries but only \(p.remaining) bytes remain")
        }
        var metadata: [String: GGUFValue] = [:]
        metadata.reserveCapacity(kvCount)
        var keys: [String] = []
        keys.reserveCapacity(kvCount)
        for i in 0 ..< kvCount {
            let keyOffset = p.position
            let key = try p.readString("metadata key #\(i)")
            guard !key.isEmpty else {
                throw GGUFError(.invalidString, "metadata key #\(i) at offset \(keyOffset) is empty")
            }
            guard metadata[key] == nil else {
                throw GGUFError(.duplicateKey, "duplicate metadata key '\(key)' at offset \(keyOffset)")
            }
            let type = try p.readValueType("metadata '\(key)'")
            let value = try p.readValue(type, "metadata '\(key)'")
            metadata[key] = value
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        // Alignment.
        var alignment = GGUFFile.defaultAlignment
        if let value = metadata[GGUFFile.alignmentKey] {
            guard let a = value.intValue, a > 0, a & (a - 1) == 0 else {
                throw GGUFError(.invalidAlignment, "'\(GGUFFile.alignmentKey)' is \(value) (\(value.type)); it must be a non-zero power-of-two integer")
            }
            alignment = a
        }
        self.alignment = alignment

        // Tensor infos. Each takes at least 8 + 4 + 8 + 4 + 8 bytes.
        guard tensorCount <= p.remaining / 32 else {
            throw GGUFError(.truncated, "header declares \(tensorCount) tensors but only \(p.remaining) bytes remain")
        }
        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(tensorCount)
        var index: [String: Int] = [:]
        index.reserveCapacity(tensorCount)
        for i in 0 ..< tensorCount {
            let infoOffset = p.position
            let name = try p.readString("name of tensor #\(i)")
            guard index[name] == nil else {
                throw GGUFError(.duplicateTensor, "duplicate tensor name '\(name)' at offset \(infoOffset)")
            }
            let nDims = try p.readU32("dimension count of tensor '\(name)'")
            guard nDims >= 1, nDims <= UInt32(GGUFTensorInfo.maxDimensions) else {
                throw GGUFError(.invalidTensor, "tensor '\(name)' has \(nDims) dimensions; must be 1...\(GGUFTensorInfo.maxDimensions)")
            }
            var dims: [Int] = []
            dims.reserveCapacity(Int(nDims))
            for d in 0 ..< Int(nDims) {
                let raw = try p.readInteger(Int64.self, "dimension \(d) of tensor '\(name)'")
                guard raw > 0, let dim = Int(exactly: raw) else {
                    throw GGUFError(.invalidTensor, "tensor '\(name)' dimension \(d) is \(raw); must be > 0")
                }
                dims.append(dim)
            }
            let rawType = try p.readU32("type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError(.unknownTensorType, "tensor '\(name)' has unknown ggml type \(rawType)")
            }
            let offset = try p.readCount("data offset of tensor '\(name)'")
            let info = try GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: offset)
            guard offset % alignment == 0 else {
                throw GGUFError(.invalidAlignment, "tensor '\(name)' data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            index[name] = infos.count
            infos.append(info)
        }

        // Data section: starts at the next multiple of the alignment.
        let headerEnd = p.position
        let (padded, padOverflow) = headerEnd.addingReportingOverflow(alignment - 1)
        guard !padOverflow else {
            throw GGUFError(.overflow, "data section offset overflows")
        }
        let dataOffset = padded & ~(alignment - 1)
        self.dataOffset = dataOffset
        let fileSize = bytes.count
        for info in infos {
            let (start, o1) = dataOffset.addingReportingOverflow(info.offset)
            let (end, o2) = start.addingReportingOverflow(info.byteCount)
            guard !o1, !o2 else {
                throw GGUFError(.overflow, "tensor '\(info.name)' offset \(info.offset) + size \(info.byteCount) overflows")
            }
            guard end <= fileSize else {
                throw GGUFError(.truncated, "tensor '\(info.name)' data [\(start), \(end)) extends past the end of the file (\(fileSize) bytes)")
            }
        }
        self.tensors = infos
        self.tensorIndex = index
        self.tensorOwners = nil
    }

    /// A file assembled in memory from parts of other files: the metadata as given, and each
    /// tensor's bytes left where they are (a safetensors mapping, another GGUF's mapping, a heap
    /// buffer of converted weights). How a Hugging Face checkpoint or a split GGUF becomes one
    /// model without copying its weights. Every tensor's bytes must lie inside its owner.
    public init(metadata: [(String, GGUFValue)], tensors: [(name: String, dimensions: [Int], type: GGMLType, owner: MappedFile, offset: Int)]) throws(GGUFError) {
        var values: [String: GGUFValue] = [:]
        var keys: [String] = []
        for (key, value) in metadata {
            guard values[key] == nil else { throw GGUFError(.duplicateKey, "duplicate metadata key '\(key)'") }
            values[key] = value
            keys.append(key)
        }
        var infos: [GGUFTensorInfo] = []
        var owners: [MappedFile] = []
        var index: [String: Int] = [:]
        for t in tensors {
            guard index[t.name] == nil else { throw GGUFError(.duplicateTensor, "duplicate tensor name '\(t.name)'") }
            let info = try GGUFTensorInfo(name: t.name, dimensions: t.dimensions, type: t.type, offset: t.offset)
            let (end, overflow) = t.offset.addingReportingOverflow(info.byteCount)
            guard t.offset >= 0, !overflow, end <= t.owner.count else {
                throw GGUFError(.truncated, "tensor '\(t.name)' [\(t.offset), \(end)) lies outside its \(t.owner.count)-byte source")
            }
            index[t.name] = infos.count
            infos.append(info)
            owners.append(t.owner)
        }
        storage = MappedFile(copying: [])
        version = 3
        alignment = GGUFFile.defaultAlignment
        self.metadata = values
        metadataKeys = keys
        self.tensors = infos
        tensorIndex = index
        tensorOwners = owners
        dataOffset = 0
    }

    /// Size of the file in bytes.
    public var fileSize: Int { storage.count }

    /// The description of the tensor called `name`, or `nil`.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        guard let i = tensorIndex[name] else { return nil }
        return tensors[i]
    }

    /// The bytes of a tensor of this file. Valid while `self` lives; do not write through it.
    ///
    /// - Precondition: `info` describes a region inside this file's data section (any
    ///   `GGUFTensorInfo` obtained from this file does).
    public func tensorData(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        if let tensorOwners {
            guard let i = tensorIndex[info.name] else { preconditionFailure("tensor '\(info.name)' is not in this model") }
            return UnsafeRawBufferPointer(rebasing: tensorOwners[i].buffer[tensors[i].offset ..< tensors[i].offset + tensors[i].byteCount])
        }
        let bytes = storage.buffer
        let (start, o1) = dataOffset.addingReportingOverflow(info.offset)
        let (end, o2) = start.addingReportingOverflow(info.byteCount)
        precondition(!o1 && !o2 && info.offset >= 0 && info.byteCount >= 0 && end <= bytes.count,
                     "tensor '\(info.name)' does not lie inside this GGUF file")
        return UnsafeRawBufferPointer(rebasing: bytes[start ..< end])
    }

    /// Who owns a tensor's bytes and where they start in it: how another assembled model (a
    /// quantized copy) keeps referring to them without a copy.
    public func tensorLocation(_ info: GGUFTensorInfo) -> (owner: MappedFile, offset: Int) {
        if let tensorOwners, let i = tensorIndex[info.name] { return (tensorOwners[i], tensors[i].offset) }
        return (storage, dataOffset + info.offset)
    }

    /// The bytes of the tensor called `name`, or `nil` if there is none.
    public func tensorData(named name: String) -> UnsafeRawBufferPointer? {
        guard let info = tensor(named: name) else { return nil }
        return tensorData(info)
    }
}
