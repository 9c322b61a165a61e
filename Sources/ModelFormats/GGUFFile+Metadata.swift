/// Typed metadata accessors.
///
/// The throwing variants fail with `.missingKey` when the key is absent and `.typeMismatch`
/// when the value has an unusable type; the `optional…` variants return `nil` for an absent
/// key but still throw on a wrong type. Messages always name the key.
extension GGUFFile {
    /// The raw value for `key`, or `nil`.
    public subscript(key: String) -> GGUFValue? { metadata[key] }

    /// The raw value for `key`; throws `.missingKey` if absent.
    public func value(_ key: String) throws(GGUFError) -> GGUFValue {
        guard let v = metadata[key] else {
            throw GGUFError(.missingKey, "metadata key '\(key)' is missing")
        }
        return v
    }

    /// A string value.
    public func string(_ key: String) throws(GGUFError) -> String {
        try GGUFFile.asString(key, try value(key))
    }

    /// Any integer value type, converted to `Int`; `.outOfRange` if it does not fit.
    public func int(_ key: String) throws(GGUFError) -> Int {
        try GGUFFile.asInt(key, try value(key))
    }

    /// A float32 or float64 value (or an integer), as `Float`.
    public func float(_ key: String) throws(GGUFError) -> Float {
        try GGUFFile.asFloat(key, try value(key))
    }

    /// A bool value.
    public func bool(_ key: String) throws(GGUFError) -> Bool {
        try GGUFFile.asBool(key, try value(key))
    }

    /// An array value.
    public func array(_ key: String) throws(GGUFError) -> GGUFArray {
        try GGUFFile.asArray(key, try value(key))
    }

    /// A string array, e.g. `tokenizer.ggml.tokens`.
    public func stringArray(_ key: String) throws(GGUFError) -> [String] {
        try GGUFFile.asStrings(key, try array(key))
    }

    /// An integer array of any integer element type, as `[Int]`; `.outOfRange` if an element
    /// does not fit.
    public func intArray(_ key: String) throws(GGUFError) -> [Int] {
        try GGUFFile.asInts(key, try array(key))
    }

    /// A float32/float64 (or integer) array, as `[Float]`.
    public func floatArray(_ key: String) throws(GGUFError) -> [Float] {
        try GGUFFile.asFloats(key, try array(key))
    }

    /// Like ``string(_:)`` but `nil` when absent.
    public func optionalString(_ key: String) throws(GGUFError) -> String? {
        guard let v = metadata[key] else { return nil }
        return try GGUFFile.asString(key, v)
    }

    /// Like ``int(_:)`` but `nil` when absent.
    public func optionalInt(_ key: String) throws(GGUFError) -> Int? {
        guard let v = metadata[key] else { return nil }
        return try GGUFFile.asInt(key, v)
    }

    /// Like ``float(_:)`` but `nil` when absent.
    public func optionalFloat(_ key: String) throws(GGUFError) -> Float? {
        guard let v = metadata[key] else { return nil }
        return try GGUFFile.asFloat(key, v)
    }

    /// Like ``bool(_:)`` but `nil` when absent.
    public func optionalBool(_ key: String) throws(GGUFError) -> Bool? {
        guard let v = metadata[key] else { return nil }
        return try GGUFFile.asBool(key, v)
    }

    /// Like ``array(_:)`` but `nil` when absent.
    public func optionalArray(_ key: String) throws(GGUFError) -> GGUFArray? {
        guard let v = metadata[key] else { return nil }
        return try GGUFFile.asArray(key, v)
    }

    /// Like ``stringArray(_:)`` but `nil` when absent.
    public func optionalStringArray(_ key: String) throws(GGUFError) -> [String]? {
        guard let a = try optionalArray(key) else { return nil }
        return try GGUFFile.asStrings(key, a)
    }

    /// Like ``intArray(_:)`` but `nil` when absent.
    public func optionalIntArray(_ key: String) throws(GGUFError) -> [Int]? {
        guard let a = try optionalArray(key) else { return nil }
        return try GGUFFile.asInts(key, a)
    }

    /// Like ``floatArray(_:)`` but `nil` when absent.
    public func optionalFloatArray(_ key: String) throws(GGUFError) -> [Float]? {
        guard let a = try optionalArray(key) else { return nil }
        return try GGUFFile.asFloats(key, a)
    }

    // MARK: Conversions

    private static func mismatch(_ key: String, _ expected: String, _ value: GGUFValue) -> GGUFError {
        GGUFError(.typeMismatch, "metadata key '\(key)' is \(value.type), expected \(expected)")
    }

    private static func mismatch(_ key: String, _ expected: String, _ array: GGUFArray) -> GGUFError {
        GGUFError(.typeMismatch, "metadata key '\(key)' is an array of \(array.elementType), expected an array of \(expected)")
    }

    static func asString(_ key: String, _ v: GGUFValue) throws(GGUFError) -> String {
        guard case .string(let s) = v else { throw mismatch(key, "string", v) }
        return s
    }

    static func asInt(_ key: String, _ v: GGUFValue) throws(GGUFError) -> Int {
        guard v.isInteger else { throw mismatch(key, "an integer", v) }
        guard let i = v.intValue else {
            throw GGUFError(.outOfRange, "metadata key '\(key)' value \(v) does not fit in Int")
        }
        return i
    }

    static func asFloat(_ key: String, _ v: GGUFValue) throws(GGUFError) -> Float {
        switch v {
        case .float32(let f): return f
        case .float64(let d): return Float(d)
        default:
            guard v.isInteger, let d = v.doubleValue else { throw mismatch(key, "a float", v) }
            return Float(d)
        }
    }

    static func asBool(_ key: String, _ v: GGUFValue) throws(GGUFError) -> Bool {
        guard case .bool(let b) = v else { throw mismatch(key, "bool", v) }
        return b
    }

    static func asArray(_ key: String, _ v: GGUFValue) throws(GGUFError) -> GGUFArray {
        guard case .array(let a) = v else { throw mismatch(key, "array", v) }
        return a
    }

    static func asStrings(_ key: String, _ a: GGUFArray) throws(GGUFError) -> [String] {
        guard case .strings(let s) = a else { throw mismatch(key, "string", a) }
        return s
    }

    static func asInts(_ key: String, _ a: GGUFArray) throws(GGUFError) -> [Int] {
        switch a.elementType {
        case .uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64:
            guard let ints = a.intValues else {
                throw GGUFError(.outOfRange, "metadata key '\(key)' has an element that does not fit in Int")
            }
            return ints
        default:
            throw mismatch(key, "integers", a)
        }
    }

    static func asFloats(_ key: String, _ a: GGUFArray) throws(GGUFError) -> [Float] {
        guard let f = a.floatValues else { throw mismatch(key, "floats", a) }
        return f
    }
}
