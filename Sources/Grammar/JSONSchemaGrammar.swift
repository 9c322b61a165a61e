import ModelFormats

/// Compiles a JSON Schema into a ``Grammar`` whose sentences are exactly JSON documents that
/// validate against it (modulo the few limits listed below), so that decoding under it can only
/// produce valid output. Fails closed: a keyword that constrains values and that this compiler
/// can't enforce is a ``GrammarError`` naming it and its path, never silently ignored.
///
/// Covered: `type` (one or a list), `properties` / `required` (declared order; optional properties
/// may be skipped), `additionalProperties` (declared properties only when there are any, otherwise
/// a map of its schema), `items`, `prefixItems`, `minItems` / `maxItems`, `enum`, `const`, `anyOf`,
/// `allOf` with one member, `oneOf` whose members are told apart by a required `const` property,
/// `$ref` to `#`, `#/$defs/…` or `#/definitions/…` (recursion included), `nullable`, strings'
/// `minLength` / `maxLength` and `format` `date`, `time`, `date-time` and `uuid` and `pattern` (see ``RegexGrammar``), integers'
/// `minimum` / `maximum` / `exclusiveMinimum` / `exclusiveMaximum`, and `minimum: 0` on numbers.
/// Annotations (`title`, `description`, `default`, `examples`, …) and unknown keywords are ignored,
/// as JSON Schema says.
///
/// Whitespace between tokens is bounded (a space, or a newline and up to 20 indentation
/// characters), numbers have at most 16 integer and 16 fraction digits: a model can't wander off
/// into endless whitespace or digits.
public struct JSONSchemaGrammar {
    private var grammar = Grammar(root: "root")
    private let document: RawJSON
    private var refRules: [String: String] = [:]
    private var counter = 0
    /// `$ref`s being compiled inside one another now; at most ``maxReferenceDepth``.
    private var referenceDepth = 0
    public static let maxReferenceDepth = 64

    /// The grammar of documents valid against `schema`.
    public static func grammar(schema: RawJSON) throws(GrammarError) -> Grammar {
        var c = JSONSchemaGrammar(document: schema)
        c.defineCommonRules()
        let root = try c.compile(schema, path: "#")
        c.grammar.define("root", root)
        return c.grammar
    }

    /// The grammar of any JSON object (`response_format: {"type": "json_object"}`).
    public static func anyObject() -> Grammar {
        var c = JSONSchemaGrammar(document: .null)
        c.defineCommonRules()
        c.grammar.define("root", .rule("object"))
        return c.grammar
    }

    private init(document: RawJSON) {
        self.document = document
    }

    // MARK: Shared rules

