import Engine
import Foundation
import Grammar
import ModelFormats
import Tokenizers

/// Structured output: the grammar a request asks its answer to follow, read from the raw body
/// (a schema's property order matters, and the decoded request types would lose it).
///
/// - `/v1/chat/completions`: `response_format` `{"type": "text"}`, `{"type": "json_object"}`, or
///   `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`.
/// - `/v1/completions`: the same `response_format`, or Verity's extension
///   `"verity": {"grammar": "<GBNF>"}` / `"verity": {"json_schema": {…}}`.
///
/// The grammar is always enforced (`strict` or not); a schema feature the compiler can't enforce
/// is a 400 that names it.
struct StructuredOutput: Sendable {
    /// The cache key of the grammar (its canonical source).
    let key: String
    /// For records and logs: `json_object`, `json_schema:<name>`, `gbnf`.
    let label: String
    /// The request's field, as recorded in the ledger's parameters (name, compact JSON).
    let recorded: (name: String, value: String)
    let grammar: Grammar

    /// The structured-output request in `body`, if any; a 400 for a malformed one or one the
    /// compiler refuses. `completions`: also read the `verity` extension.
    static func parse(body: Data, completions: Bool) throws(APIError) -> StructuredOutput? {
        let json: RawJSON
        do { json = try RawJSON.parse(Array(body)) } catch { throw APIError.invalidJSON(error.message) }
        var found: [StructuredOutput] = []
        if let format = json["response_format"], !format.isNull {
            if let s = try responseFormat(format) { found.append(s) }
        }
        if completions, let ext = json["verity"], !ext.isNull {
            guard ext.members != nil else { throw APIError.invalidType("verity", "expected an object.") }
            if let text = ext["grammar"], !text.isNull {
                guard let gbnf = text.string else { throw APIError.invalidType("verity.grammar", "expected a string of GBNF.") }
                let grammar = try compile(param: "verity.grammar") { () throws(GrammarError) in try GBNFParser.parse(gbnf) }
                found.append(StructuredOutput(key: "gbnf\u{0}" + gbnf, label: "gbnf", recorded: ("grammar", gbnf), grammar: grammar))
            }
            if let schema = ext["json_schema"], !schema.isNull {
                found.append(try jsonSchema(schema, name: nil, param: "verity.json_schema", recordedName: "json_schema"))
            }
        }
        guard found.count <= 1 else {
            throw APIError.invalidRequest("Give one of response_format, verity.grammar and verity.json_schema, not several.", param: "response_format")
        }
        return found.first
    }

    private static func responseFormat(_ format: RawJSON) throws(APIError) -> StructuredOutput? {
        guard format.members != nil else { throw APIError.invalidType("response_format", "expected an object.") }
        guard let type = format["type"]?.string else { throw APIError.missing("response_format.type") }
        let recorded = JSONSchemaGrammar.canonicalText(format)
        switch type {
        case "text":
            return nil
        case "json_object":
            return StructuredOutput(key: "json_object", label: "json_object", recorded: ("response_format", recorded),
                                    grammar: JSONSchemaGrammar.anyObject())
        case "json_schema":
            guard let spec = format["json_schema"], spec.members != nil else { throw APIError.missing("response_format.json_schema") }
            let name = spec["name"]?.string
            if let n = spec["name"], n.string == nil { throw APIError.invalidType("response_format.json_schema.name", "expected a string.") }
            if let strict = spec["strict"], strict.bool == nil, !strict.isNull {
                throw APIError.invalidType("response_format.json_schema.strict", "expected a boolean.")
            }
            guard let schema = spec["schema"], !schema.isNull else {
                // No schema: any JSON object, as json_object.
                return StructuredOutput(key: "json_object", label: "json_schema:\(name ?? "")", recorded: ("response_format", recorded),
                                        grammar: JSONSchemaGrammar.anyObject())
            }
            var s = try jsonSchema(schema, name: name, param: "response_format.json_schema.schema", recordedName: "response_format")
            s = StructuredOutput(key: s.key, label: s.label, recorded: ("response_format", recorded), grammar: s.grammar)
            return s
        default:
            throw APIError.invalidRequest("response_format type '\(type)' is not supported; use 'text', 'json_object' or 'json_schema'.",
                                          param: "response_format.type")
        }
    }

    private static func jsonSchema(_ schema: RawJSON, name: String?, param: String, recordedName: String) throws(APIError) -> StructuredOutput {
        guard schema.members != nil || schema.bool != nil else { throw APIError.invalidType(param, "expected a JSON Schema object.") }
        let grammar = try compile(param: param) { () throws(GrammarError) in
            let g = try JSONSchemaGrammar.grammar(schema: schema)
            do throws(GrammarError) { _ = try CompiledGrammar(g) } catch {
                guard error.message.contains("left-recursive") else { throw error }
                throw GrammarError(.invalidSchema, "the schema refers to itself without any value in between (a cycle of $ref, anyOf or allOf)")
            }
            return g
        }
        let text = JSONSchemaGrammar.canonicalText(schema)
        return StructuredOutput(key: "schema\u{0}" + text, label: "json_schema:\(name ?? "")", recorded: (recordedName, text), grammar: grammar)
    }

    /// Builds and compiles the grammar, so that every refusal is a 400 before any work is queued.
    private static func compile(param: String, _ build: () throws(GrammarError) -> Grammar) throws(APIError) -> Grammar {
        do {
            let grammar = try build()
            _ = try CompiledGrammar(grammar)
            return grammar
        } catch {
            throw refusal(error, param: param)
        }
    }

    private static func refusal(_ error: GrammarError, param: String) -> APIError {
        let code: String
        switch error.code {
        case .unsupportedSchema: code = "unsupported_schema"
        case .invalidSchema: code = "invalid_schema"
        default: code = "invalid_grammar"
        }
        let at = error.path.map { " (at \($0))" } ?? ""
        return APIError.invalidRequest("\(param): \(error.message)\(at).", param: param, code: code)
    }

    /// The engine's constraint for this model's vocabulary (compiled once per grammar and
    /// vocabulary, then shared).
    func constraint(tokenizer: Tokenizer) throws(APIError) -> GrammarConstraint {
        let grammar = self.grammar
        do {
            return try GrammarConstraints.shared.constraint(key: key, label: label, tokenizer: tokenizer) { () throws(GrammarError) in grammar }
        } catch {
            throw Self.refusal(error, param: recorded.name)
        }
    }
}
