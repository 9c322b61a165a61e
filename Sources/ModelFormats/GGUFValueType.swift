/// The type tag of a GGUF metadata value, as stored in the file (a little-endian `UInt32`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0
    case int8 = 1
    case uint16 = 2
    case int16 = 3
    case uint32 = 4
    case int32 = 5
    case float32 = 6
    /// One byte; 0 is false, anything else is read as true.
    case bool = 7
    /// A `UInt64` byte length followed by that many UTF-8 bytes (no terminator).
    case string = 8
    /// An element type tag, a `UInt64` count, then the elements.
    case array = 9
    case uint64 = 10
    case int64 = 11
    case float64 = 12

    /// The encoded size of one value of this type, or `nil` for the variable-size types
    /// (`string`, `array`).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The smallest number of bytes one value of this type can occupy in a file
    /// (used to reject absurd counts before allocating).
    public var minimumEncodedSize: Int {
        switch self {
        case .string: return 8          // length only
        case .array: return 4 + 8       // element type + count
        default: return fixedSize ?? 1
        }
    }

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}
