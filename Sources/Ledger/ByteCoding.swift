import Foundation

/// Writes the primitives of the module's canonical binary encodings. All integers are
/// big-endian; strings and byte strings are a `u32` length followed by the bytes.
struct ByteWriter {
    private(set) var bytes = Data()

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func raw(_ d: Data) { bytes.append(d) }

    mutating func blob(_ d: Data, field: String) throws {
        guard d.count <= Int(UInt32.max) else {
            throw LedgerError(.invalidValue, "\(field) is too long to encode (\(d.count) bytes)")
        }
        u32(UInt32(d.count))
        bytes.append(d)
    }

    mutating func string(_ s: String, field: String) throws { try blob(Data(s.utf8), field: field) }

    /// A finite IEEE 754 binary64, as its big-endian bit pattern.
    mutating func double(_ v: Double, field: String) throws {
        guard v.isFinite else { throw LedgerError(.invalidValue, "\(field) must be finite, got \(v)") }
        u64(v.bitPattern)
    }

    /// `0x00` for nil, or `0x01` followed by the value.
    mutating func optional<T>(_ v: T?, _ write: (inout ByteWriter, T) throws -> Void) rethrows {
        guard let v else { return u8(0) }
        u8(1)
        try write(&self, v)
    }
}

/// Reads what ``ByteWriter`` writes, rejecting anything that another encoder could not have
/// produced canonically (bad presence bytes, invalid UTF-8, non-finite doubles, truncation).
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0
    let what: String

    init(_ data: Data, what: String) {
        self.bytes = [UInt8](data)
        self.what = what
    }

    var isAtEnd: Bool { offset == bytes.count }

    func fail(_ reason: String) -> LedgerError {
        LedgerError(.malformed, "\(what): \(reason) at byte \(offset)")
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, bytes.count - offset >= n else { throw fail("truncated") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u32() throws -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func u64() throws -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
    mutating func i64() throws -> Int64 { Int64(bitPattern: try u64()) }
    mutating func raw(_ n: Int) throws -> Data { Data(try take(n)) }
    mutating func blob() throws -> Data { Data(try take(Int(try u32()))) }

    mutating func string(field: String) throws -> String {
        let data = try blob()
        guard let s = String(validating: data, as: UTF8.self) else { throw fail("\(field) is not valid UTF-8") }
        return s
    }

    mutating func double(field: String) throws -> Double {
        let v = Double(bitPattern: try u64())
        guard v.isFinite else { throw fail("\(field) is not finite") }
        return v
    }

    mutating func optional<T>(field: String, _ read: (inout ByteReader) throws -> T) throws -> T? {
        switch try u8() {
        case 0: return nil
        case 1: return try read(&self)
        case let b: throw fail("\(field) has presence byte \(b), not 0 or 1")
        }
    }

    func expectEnd() throws {
        guard isAtEnd else { throw fail("\(bytes.count - offset) trailing bytes") }
    }
}
