import ChatTemplates
import Engine
import Foundation
import Grammar
import ModelFormats
import Testing
import Tokenizers
import TestSupport

@Suite("Token masks and constrained generation", .enabled(if: TestPaths.hasSmolLM2 && TestPaths.hasGemma3, "run scripts/fetch-models first"))
struct TokenGrammarTests {
    static let smol: LoadedModel? = try? LoadedModel(path: TestPaths.smolLM2)
    static let gemma: LoadedModel? = try? LoadedModel(path: TestPaths.gemma3)

    static let personSchema = #"""
    {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string"},
        "languages": {"type": "array", "items": {"enum": ["Swift", "Python", "Rust"]}, "maxItems": 3}
    }, "required": ["name", "age", "languages"], "additionalProperties": false}
    """#

    func constraint(_ schema: String, _ tokenizer: Tokenizer) throws -> GrammarConstraint {
        try GrammarConstraints.shared.constraint(key: schema, label: "test", tokenizer: tokenizer) { () throws(GrammarError) in
            do { return try JSONSchemaGrammar.grammar(schema: try RawJSON.parse(Array(schema.utf8))) }
            catch let e as GrammarError { throw e }
            catch { throw GrammarError(.invalidSchema, "\(error)") }
        }
    }

    /// The brute-force mask: every token's bytes run through the automaton.
    func bruteForce(_ g: TokenGrammar, _ state: Int32, _ tokenizer: Tokenizer) -> [UInt64] {
        var bits = [UInt64](repeating: 0, count: g.vocabulary.maskWords)
        for t in 0..<Int32(tokenizer.vocabularySize) {
            let allowed: Bool
            if tokenizer.isEndOfGeneration(t) { allowed = g.isAccepting(state) }
            else if tokenizer.isControl(t) { allowed = false }
            else {
                let bytes = tokenizer.pieceBytes(t)
                allowed = !bytes.isEmpty && g.advance(state, bytes: bytes) >= 0
            }
            if allowed { bits[Int(t) >> 6] |= 1 << UInt64(t & 63) }
        }
        return bits
    }

    @Test("the trie walk's mask equals the brute-force mask along a document, on both vocabularies")
    func masks() throws {
        for model in [Self.smol, Self.gemma] {
            let m = try #require(model)
            let c = try constraint(Self.personSchema, m.tokenizer)
            let g = c.grammar
            let document = #"{"name": "Zoë 🙂", "age": 42, "languages": ["Swift", "Rust"]}"#
            var state = g.initialState
            var checked = 0
            for (i, byte) in Array(document.utf8).enumerated() {
                if i % 3 == 0 || i < 12 {
                    #expect(g.mask(state) == bruteForce(g, state, m.tokenizer), "state before byte \(i) on \(m.name)")
                    checked += 1
                }
                state = g.advance(state, bytes: [byte])
                #expect(state >= 0)
            }
            #expect(g.isAccepting(state) && !g.canContinue(state))
            #expect(g.mask(state) == bruteForce(g, state, m.tokenizer))
            #expect(checked > 20)
        }
    }

    @Test("greedy and sampled generation under a schema give valid JSON, on SmolLM2 and Gemma 3")
    func generation() throws {
        for (model, temperature) in [(Self.smol, Float(0)), (Self.smol, 0.9), (Self.gemma, 0), (Self.gemma, 1.0)] {
            let m = try #require(model)
            var parameters = GenerationParameters()
            parameters.sampling = temperature == 0 ? .greedy : SamplingParameters()
            parameters.sampling.temperature = temperature
            parameters.sampling.seed = 11
            parameters.maxTokens = 120
            parameters.logprobs = 2
            parameters.grammar = try constraint(Self.personSchema, m.tokenizer)
            let prompt = m.tokenizer.encode("A developer profile as JSON: ", addSpecial: true, parseSpecial: false)
            let generator = try Generator(model: m, capacity: prompt.count + 128, threads: 2)
            let result = try generator.generate(prompt: prompt, parameters: parameters)
            #expect(result.finishReason == .stop, "\(m.name) t=\(temperature): \(result.text)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.text.utf8)) as? [String: Any], "\(result.text)")
            #expect(object["name"] is String && object["age"] is Int && object["languages"] is [String])
            let age = try #require(object["age"] as? Int)
            #expect((0...120).contains(age))
            #expect(result.logprobs.allSatisfy { $0.logprob.isFinite })
        }
    }

    @Test("within the token budget the document is always finished, even where the model would go on")
    func budget() throws {
        let tree = #"""
        {"$defs": {"Node": {"type": "object", "properties": {"label": {"type": "string"},
                   "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}, "required": ["label", "children"]}},
         "$ref": "#/$defs/Node"}
        """#
        let m = try #require(Self.smol)
        let c = try constraint(tree, m.tokenizer)
        #expect(c.grammar.tokensToFinish(c.grammar.initialState) == #"{"label":"","children":[]}"#.utf8.count + 1)
        let prompt = m.tokenizer.encode("A deep family tree as JSON: ", addSpecial: true, parseSpecial: false)
        let generator = try Generator(model: m, capacity: prompt.count + 128, threads: 2)
        for (maxTokens, seed) in [(30, UInt64(1)), (45, 2), (60, 3), (80, 4), (28, 5)] {
            var parameters = GenerationParameters()
            parameters.sampling.temperature = 1.2
            parameters.sampling.seed = seed
            parameters.maxTokens = maxTokens
            parameters.grammar = c
            let result = try generator.generate(prompt: prompt, parameters: parameters)
            #expect(result.finishReason == .stop, "\(maxTokens): \(result.text)")
            #expect(result.completionTokens.count <= maxTokens)
            #expect(try JSONSerialization.jsonObject(with: Data(result.text.utf8)) is [String: Any], "\(result.text)")
        }
        // A budget too small for any document: the answer ends with length.
        var parameters = GenerationParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 10
        parameters.grammar = c
        #expect(try generator.generate(prompt: prompt, parameters: parameters).finishReason == .length)
    }

    @Test("json_object mode on a chat prompt ends with a complete object")
    func jsonObject() throws {
        let m = try #require(Self.smol)
        var parameters = GenerationParameters()
        parameters.sampling = .greedy
        parameters.maxTokens = 200
        parameters.grammar = try GrammarConstraints.shared.constraint(key: "json_object", label: "json_object", tokenizer: m.tokenizer) {
            JSONSchemaGrammar.anyObject()
        }
        let prompt = try m.chatTokens([ChatMessage(role: "user", content: "Give me a JSON object describing a cat.")])
        let generator = try Generator(model: m, capacity: prompt.count + 256, threads: 2)
        let result = try generator.generate(prompt: prompt, parameters: parameters)
        #expect(result.finishReason == .stop)
        #expect(try JSONSerialization.jsonObject(with: Data(result.text.utf8)) is [String: Any], "\(result.text)")
    }
}
