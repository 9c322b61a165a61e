/// A bounds-checked little-endian reader over a byte buffer.
///
/// Every read checks the remaining length first and throws `.truncated` instead of reading
/// past the end. Counts and lengths from the file are checked against the bytes that remain
/// *before* anything is allocated, so a declared length of 2^63 fails immediately.
struct GGUFParser {
    /// Deepest nesting of arrays inside arrays that the parser accepts (bounds recursion).
    static let maxArrayNesting = 64

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Bytes left after `position`.
    var remaining: Int { bytes.count - position }

    // MARK: Primitive reads

    /// Checks that `count` more bytes exist and returns the offset they start at.
    private mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> Int {
        guard count >= 0, count <= remaining else {
            throw GGUFError(.truncated, "file ends while reading \(what()) at offset \(position): need \(count) bytes, \(remaining) left")
        }
        let start = position
        position += count
        return start
    }

    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
        _ = try take(count, what())
    }

    mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> UnsafeRawBufferPointer {
        let start = try take(count, what())
        return UnsafeRawBufferPointer(rebasing: bytes[start ..< start + count])
    }

    mutating func readInteger<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        let start = try take(MemoryLayout<T>.size, what())
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: T.self))
    }

    mutating func readU32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 {
        try readInteger(UInt32.self, what())
    }

    mutating func readU64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 {
        try readInteger(UInt64.self, what())
    }

    /// Reads a `UInt64` count and converts it to `Int`, failing with `.outOfRange` above `Int.max`.
    mutating func readCount(_ what: @autoclosure () -> String) throws(GGUFError) -> Int {
        let at = position
        let raw = try readU64(what())
        guard let n = Int(exactly: raw) else {
            throw GGUFError(.outOfRange, "\(what()) \(raw) at offset \(at) exceeds Int.max")
        }
        return n
    }

    /// Reads a GGUF string: `UInt64` byte length, then that many UTF-8 bytes.
    mutating func readString(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let at = position
        let length = try readCount("length of \(what())")
        let raw = try readBytes(length, what())
        guard let s = GGUFParser.decodeUTF8(raw) else {
            throw GGUFError(.invalidString, "\(what()) at offset \(at) is not valid UTF-8")
        }
        return s
    }

    static func decodeUTF8(_ raw: UnsafeRawBufferPointer) -> String? {
        if raw.isEmpty { return "" }
        return raw.withMemoryRebound(to: UInt8.self) { String(validating: $0, as: UTF8.self) }
    }

    /// Reads a value-type tag.
    mutating func readValueType(_ what: @autoclosure () -> String) throws(GGUFError) -> GGUFValueType {
        let at = position
        let raw = try readU32(what())
        guard let type = GGUFValueType(rawValue: raw) else {
            throw GGUFError(.unknownValueType, "\(what()) has unknown value type \(raw) at offset \(at)")
        }
        return type
    }

    // MARK: Values

    /// Reads one value of `type` (for `.array`: element type, count, elements).
    mutating func readValue(_ type: GGUFValueType, _ what: @autoclosure () -> String, depth: Int = 0) throws(GGUFError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try readInteger(UInt8.self, what()))
        case .int8: return .int8(try readInteger(Int8.self, what()))
        case .uint16: return .uint16(try readInteger(UInt16.self, what()))
        case .int16: return .int16(try readInteger(Int16.self, what()))
        case .uint32: return .uint32(try readInteger(UInt32.self, what()))
        case .int32: return .int32(try readInteger(Int32.self, what()))
        case .float32: return .float32(Float(bitPattern: try readInteger(UInt32.self, what())))
        case .bool: return .bool(try readInteger(UInt8.self, what()) != 0)
        case .string: return .string(try readString(what()))
        case .uint64: return .uint64(try readInteger(UInt64.self, what()))
        case .int64: return .int64(try readInteger(Int64.self, what()))
        case .float64: return .float64(Double(bitPattern: try readInteger(UInt64.self, what())))
        case .array: return .array(try readArray(what(), depth: depth))
        }
    }

    /// Reads an array body: element type tag, `UInt64` count, elements.
    mutating func readArray(_ what: @autoclosure () -> String, depth: Int) throws(GGUFError) -> GGUFArray {
        guard depth < GGUFParser.maxArrayNesting else {
            throw GGUFError(.outOfRange, "\(what()) nests arrays deeper than \(GGUFParser.maxArrayNesting) levels at offset \(position)")
        }
        let elementType = try readValueType("element type of \(what())")
        let at = position
        let count = try readCount("element count of \(what())")
        // Reject counts the remaining bytes cannot possibly hold, before allocating anything.
        let (minBytes, overflow) = count.multipliedReportingOverflow(by: elementType.minimumEncodedSize)
        guard !overflow, minBytes <= remaining else {
            throw GGUFError(.truncated, "\(what()) declares \(count) \(elementType) elements at offset \(at) but only \(remaining) bytes remain")
        }
        switch elementType {
        case .uint8: return .uint8(try readFixed(UInt8.self, count, what()))
        case .int8: return .int8(try readFixed(Int8.self, count, what()))
        case .uint16: return .uint16(try readFixed(UInt16.self, count, what()))
        case .int16: return .int16(try readFixed(Int16.self, count, what()))
        case .uint32: return .uint32(try readFixed(UInt32.self, count, what()))
        case .int32: return .int32(try readFixed(Int32.self, count, what()))
        case .float32:
            return .float32(try readFixed(UInt32.self, count, what()).map { Float(bitPattern: $0) })
        case .bool:
            return .bool(try readFixed(UInt8.self, count, what()).map { $0 != 0 })
        case .uint64: return .uint64(try readFixed(UInt64.self, count, what()))
        case .int64: return .int64(try readFixed(Int64.self, count, what()))
        case .float64:
            return .float64(try readFixed(UInt64.self, count, what()).map { Double(bitPattern: $0) })
        case .string:
            var out: [String] = []
            out.reserveCapacity(count)
            for _ in 0 ..< count {
                out.append(try readString("element of \(what())"))
            }
            return .strings(out)
        case .array:
            var out: [GGUFArray] = []
            out.reserveCapacity(count)
            for _ in 0 ..< count {
                out.append(try readArray("nested array in \(what())", depth: depth + 1))
            }
            return .arrays(out)
        }
    }

    /// Reads `count` little-endian fixed-width integers.
    private mutating func readFixed<T: FixedWidthInteger>(_: T.Type, _ count: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> [T] {
        let size = MemoryLayout<T>.size
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else {
            throw GGUFError(.truncated, "\(what()) declares \(count) elements, more than the file can hold")
        }
        let raw = try readBytes(byteCount, what())
        return [T](unsafeUninitializedCapacity: count) { out, initialized in
            #if _endian(little)
            if count > 0, let dst = out.baseAddress, let src = raw.baseAddress {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: byteCount)
            }
            #else
            for i in 0 ..< count {
                out[i] = T(littleEndian: raw.loadUnaligned(fromByteOffset: i * size, as: T.self))
            }
            #endif
            initialized = count
        }
    }
}
