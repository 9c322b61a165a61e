/// A GGUF metadata array: one element type and typed, contiguous storage.
///
/// Nested arrays (`arrays`) hold one `GGUFArray` per element; each inner array carries its
/// own element type, exactly as in the file.
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8])
    case int8([Int8])
    case uint16([UInt16])
    case int16([Int16])
    case uint32([UInt32])
    case int32([Int32])
    case float32([Float])
    case bool([Bool])
    case strings([String])
    case uint64([UInt64])
    case int64([Int64])
    case float64([Double])
    case arrays([GGUFArray])

    /// Number of elements.
    public var count: Int {
        switch self {
        case .uint8(let a): return a.count
        case .int8(let a): return a.count
        case .uint16(let a): return a.count
        case .int16(let a): return a.count
        case .uint32(let a): return a.count
        case .int32(let a): return a.count
        case .float32(let a): return a.count
        case .bool(let a): return a.count
        case .strings(let a): return a.count
        case .uint64(let a): return a.count
        case .int64(let a): return a.count
        case .float64(let a): return a.count
        case .arrays(let a): return a.count
        }
    }

    /// `true` when the array has no elements.
    public var isEmpty: Bool { count == 0 }

    /// The element type tag written in the file.
    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .strings: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        case .arrays: return .array
        }
    }

    /// An empty array of the given element type.
    public static func empty(_ elementType: GGUFValueType) -> GGUFArray {
        switch elementType {
        case .uint8: return .uint8([])
        case .int8: return .int8([])
        case .uint16: return .uint16([])
        case .int16: return .int16([])
        case .uint32: return .uint32([])
        case .int32: return .int32([])
        case .float32: return .float32([])
        case .bool: return .bool([])
        case .string: return .strings([])
        case .uint64: return .uint64([])
        case .int64: return .int64([])
        case .float64: return .float64([])
        case .array: return .arrays([])
        }
    }

    /// The elements as `[String]`, or `nil` if this is not a string array.
    public var stringValues: [String]? {
        if case .strings(let a) = self { return a }
        return nil
    }

    /// The elements as `[Int]` if this is an integer array whose every element fits in `Int`;
    /// otherwise `nil`.
    public var intValues: [Int]? {
        switch self {
        case .uint8(let a): return a.map { Int($0) }
        case .int8(let a): return a.map { Int($0) }
        case .uint16(let a): return a.map { Int($0) }
        case .int16(let a): return a.map { Int($0) }
        case .uint32(let a): return a.map { Int($0) }
        case .int32(let a): return a.map { Int($0) }
        case .uint64(let a):
            var out: [Int] = []
            out.reserveCapacity(a.count)
            for v in a {
                guard let i = Int(exactly: v) else { return nil }
                out.append(i)
            }
            return out
        case .int64(let a): return a.map { Int($0) }
        default: return nil
        }
    }

    /// The elements as `[Float]` if this is a float32, float64 or integer array; otherwise `nil`.
    public var floatValues: [Float]? {
        switch self {
        case .float32(let a): return a
        case .float64(let a): return a.map { Float($0) }
        case .uint8(let a): return a.map { Float($0) }
        case .int8(let a): return a.map { Float($0) }
        case .uint16(let a): return a.map { Float($0) }
        case .int16(let a): return a.map { Float($0) }
        case .uint32(let a): return a.map { Float($0) }
        case .int32(let a): return a.map { Float($0) }
        case .uint64(let a): return a.map { Float($0) }
        case .int64(let a): return a.map { Float($0) }
        default: return nil
        }
    }
}

extension GGUFArray: CustomStringConvertible {
    public var description: String {
        let n = count
        let shown: String
        switch self {
        case .uint8(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .int8(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .uint16(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .int16(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .uint32(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .int32(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .float32(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .bool(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .strings(let a): shown = a.prefix(8).map { String(reflecting: $0) }.joined(separator: ", ")
        case .uint64(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .int64(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .float64(let a): shown = a.prefix(8).map { "\($0)" }.joined(separator: ", ")
        case .arrays(let a): shown = a.prefix(8).map { $0.description }.joined(separator: ", ")
        }
        return "[\(elementType) × \(n): \(shown)\(n > 8 ? ", …" : "")]"
    }
}
