import Foundation

/// A value flowing through a Jinja template, modelled on the Python objects jinja2 works with.
///
/// Arrays stand in for both Python lists and tuples. Objects are insertion-ordered string-keyed
/// dictionaries (like Python `dict`). `function` and `namespace` are produced by the interpreter
/// (macros, bound methods, `namespace()`), never needed by callers.
public indirect enum TemplateValue: Sendable, Equatable {
    /// jinja2's default `Undefined`: prints as empty, is falsy, fails on attribute access.
    case undefined
    /// Python `None`.
    case none
    /// Python `bool`.
    case bool(Bool)
    /// Python `int` (64-bit; overflow raises a template error).
    case int(Int)
    /// Python `float`.
    case double(Double)
    /// Python `str`.
    case string(String)
    /// Python `list` (or tuple).
    case array([TemplateValue])
    /// Python `dict` with string keys, insertion-ordered.
    case object(OrderedObject)
    /// A callable produced by the interpreter (macro, bound method, builtin).
    case function(TemplateFunction)
    /// A mutable `namespace()` object.
    case namespace(TemplateNamespace)
}

/// An insertion-ordered dictionary with string keys (Python `dict` semantics for ordering).
public struct OrderedObject: Sendable, Equatable, Sequence {
    /// Keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: TemplateValue] = [:]
    /// Original values of non-string keys (e.g. `{4096: 512}`), indexed by their encoded key.
    private var keyValues: [String: TemplateValue] = [:]

    /// Creates an empty object.
    public init() {}

    /// Creates an object from key/value pairs; later duplicates overwrite earlier values in place.
    public init(_ pairs: [(String, TemplateValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    /// The storage key for a Python dict key: strings map to themselves, other values to a tagged repr.
    static func encodeKey(_ key: TemplateValue) -> String {
        if case .string(let s) = key { return s }
        if let i = key.integer { return "\u{1}int:\(i)" }
        return "\u{1}" + key.pythonRepr
    }

    /// The Python value of a stored key.
    func keyValue(_ key: String) -> TemplateValue { keyValues[key] ?? .string(key) }

    /// Inserts a value under an arbitrary (possibly non-string) key.
    mutating func set(key: TemplateValue, _ value: TemplateValue) {
        let k = Self.encodeKey(key)
        if case .string = key {} else { keyValues[k] = key }
        self[k] = value
    }

    /// Number of entries.
    public var count: Int { keys.count }

    /// Values in key order.
    public var values: [TemplateValue] { keys.map { storage[$0] ?? .none } }

    /// Reads or writes a key. Assigning `nil` removes the key.
    public subscript(key: String) -> TemplateValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
                keyValues[key] = nil
            }
        }
    }

    /// Iterates `(key, value)` pairs in insertion order.
    public func makeIterator() -> AnyIterator<(String, TemplateValue)> {
        var index = 0
        let keys = self.keys
        let storage = self.storage
        return AnyIterator {
            guard index < keys.count else { return nil }
            defer { index += 1 }
            return (keys[index], storage[keys[index]] ?? .none)
        }
    }

    /// Python dict equality: same keys and values, order-insensitive.
    public static func == (lhs: OrderedObject, rhs: OrderedObject) -> Bool {
        lhs.storage == rhs.storage
    }
}

/// A callable value created by the interpreter. Compared by identity.
public final class TemplateFunction: @unchecked Sendable, Equatable {
    let name: String
    let kind: FunctionKind

    init(name: String, kind: FunctionKind) {
        self.name = name
        self.kind = kind
    }

    public static func == (lhs: TemplateFunction, rhs: TemplateFunction) -> Bool { lhs === rhs }
}

/// A jinja2 `namespace()` object: a mutable attribute bag shared by reference.
/// Only touched by the single render that created it.
public final class TemplateNamespace: @unchecked Sendable, Equatable {
    var attributes: OrderedObject

    init(_ attributes: OrderedObject) { self.attributes = attributes }

    public static func == (lhs: TemplateNamespace, rhs: TemplateNamespace) -> Bool { lhs === rhs }
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self = .object(OrderedObject(elements)) }
    public init(nilLiteral: ()) { self = .none }
}

extension TemplateValue {
    /// Converts Foundation JSON (`JSONSerialization` output: `NSDictionary`, `NSArray`, `NSNumber`,
    /// `NSString`, `NSNull`) or plain Swift equivalents into a template value.
    /// Dictionary key order follows `NSDictionary` enumeration order, which is not the JSON order;
    /// use ``init(jsonData:)`` to preserve key order.
    public init(json: Any) {
        switch json {
        case is NSNull: self = .none
        case let v as String: self = .string(v)
        case let v as Bool where !(json is NSNumber): self = .bool(v)
        case let n as NSNumber:
            let type = String(cString: n.objCType)
            if type == "c" || type == "B" {
                self = .bool(n.boolValue)
            } else if type == "d" || type == "f" {
                self = .double(n.doubleValue)
            } else {
                self = .int(n.intValue)
            }
        case let v as Int: self = .int(v)
        case let v as Double: self = .double(v)
        case let v as [Any]: self = .array(v.map { TemplateValue(json: $0) })
        case let v as [String: Any]:
            self = .object(OrderedObject(v.keys.sorted().map { ($0, TemplateValue(json: v[$0] as Any)) }))
        case let v as TemplateValue: self = v
        default: self = .none
        }
    }

    /// Parses JSON text, preserving object key order (as Python's `json.loads` does).
    public init(jsonData: Data) throws(TemplateError) {
        var parser = JSONReader(bytes: [UInt8](jsonData))
        self = try parser.parseDocument()
    }

    /// Parses JSON text, preserving object key order.
    public init(jsonString: String) throws(TemplateError) {
        try self.init(jsonData: Data(jsonString.utf8))
    }
}