    private mutating func defineCommonRules() {
        let digit = GrammarExpression.bytes(ByteSet(range: UInt8(ascii: "0")...UInt8(ascii: "9")))
        let hex = GrammarExpression.characters([48...57, 65...70, 97...102], negated: false)
        grammar.define("ws", .optional(.choice([.text(" "), .sequence([.repetition(.text("\n"), min: 1, max: 2),
                                                                          .repetition(.bytes(ByteSet([32, 9])), min: 0, max: 20)])])))
        // A character of a string: anything but '"', '\' and controls, or an escape (\u of a
        // non-surrogate; a lone surrogate is no character).
        grammar.define("char", .choice([
            .characters([0...0x1F, 0x22...0x22, 0x5C...0x5C], negated: true),
            .sequence([.text("\\"), .choice([
                .bytes(ByteSet(Array("\"\\/bfnrt".utf8))),
                .sequence([.text("u"), .choice([
                    .sequence([.characters([48...57, 65...67, 97...99, 69...70, 101...102], negated: false), hex, hex, hex]),
                    .sequence([.bytes(ByteSet([UInt8(ascii: "d"), UInt8(ascii: "D")])), .characters([48...55], negated: false), hex, hex]),
                ])]),
            ])]),
        ]))
        grammar.define("string", .sequence([.text("\""), .star(.rule("char")), .text("\"")]))
        grammar.define("uint", .choice([.text("0"), .sequence([.bytes(ByteSet(range: UInt8(ascii: "1")...UInt8(ascii: "9"))),
                                                                .repetition(digit, min: 0, max: 15)])]))
        grammar.define("integer", .sequence([.optional(.text("-")), .rule("uint")]))
        grammar.define("fraction", .sequence([.text("."), .repetition(digit, min: 1, max: 16)]))
        grammar.define("exponent", .sequence([.bytes(ByteSet(Array("eE".utf8))), .optional(.bytes(ByteSet(Array("+-".utf8)))),
                                              .repetition(digit, min: 1, max: 3)]))
        grammar.define("unumber", .sequence([.rule("uint"), .optional(.rule("fraction")), .optional(.rule("exponent"))]))
        grammar.define("number", .sequence([.optional(.text("-")), .rule("unumber")]))
        grammar.define("boolean", .choice([.text("true"), .text("false")]))
        grammar.define("null", .text("null"))
        grammar.define("value", .choice([.rule("object"), .rule("array"), .rule("string"), .rule("number"), .rule("boolean"), .rule("null")]))
        grammar.define("member", .sequence([.rule("string"), .rule("ws"), .text(":"), .rule("ws"), .rule("value"), .rule("ws")]))
        grammar.define("object", .sequence([.text("{"), .rule("ws"),
                                            .optional(.sequence([.rule("member"), .star(.sequence([.text(","), .rule("ws"), .rule("member")]))])),
                                            .text("}")]))
        grammar.define("element", .sequence([.rule("value"), .rule("ws")]))
        grammar.define("array", .sequence([.text("["), .rule("ws"),
                                           .optional(.sequence([.rule("element"), .star(.sequence([.text(","), .rule("ws"), .rule("element")]))])),
                                           .text("]")]))
    }

