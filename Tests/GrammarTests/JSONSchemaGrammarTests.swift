import Foundation
import Grammar
import ModelFormats
import Testing

@Suite("JSON Schema to grammar")
struct JSONSchemaGrammarTests {
    @Test("objects: declared order, required and optional properties, nesting")
    func objects() throws {
        let a = try automaton(schema: #"""
        {"type": "object", "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }, "required": ["name", "address"], "additionalProperties": false}
        """#)
        #expect(accepts(a, #"{"name": "Ann", "address": {"city": "Oslo"}}"#))
        #expect(accepts(a, #"{"name":"Ann","age":-3,"tags":["a","b"],"address":{"city":"Oslo"}}"#))
        #expect(accepts(a, "{\n  \"name\": \"A\\\"\\u00e9\",\n  \"address\": {\"city\": \"\"}\n}"))
        #expect(!accepts(a, #"{"name": "Ann"}"#))                                  // address required
        #expect(!accepts(a, #"{"address": {"city": "Oslo"}, "name": "Ann"}"#))     // order
        #expect(!accepts(a, #"{"name": "Ann", "age": 1.5, "address": {"city": "O"}}"#))
        #expect(!accepts(a, #"{"name": "Ann", "address": {"city": "O"}, "x": 1}"#))
        #expect(!accepts(a, #"{"name": "A\u0001", "address": {"city": "O"}}"#.replacingOccurrences(of: "\\u0001", with: "\u{01}")))
        #expect(!accepts(a, #"{"name": "\ud800", "address": {"city": "O"}}"#))   // a lone surrogate escape
    }

    @Test("integer bounds are exact", arguments: [(-37, 125), (0, 9), (10, 10), (5, 1_000), (-1_000, -5)])
    func integerRanges(_ lo: Int, _ hi: Int) throws {
        let a = try automaton(schema: #"{"type": "integer", "minimum": \#(lo), "maximum": \#(hi)}"#)
        for v in (lo - 150)...(hi + 150) {
            #expect(accepts(a, String(v)) == (lo...hi).contains(v), "\(v) in \(lo)...\(hi)")
        }
        #expect(!accepts(a, "-0") || lo <= 0)
        #expect(!accepts(a, "007"))
    }

    @Test("exclusive and one-sided bounds")
    func oneSided() throws {
        let a = try automaton(schema: #"{"type": "integer", "exclusiveMinimum": 17}"#)
        #expect(!accepts(a, "17") && accepts(a, "18") && accepts(a, "123456789") && !accepts(a, "-5"))
        let b = try automaton(schema: #"{"type": "integer", "maximum": -3}"#)
        #expect(accepts(b, "-3") && accepts(b, "-99999") && !accepts(b, "-2") && !accepts(b, "0"))
        let c = try automaton(schema: #"{"type": "number", "minimum": 0}"#)
        #expect(accepts(c, "0.5") && accepts(c, "12e3") && !accepts(c, "-1"))
    }

    @Test("arrays: items, prefixItems, minItems and maxItems")
    func arrays() throws {
        let a = try automaton(schema: #"{"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 3}"#)
        #expect(!accepts(a, "[]") && !accepts(a, "[true]"))
        #expect(accepts(a, "[true, false]") && accepts(a, "[true,false,true]"))
        #expect(!accepts(a, "[true,false,true,true]"))
        let t = try automaton(schema: #"{"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false}"#)
        #expect(accepts(t, "[]") && accepts(t, "[1]") && accepts(t, #"[1, "x"]"#))
        #expect(!accepts(t, #"["x"]"#) && !accepts(t, #"[1, "x", 2]"#))
        let e = try automaton(schema: #"{"type": "array", "maxItems": 0}"#)
        #expect(accepts(e, "[]") && !accepts(e, "[1]"))
    }

    @Test("enum, const, anyOf, type lists and nullable")
    func choices() throws {
        let a = try automaton(schema: #"""
        {"type": "object", "properties": {
            "color": {"enum": ["red", "green", 3, null, {"a": [1]}]},
            "kind": {"const": "fixed"},
            "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "s": {"type": ["string", "boolean"]},
            "o": {"type": "string", "nullable": true}
        }, "required": ["color", "kind", "n", "s", "o"]}
        """#)
        #expect(accepts(a, #"{"color": "red", "kind": "fixed", "n": null, "s": true, "o": null}"#))
        #expect(accepts(a, #"{"color": {"a":[1]}, "kind": "fixed", "n": 4, "s": "x", "o": "y"}"#))
        #expect(!accepts(a, #"{"color": "blue", "kind": "fixed", "n": 4, "s": "x", "o": "y"}"#))
        #expect(!accepts(a, #"{"color": 3, "kind": "other", "n": 4, "s": "x", "o": "y"}"#))
    }

    @Test("$ref and $defs, recursive")
    func references() throws {
        let a = try automaton(schema: #"""
        {"$defs": {"Node": {"type": "object", "properties": {"value": {"type": "integer"},
                   "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}, "required": ["value", "children"]}},
         "$ref": "#/$defs/Node"}
        """#)
        #expect(accepts(a, #"{"value": 1, "children": [{"value": 2, "children": []}, {"value": 3, "children": [{"value": 4, "children": []}]}]}"#))
        #expect(!accepts(a, #"{"value": 1, "children": [{"value": 2}]}"#))
    }

    @Test("formats")
    func formats() throws {
        let a = try automaton(schema: #"{"type": "array", "prefixItems": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}, {"type": "string", "format": "uuid"}], "items": false, "minItems": 3}"#)
        #expect(accepts(a, #"["2024-02-29", "2024-12-31T23:59:59.123+01:00", "123e4567-e89b-12d3-a456-426614174000"]"#))
        #expect(!accepts(a, #"["2024-13-01", "2024-12-31T23:59:59Z", "123e4567-e89b-12d3-a456-426614174000"]"#))
        #expect(!accepts(a, #"["2024-01-01", "2024-12-31T24:00:00Z", "123e4567-e89b-12d3-a456-426614174000"]"#))
    }

    @Test("string lengths count characters")
    func lengths() throws {
        let a = try automaton(schema: #"{"type": "string", "minLength": 2, "maxLength": 3}"#)
        #expect(!accepts(a, #""a""#) && accepts(a, #""ab""#) && accepts(a, #""日本語""#) && !accepts(a, #""abcd""#))
        #expect(accepts(a, #""a\n""#))
    }

    @Test("json_object mode takes any object and nothing else")
    func anyObject() throws {
        let a = GrammarAutomaton(try CompiledGrammar(JSONSchemaGrammar.anyObject()))
        #expect(accepts(a, #"{"a": [1, 2.5e3, {"b": null}], "c": "d"}"#) && accepts(a, "{}"))
        #expect(!accepts(a, "[1]") && !accepts(a, #""x""#) && !accepts(a, "{} "))
    }

    @Test("unsupported keywords are refused by name and path", arguments: [
        (#"{"type": "string", "pattern": "(?=a)b"}"#, "look-around", "#/pattern"),
        (#"{"type": "string", "pattern": "(a)\\1"}"#, "back-references", "#/pattern"),
        (#"{"type": "string", "pattern": "^a+$", "maxLength": 3}"#, "pattern together", "#/pattern"),
        (#"{"type": "object", "properties": {"a": {"not": {"type": "null"}}}}"#, "'not'", "#/properties/a/not"),
        (#"{"type": "number", "maximum": 5}"#, "'maximum'", "#/maximum"),
        (#"{"type": "string", "format": "email"}"#, "'email'", "#/format"),
        (#"{"type": "array", "uniqueItems": true}"#, "uniqueItems", "#/uniqueItems"),
        (#"{"oneOf": [{"type": "string"}, {"type": "integer"}]}"#, "oneOf", "#/oneOf"),
        (##"{"$ref": "#/$defs/Missing"}"##, "points to nothing", "#/$ref"),
        (#"{"$ref": "https://example.com/schema"}"#, "local references", "#/$ref"),
        (#"{"allOf": [{"type": "string"}, {"maxLength": 3}]}"#, "allOf", "#/allOf"),
    ])
    func refused(_ schema: String, _ message: String, _ path: String) throws {
        let json = try RawJSON.parse(Array(schema.utf8))
        #expect {
            _ = try JSONSchemaGrammar.grammar(schema: json)
        } throws: { error in
            guard let e = error as? GrammarError else { return false }
            return e.message.contains(message) && e.path == path
        }
    }

    @Test("patterns: anchors, classes, groups, quantifiers, and JSON escapes for what JSON can't hold raw")
    func patterns() throws {
        let zip = try automaton(schema: #"{"type": "string", "pattern": "^[0-9]{5}(-\\d{4})?$"}"#)
        #expect(accepts(zip, #""12345""#) && accepts(zip, #""12345-6789""#))
        #expect(!accepts(zip, #""1234""#) && !accepts(zip, #""12345-678""#) && !accepts(zip, #"" 12345""#))
        let word = try automaton(schema: #"{"type": "string", "pattern": "^(?:cat|dog)s?\\.$"}"#)
        #expect(accepts(word, #""cats.""#) && accepts(word, #""dog.""#) && !accepts(word, #""cow.""#) && !accepts(word, #""cat""#))
        // Unanchored: anything around the match.
        let contains = try automaton(schema: #"{"type": "string", "pattern": "ab+"}"#)
        #expect(accepts(contains, #""xxabbby""#) && !accepts(contains, #""xxay""#))
        // A quote or backslash in the value is written escaped; a raw control character never.
        let quoted = try automaton(schema: #"{"type": "string", "pattern": "^[\\\"\\\\a]+\\n?$"}"#)
        #expect(accepts(quoted, #""a\"\\\n""#) && !accepts(quoted, "\"a\n\""))
        let negated = try automaton(schema: #"{"type": "string", "pattern": "^[^a-z]{2}$"}"#)
        #expect(accepts(negated, #""A1""#) && accepts(negated, #""日本""#) && !accepts(negated, #""Ab""#) && accepts(negated, #""\"\\""#))
    }

    @Test("a long $ref chain is refused; a $ref to itself is left recursion, refused")
    func referenceChains() throws {
        var defs: [String] = []
        for i in 0..<100 { defs.append("\"D\(i)\": {\"$ref\": \"#/$defs/D\(i + 1)\"}") }
        defs.append("\"D100\": {\"type\": \"integer\"}")
        let chain = "{\"$defs\": {\(defs.joined(separator: ", "))}, \"$ref\": \"#/$defs/D0\"}"
        #expect { _ = try JSONSchemaGrammar.grammar(schema: try RawJSON.parse(Array(chain.utf8))) } throws: { "\($0)".contains("nest more than") }
        let cycle = ##"{"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"}"##
        #expect { _ = try CompiledGrammar(try JSONSchemaGrammar.grammar(schema: try RawJSON.parse(Array(cycle.utf8)))) } throws: {
            "\($0)".contains("left-recursive")
        }
    }

    @Test("a discriminated oneOf is accepted")
    func discriminated() throws {
        let a = try automaton(schema: #"""
        {"oneOf": [{"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}}, "required": ["kind", "lives"]},
                   {"type": "object", "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}}, "required": ["kind", "good"]}]}
        """#)
        #expect(accepts(a, #"{"kind": "cat", "lives": 9}"#) && accepts(a, #"{"kind": "dog", "good": true}"#))
        #expect(!accepts(a, #"{"kind": "dog", "lives": 9}"#))
    }
}
