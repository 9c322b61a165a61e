import Foundation
import Grammar
import ModelFormats
import Testing
import TestSupport

/// Does the grammar's automaton accept exactly `text` as a complete sentence?
func accepts(_ automaton: GrammarAutomaton, _ text: String) -> Bool {
    let s = automaton.step(automaton.initial, Array(text.utf8))
    return s >= 0 && automaton.isAccepting(s)
}

func automaton(gbnf: String) throws -> GrammarAutomaton {
    GrammarAutomaton(try CompiledGrammar(try GBNFParser.parse(gbnf)))
}

func automaton(schema: String) throws -> GrammarAutomaton {
    GrammarAutomaton(try CompiledGrammar(try JSONSchemaGrammar.grammar(schema: try RawJSON.parse(Array(schema.utf8)))))
}

@Suite("GBNF and the grammar automaton")
struct GrammarAutomatonTests {
    @Test("literals, classes, groups and every repetition operator")
    func operators() throws {
        let a = try automaton(gbnf: #"""
        root ::= greeting " " name ("!" | "?")? digits   # a comment
        greeting ::= "hi" | "hello"
        name ::= [A-Z] [a-z]*
        digits ::= [0-9]{2,3} x{0,}
        x ::= "x"
        """#)
        #expect(accepts(a, "hi Bob!42"))
        #expect(accepts(a, "hello Al123xxx"))
        #expect(accepts(a, "hi Z?00"))
        #expect(!accepts(a, "hi bob!42"))       // lower-case initial
        #expect(!accepts(a, "hi Bob!4"))        // too few digits
        #expect(!accepts(a, "hi Bob!4242"))     // too many
        #expect(!accepts(a, "hi Bob"))          // incomplete
        #expect(a.step(a.initial, Array("hey".utf8)) == GrammarAutomaton.dead)
    }

    @Test("alternatives may continue on the next line after '|' and inside parentheses")
    func multiline() throws {
        let a = try automaton(gbnf: "root ::= (\n  \"a\"\n  | \"b\" ) |\n \"c\"\nother ::= \"z\"")
        #expect(accepts(a, "a") && accepts(a, "b") && accepts(a, "c"))
        #expect(!accepts(a, "z"))
    }

    @Test("escapes and negated classes work on Unicode scalars, byte by byte")
    func unicode() throws {
        let a = try automaton(gbnf: #"root ::= "\u00e9\x41" [^a-z\n]+ "\t""#)
        #expect(accepts(a, "éA日本\t"))
        #expect(accepts(a, "éA🙂X\t"))
        #expect(!accepts(a, "éAb\t"))
        #expect(!accepts(a, "éA\n\t"))
        // A partial character is a live prefix; an invalid byte is dead.
        let partial = a.step(a.initial, Array("éA".utf8) + [0xE6, 0x97])
        #expect(partial >= 0 && !a.isAccepting(partial))
        #expect(a.step(partial, UInt8(0x41)) == GrammarAutomaton.dead)
        #expect(a.step(a.step(a.initial, Array("éA".utf8)), UInt8(0xFF)) == GrammarAutomaton.dead)
    }

    @Test("a class compiles to exactly the UTF-8 encodings of its scalars")
    func utf8Classes() throws {
        var rng = SplitMix64(seed: 7)
        let a = try automaton(gbnf: #"root ::= [\u0041-\u005a\u00c0-\u024f\u3040-\u30ff\U0001F300-\U0001F5FF]"#)
        let inside: (UInt32) -> Bool = { (0x41...0x5A).contains($0) || (0xC0...0x24F).contains($0) || (0x3040...0x30FF).contains($0) || (0x1F300...0x1F5FF).contains($0) }
        var checked = 0
        while checked < 20_000 {
            let v = UInt32(rng.next() % 0x110000)
            guard let scalar = Unicode.Scalar(v) else { continue }
            #expect(accepts(a, String(Character(scalar))) == inside(v), "U+\(String(v, radix: 16))")
            checked += 1
        }
        // Overlong and surrogate encodings are refused.
        #expect(a.step(a.initial, [0xC1, 0x81]) == GrammarAutomaton.dead)
        let any = try automaton(gbnf: "root ::= .")
        #expect(any.step(any.initial, [0xED, 0xA0, 0x80]) == GrammarAutomaton.dead)
        #expect(accepts(any, "\u{10FFFF}"))
    }

    @Test("errors name the problem", arguments: [
        ("root ::= \"a", "unterminated"),
        ("root ::= missing", "'missing' is used"),
        ("start ::= \"a\"", "no 'root' rule"),
        ("root ::= root \"a\" | \"b\"", "left-recursive"),
        ("root ::= (\"\")*", "left-recursive"),
        ("root ::= [b-a]", "reversed"),
        ("root ::= \"a\"{3,2}", "max below min"),
        ("root ::= \"a\"\nroot ::= \"b\"", "defined twice"),
    ])
    func errors(_ text: String, _ expected: String) {
        #expect {
            _ = try CompiledGrammar(try GBNFParser.parse(text))
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test("hostile grammars are refused or bounded, never a crash")
    func hostile() throws {
        let deep = "root ::= " + String(repeating: "(", count: 20_000) + "\"a\"" + String(repeating: ")", count: 20_000)
        #expect { _ = try GBNFParser.parse(deep) } throws: { "\($0)".contains("nest more than") }
        // A chain of 50,000 rules: compiled and matched without deep recursion.
        var chain = ""
        for i in 0..<50_000 { chain += "r\(i) ::= r\(i + 1)\n" }
        chain += "r50000 ::= \"z\"\nroot ::= r0\n"
        let a = try automaton(gbnf: chain)
        #expect(accepts(a, "z") && !accepts(a, "y"))
    }

    @Test("right recursion does not grow the stack; deep nesting does, up to a bound")
    func recursion() throws {
        let list = try automaton(gbnf: "root ::= \"a\" root | \"b\"")
        #expect(accepts(list, String(repeating: "a", count: 50_000) + "b"))
        #expect(list.stateCount < 10)
        let nested = try automaton(gbnf: "root ::= \"(\" root \")\" | \"x\"")
        #expect(accepts(nested, String(repeating: "(", count: 100) + "x" + String(repeating: ")", count: 100)))
        #expect(!accepts(nested, String(repeating: "(", count: 100) + "x" + String(repeating: ")", count: 99)))
        let tooDeep = nested.step(nested.initial, Array(String(repeating: "(", count: GrammarAutomaton.maxDepth + 10).utf8))
        #expect(tooDeep == GrammarAutomaton.dead)
    }
}