    private mutating func freshRule(_ hint: String) -> String {
        counter += 1
        let clean = String(hint.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }.prefix(24).map(Character.init))
        return "s\(counter)-\(clean.isEmpty ? "x" : clean)"
    }

    // MARK: Schemas

    /// Keywords that constrain values which this compiler refuses (everything else it does not
    /// know is an annotation).
    private static let refused: Set<String> = [
        "not", "if", "then", "else", "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies",
        "unevaluatedProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "minProperties", "maxProperties",
        "multipleOf", "$dynamicRef", "$recursiveRef", "contentSchema",
    ]

    private mutating func compile(_ schema: RawJSON, path: String) throws(GrammarError) -> GrammarExpression {
        if case .bool(let b) = schema {
            guard b else { throw GrammarError(.unsupportedSchema, "the schema 'false' allows no value", path: path) }
            return .rule("value")
        }
        guard let members = schema.members else {
            throw GrammarError(.invalidSchema, "a schema must be an object or a boolean", path: path)
        }
        let keys = Set(members.map { String(decoding: $0.key, as: UTF8.self) })
        for k in keys.sorted() where Self.refused.contains(k) {
            throw GrammarError(.unsupportedSchema, "the JSON Schema keyword '\(k)' is not supported for structured output", path: "\(path)/\(k)")
        }
        if let ref = schema["$ref"] {
            guard let target = ref.string else { throw GrammarError(.invalidSchema, "$ref must be a string", path: "\(path)/$ref") }
            let others = keys.subtracting(Self.annotations).subtracting(["$ref", "$defs", "definitions"])
            if let other = others.sorted().first {
                throw GrammarError(.unsupportedSchema, "'\(other)' next to '$ref' is not supported", path: "\(path)/\(other)")
            }
            return .rule(try refRule(target, path: "\(path)/$ref"))
        }
        var alternatives: [GrammarExpression]
        if let value = schema["const"] {
            alternatives = [.literal(Self.encode(value))]
        } else if let values = schema["enum"] {
            guard let list = values.array, !list.isEmpty else {
                throw GrammarError(.invalidSchema, "enum must be a non-empty array", path: "\(path)/enum")
            }
            alternatives = list.map { .literal(Self.encode($0)) }
        } else if let anyOf = schema["anyOf"] ?? schema["oneOf"] {
            let keyword = schema["anyOf"] != nil ? "anyOf" : "oneOf"
            guard let list = anyOf.array, !list.isEmpty else {
                throw GrammarError(.invalidSchema, "\(keyword) must be a non-empty array", path: "\(path)/\(keyword)")
            }
            if keyword == "oneOf", list.count > 1, !isDiscriminated(list) {
                throw GrammarError(.unsupportedSchema, "oneOf is supported only when its members are told apart by a required property with a different 'const' in each (a discriminated union); use anyOf", path: "\(path)/oneOf")
            }
            alternatives = []
            for (i, sub) in list.enumerated() { alternatives.append(try compile(merged(sub, into: schema, dropping: keyword), path: "\(path)/\(keyword)/\(i)")) }
        } else if let allOf = schema["allOf"] {
            guard let list = allOf.array, list.count == 1 else {
                throw GrammarError(.unsupportedSchema, "allOf is supported with one member only", path: "\(path)/allOf")
            }
            alternatives = [try compile(merged(list[0], into: schema, dropping: "allOf"), path: "\(path)/allOf/0")]
        } else {
            var types: [String]
            switch schema["type"] {
            case nil:
                if schema["properties"] != nil || schema["additionalProperties"] != nil { types = ["object"] }
                else if schema["items"] != nil || schema["prefixItems"] != nil { types = ["array"] }
                else { types = [] }
            case .string(let t)?: types = [String(decoding: t, as: UTF8.self)]
            case .array(let list)?:
                types = []
                for t in list {
                    guard let s = t.string else { throw GrammarError(.invalidSchema, "type must be a string or a list of strings", path: "\(path)/type") }
                    types.append(s)
                }
            default: throw GrammarError(.invalidSchema, "type must be a string or a list of strings", path: "\(path)/type")
            }
            if types.isEmpty { return .rule("value") }
            alternatives = []
            for t in types { alternatives.append(try typed(t, schema, path: path)) }
        }
        if schema["nullable"]?.bool == true { alternatives.append(.rule("null")) }
        return alternatives.count == 1 ? alternatives[0] : .choice(alternatives)
    }

    private static let annotations: Set<String> = ["title", "description", "default", "examples", "$schema", "$id", "$comment",
                                                   "deprecated", "readOnly", "writeOnly", "$anchor",
                                                   // OpenAPI's hint of which property tells a oneOf's members apart.
                                                   "discriminator"]

    /// `sub` with the keywords of `parent` other than `dropping` and the annotations (a sibling
    /// `type` or `nullable` still applies).
    private func merged(_ sub: RawJSON, into parent: RawJSON, dropping: String) -> RawJSON {
        guard case .object(var members) = sub, let parentMembers = parent.members else { return sub }
        for (k, v) in parentMembers {
            let key = String(decoding: k, as: UTF8.self)
            if key == dropping || Self.annotations.contains(key) || key == "$defs" || key == "definitions" || key == "nullable" { continue }
            if !members.contains(where: { $0.key == k }) { members.append((k, v)) }
        }
        return .object(members)
    }

    private func isDiscriminated(_ list: [RawJSON]) -> Bool {
        // Resolve $refs one level, then look for a required property whose const differs in each.
        let resolved = list.map { s -> RawJSON in
            if let r = s["$ref"]?.string, let t = try? resolve(r) { return t }
            return s
        }
        guard let first = resolved.first?["properties"]?.members else { return false }
        for (key, _) in first {
            let name = String(decoding: key, as: UTF8.self)
            var seen: [[UInt8]] = []
            var ok = true
            for s in resolved {
                guard let required = s["required"]?.array?.compactMap(\.string), required.contains(name),
                      let prop = s["properties"]?[name], let c = prop["const"] ?? (prop["enum"]?.array?.count == 1 ? prop["enum"]!.array![0] : nil)
                else { ok = false; break }
                let e = Self.encode(c)
                if seen.contains(e) { ok = false; break }
                seen.append(e)
            }
            if ok { return true }
        }
        return false
    }

    private func resolve(_ ref: String) throws(GrammarError) -> RawJSON {
        if ref == "#" { return document }
        guard ref.hasPrefix("#/") else {
            throw GrammarError(.unsupportedSchema, "only local references ('#', '#/$defs/…') are supported; got '\(ref)'")
        }
        var node = document
        for raw in ref.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
            let part = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let list = node.array, let i = Int(part), i >= 0, i < list.count { node = list[i]; continue }
            guard let next = node[part] else { throw GrammarError(.invalidSchema, "$ref '\(ref)' points to nothing") }
            node = next
        }
        return node
    }

    private mutating func refRule(_ ref: String, path: String) throws(GrammarError) -> String {
        if let name = refRules[ref] { return name }
        let target: RawJSON
        do { target = try resolve(ref) } catch { throw GrammarError(error.code, error.message, path: path) }
        guard referenceDepth < Self.maxReferenceDepth else {
            throw GrammarError(.unsupportedSchema, "$refs nest more than \(Self.maxReferenceDepth) deep", path: path)
        }
        referenceDepth += 1
        defer { referenceDepth -= 1 }
        let name = freshRule(String(ref.split(separator: "/").last ?? "root"))
        refRules[ref] = name
        grammar.define(name, .empty)          // placeholder: a recursive reference finds the name
        grammar.define(name, try compile(target, path: ref))
        return name
    }

    private mutating func typed(_ type: String, _ schema: RawJSON, path: String) throws(GrammarError) -> GrammarExpression {
        switch type {
        case "null": return .rule("null")
        case "boolean": return .rule("boolean")
        case "string": return try string(schema, path: path)
        case "integer": return try integer(schema, path: path)
        case "number":
            for k in ["maximum", "exclusiveMaximum", "exclusiveMinimum"] where schema[k] != nil {
                throw GrammarError(.unsupportedSchema, "'\(k)' on a 'number' is not supported (integers take any bounds; numbers take minimum 0)", path: "\(path)/\(k)")
            }
            if let m = schema["minimum"] {
                guard m.double == 0 else {
                    throw GrammarError(.unsupportedSchema, "'minimum' on a 'number' is supported only as 0 (integers take any bounds)", path: "\(path)/minimum")
                }
                return .rule("unumber")
            }
            return .rule("number")
        case "object": return try object(schema, path: path)
        case "array": return try array(schema, path: path)
        default: throw GrammarError(.invalidSchema, "unknown type '\(type)'", path: "\(path)/type")
        }
    }

    // MARK: Objects and arrays

    private mutating func object(_ schema: RawJSON, path: String) throws(GrammarError) -> GrammarExpression {
        var props: [(name: [UInt8], schema: RawJSON)] = []
        if let p = schema["properties"] {
            guard let m = p.members else { throw GrammarError(.invalidSchema, "properties must be an object", path: "\(path)/properties") }
            props = m.map { ($0.key, $0.value) }
        }
        var required = Set<[UInt8]>()
        if let r = schema["required"] {
            guard let list = r.array, list.allSatisfy({ $0.bytes != nil }) else {
                throw GrammarError(.invalidSchema, "required must be a list of strings", path: "\(path)/required")
            }
            for name in list.compactMap(\.bytes) {
                required.insert(name)
                if !props.contains(where: { $0.name == name }) { props.append((name, .bool(true))) }
            }
        }
        let additional = schema["additionalProperties"]
        if props.isEmpty {
            // A map: any keys, values of `additionalProperties` (any value when absent or true).
            if case .bool(false)? = additional { return .text("{}") }
            let valueSchema: RawJSON = additional.flatMap { if case .bool = $0 { return nil } else { return $0 } } ?? .bool(true)
            let value = try compile(valueSchema, path: "\(path)/additionalProperties")
            let member = GrammarExpression.sequence([.rule("string"), .rule("ws"), .text(":"), .rule("ws"), value, .rule("ws")])
            let rule = freshRule("map")
            grammar.define(rule, member)
            return .sequence([.text("{"), .rule("ws"), .optional(.sequence([.rule(rule), .star(.sequence([.text(","), .rule("ws"), .rule(rule)]))])),
                              .text("}")])
        }
        // Declared order; each optional property may be left out. tail(i, first) is the members
        // from i on, `first` when none has been written yet (no comma before the next).
        var members: [GrammarExpression] = []
        for (name, sub) in props {
            let value = try compile(sub, path: "\(path)/properties/\(String(decoding: name, as: UTF8.self))")
            members.append(.sequence([.literal(Self.encode(.string(name))), .rule("ws"), .text(":"), .rule("ws"), value, .rule("ws")]))
        }
        let base = freshRule("obj")
        var tails: [String: GrammarExpression] = [:]
        func tailName(_ i: Int, _ first: Bool) -> String { "\(base)-\(i)\(first ? "f" : "n")" }
        for i in stride(from: props.count, through: 0, by: -1) {
            for first in [true, false] {
                let body: GrammarExpression
                if i == props.count {
                    body = .empty
                } else {
                    let write = GrammarExpression.sequence((first ? [] : [.text(","), .rule("ws")]) + [members[i], .rule(tailName(i + 1, false))])
                    body = required.contains(props[i].name) ? write : .choice([write, .rule(tailName(i + 1, first))])
                }
                tails[tailName(i, first)] = body
            }
        }
        for (name, body) in tails.sorted(by: { $0.key < $1.key }) { grammar.define(name, body) }
        return .sequence([.text("{"), .rule("ws"), .rule(tailName(0, true)), .text("}")])
    }

    private mutating func array(_ schema: RawJSON, path: String) throws(GrammarError) -> GrammarExpression {
        if schema["uniqueItems"]?.bool == true {
            throw GrammarError(.unsupportedSchema, "uniqueItems is not supported for structured output", path: "\(path)/uniqueItems")
        }
        let minItems = try count(schema, "minItems", path: path) ?? 0
        let maxItems = try count(schema, "maxItems", path: path)
        if let maxItems, maxItems < minItems { throw GrammarError(.invalidSchema, "maxItems is below minItems", path: "\(path)/maxItems") }
        var prefix: [GrammarExpression] = []
        if let p = schema["prefixItems"] {
            guard let list = p.array else { throw GrammarError(.invalidSchema, "prefixItems must be an array", path: "\(path)/prefixItems") }
            for (i, s) in list.enumerated() {
                prefix.append(.sequence([try compile(s, path: "\(path)/prefixItems/\(i)"), .rule("ws")]))
            }
        }
        var itemExpression: GrammarExpression?
        switch schema["items"] {
        case .bool(false)?: itemExpression = nil
        case nil, .bool(true)?: itemExpression = .rule("element")
        case .array?:
            throw GrammarError(.unsupportedSchema, "items as an array (draft 4 tuples) is not supported; use prefixItems", path: "\(path)/items")
        case let s?: itemExpression = .sequence([try compile(s, path: "\(path)/items"), .rule("ws")])
        }
        let item = itemExpression.map { e -> String in
            let r = freshRule("item")
            grammar.define(r, e)
            return r
        }
        // Items 0..<prefix.count are the tuple, then `item`s; between minItems and maxItems in all.
        let tuple = min(prefix.count, maxItems ?? Int.max)
        if minItems > tuple && item == nil {
            throw GrammarError(.invalidSchema, "minItems needs more items than prefixItems allows", path: "\(path)/minItems")
        }
        let sep = GrammarExpression.sequence([.text(","), .rule("ws")])
        // After the whole tuple: the required items, then the optional ones.
        var rest: [GrammarExpression] = []
        if let item, tuple == prefix.count {
            let required = max(0, minItems - tuple)
            let optional: Int? = maxItems.map { max(0, $0 - tuple - required) }
            for k in 0..<required { rest.append(k == 0 && tuple == 0 ? .rule(item) : .sequence([sep, .rule(item)])) }
            if tuple == 0 && required == 0 {
                if optional != 0 {
                    rest.append(.optional(.sequence([.rule(item), .repetition(.sequence([sep, .rule(item)]), min: 0, max: optional.map { $0 - 1 })])))
                }
            } else if optional != 0 {
                rest.append(.repetition(.sequence([sep, .rule(item)]), min: 0, max: optional))
            }
        }
        // The tuple from the back: a member past minItems is optional, and only if the previous one is there.
        var body = GrammarExpression.sequence(rest)
        for i in stride(from: tuple - 1, through: 0, by: -1) {
            let member = GrammarExpression.sequence((i > 0 ? [sep] : []) + [prefix[i], body])
            body = i >= minItems ? .optional(member) : member
        }
        return .sequence([.text("["), .rule("ws"), body, .text("]")])
    }

    private func count(_ schema: RawJSON, _ key: String, path: String) throws(GrammarError) -> Int? {
        guard let v = schema[key] else { return nil }
        guard let n = v.int, n >= 0, n <= 10_000 else {
            throw GrammarError(.unsupportedSchema, "\(key) must be an integer in 0...10000", path: "\(path)/\(key)")
        }
        return n
    }

    // MARK: Strings

    private mutating func string(_ schema: RawJSON, path: String) throws(GrammarError) -> GrammarExpression {
        let minLength = try count(schema, "minLength", path: path) ?? 0
        let maxLength = try count(schema, "maxLength", path: path)
        if let maxLength, maxLength < minLength { throw GrammarError(.invalidSchema, "maxLength is below minLength", path: "\(path)/maxLength") }
        if let pattern = schema["pattern"] {
            guard let text = pattern.string else { throw GrammarError(.invalidSchema, "pattern must be a string", path: "\(path)/pattern") }
            if minLength > 0 || maxLength != nil || schema["format"] != nil {
                throw GrammarError(.unsupportedSchema, "pattern together with minLength, maxLength or format is not supported", path: "\(path)/pattern")
            }
            do {
                return .sequence([.text("\""), try RegexGrammar.expression(text), .text("\"")])
            } catch {
                throw GrammarError(error.code, error.message, path: "\(path)/pattern")
            }
        }
        if let format = schema["format"]?.string {
            guard let body = Self.formats[format] else {
                throw GrammarError(.unsupportedSchema, "string format '\(format)' is not supported (supported: \(Self.formats.keys.sorted().joined(separator: ", ")))", path: "\(path)/format")
            }
            if minLength > 0 || maxLength != nil {
                throw GrammarError(.unsupportedSchema, "minLength/maxLength together with format are not supported", path: path)
            }
            return .sequence([.text("\""), body, .text("\"")])
        }
        if minLength == 0 && maxLength == nil { return .rule("string") }
        return .sequence([.text("\""), .repetition(.rule("char"), min: minLength, max: maxLength), .text("\"")])
    }

    private static let formats: [String: GrammarExpression] = {
        let d = GrammarExpression.bytes(ByteSet(range: UInt8(ascii: "0")...UInt8(ascii: "9")))
        func r(_ lo: Character, _ hi: Character) -> GrammarExpression {
            .bytes(ByteSet(range: lo.asciiValue!...hi.asciiValue!))
        }
        let hex = GrammarExpression.characters([48...57, 97...102, 65...70], negated: false)
        let date = GrammarExpression.sequence([d, d, d, d, .text("-"),
                                               .choice([.sequence([.text("0"), r("1", "9")]), .sequence([.text("1"), r("0", "2")])]), .text("-"),
                                               .choice([.sequence([.text("0"), r("1", "9")]), .sequence([r("1", "2"), d]), .sequence([.text("3"), r("0", "1")])])])
        let hour = GrammarExpression.choice([.sequence([r("0", "1"), d]), .sequence([.text("2"), r("0", "3")])])
        let sixty = GrammarExpression.sequence([r("0", "5"), d])
        let offset = GrammarExpression.choice([.text("Z"), .sequence([.bytes(ByteSet(Array("+-".utf8))), hour, .text(":"), sixty])])
        let time = GrammarExpression.sequence([hour, .text(":"), sixty, .text(":"), sixty,
                                               .optional(.sequence([.text("."), .repetition(d, min: 1, max: 6)])), offset])
        func hexes(_ n: Int) -> GrammarExpression { .repetition(hex, min: n, max: n) }
        return [
            "date": date,
            "time": time,
            "date-time": .sequence([date, .text("T"), time]),
            "uuid": .sequence([hexes(8), .text("-"), hexes(4), .text("-"), hexes(4), .text("-"), hexes(4), .text("-"), hexes(12)]),
        ]
    }()
}
