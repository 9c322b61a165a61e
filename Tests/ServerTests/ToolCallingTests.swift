import ChatTemplates
import Foundation
import Grammar
import ModelFormats
import Testing
import TestSupport
@testable import Server

/// Tools through real chat templates of the three families (from the provisioned template corpus):
/// the syntax is recognized, tools and a past call with its result render through the template,
/// answers in each syntax parse into calls, and a required call's grammar accepts a valid call.
@Suite("Tool calling through real templates",
       .enabled(if: FileManager.default.fileExists(atPath: TestPaths.cacheDirectory + "/templates/Qwen-Qwen2.5-7B-Instruct.jinja"),
                "run scripts/fetch-models first"))
struct ToolCallingTests {
    static let body = #"""
    {"model": "m", "tool_choice": "required", "tools": [{"type": "function", "function": {"name": "get_weather",
       "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
     "messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": null, "tool_calls": [{"id": "abcDEF123", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                  {"role": "tool", "tool_call_id": "abcDEF123", "content": "18 degrees and sunny"},
                  {"role": "user", "content": "And in Rome?"}]}
    """#

    func template(_ name: String) throws -> ChatTemplate {
        try ChatTemplate(String(contentsOfFile: TestPaths.cacheDirectory + "/templates/\(name).jinja", encoding: .utf8))
    }

    @Test("each family renders tools, the past call and its result, and parses its own syntax", arguments: [
        ("Qwen-Qwen2.5-7B-Instruct", ToolSyntax.hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>"),
        ("meta-llama-Llama-3.1-8B-Instruct", .llama3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}"),
        ("mistralai-Mistral-Nemo-Instruct-2407", .mistral, "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}]"),
    ])
    func families(_ name: String, _ syntax: ToolSyntax, _ answer: String) throws {
        let t = try template(name)
        // Mistral's template wants user and assistant turns to alternate around tool turns: end on the result.
        var json = try RawJSON.parse(Array(Self.body.utf8))
        if syntax == .mistral, case .object(var members) = json, let i = members.firstIndex(where: { $0.key == Array("messages".utf8) }),
           case .array(let messages) = members[i].value {
            members[i].value = .array(Array(messages.dropLast()))
            json = .object(members)
        }
        let tools = try ToolCalling.parse(json, template: t)
        #expect(tools.syntax == syntax)
        let (values, _) = try tools.messages(json, limit: 64)
        let text = try t.apply(messages: values, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>", tools: tools.templateTools, now: Date())
        #expect(text.contains("get_weather") && text.contains("Weather in a city"), "\(text)")
        #expect(text.contains("18 degrees and sunny") && text.contains("Paris") && (syntax == .mistral || text.contains("And in Rome?")), "\(text)")
        let (content, calls) = tools.parse(answer)
        #expect(content == nil && calls.count == 1)
        #expect(calls.first?.name == "get_weather" && calls.first?.arguments == #"{"city":"Rome"}"#)
        // The required call's grammar accepts the answer the family writes (Mistral's marker is a
        // control token, absent from the text).
        let structured = try #require(try tools.grammar())
        let automaton = GrammarAutomaton(try CompiledGrammar(structured.grammar))
        let compact = syntax == .hermes ? "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>" : answer
        let state = automaton.step(automaton.initial, Array(compact.utf8))
        #expect(state >= 0 && automaton.isAccepting(state), "\(compact)")
    }

    @Test("the generic fallback describes the tools in a system message and rewrites the history")
    func generic() throws {
        let json = try RawJSON.parse(Array(Self.body.utf8))
        let tools = try ToolCalling.parse(json, template: nil)
        #expect(tools.syntax == .generic && tools.templateTools == nil)
        let (values, plain) = try tools.messages(json, limit: 64)
        #expect(plain.map(\.role) == ["system", "user", "assistant", "user", "user"])
        #expect(plain[0].content.contains("get_weather") && plain[0].content.contains("<tool_call>"))
        #expect(plain[2].content == "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}\n</tool_call>")
        #expect(plain[3].content == "<tool_response>\n18 degrees and sunny\n</tool_response>")
        #expect(values.count == plain.count)
        // Text around blocks is content; a block that is no call of a given function leaves it all content.
        #expect(tools.parse("Sure.\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>").content == "Sure.")
        #expect(tools.parse("<tool_call>{\"name\": \"launch\", \"arguments\": {}}</tool_call>").calls.isEmpty)
        #expect(ToolCalling.callID("chatcmpl-1", 0) == ToolCalling.callID("chatcmpl-1", 0))
        #expect(ToolCalling.callID("chatcmpl-1", 0) != ToolCalling.callID("chatcmpl-1", 1))
        #expect(ToolCalling.callID("chatcmpl-1", 0, syntax: .mistral).count == 9)
    }
}
