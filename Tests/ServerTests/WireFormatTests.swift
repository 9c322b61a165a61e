import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Node
import Testing
@testable import Server

/// The Responses and Messages APIs' translations: requests into chat bodies, chat streams (cut
/// anywhere) into their events, and the stored responses' ownership and limits.
@Suite("Responses and Messages API translations")
struct WireFormatTests {
    func data(_ text: String) -> Data { Data(text.utf8) }

    @Test("a Responses request becomes the chat body with instructions, history, calls and outputs")
    func responsesRequest() throws {
        let req = try ResponsesRequest(data(#"""
        {"model": "m", "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.5, "store": false,
         "include": ["message.output_text.logprobs"], "top_logprobs": 2,
         "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi "}, {"type": "input_text", "text": "there"}]},
                   {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
                   {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
                   {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"a\":2}"},
                   {"type": "function_call_output", "call_id": "c1", "output": "one"},
                   {"type": "reasoning", "id": "r", "summary": []}],
         "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": true}],
         "tool_choice": {"type": "function", "name": "f"},
         "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": true}}}
        """#))
        #expect(req.store == false && req.wantsLogprobs && req.instructions == "Be brief.")
        let history: [JSON] = [["role": "user", "content": "Earlier"], ["role": "assistant", "content": "Yes"]]
        let (body, input) = try req.chatBody(history: history)
        let messages = body["messages"]?.arrayValue ?? []
        #expect(messages.count == 6 && input.count == 3)
        #expect(messages[0].serialized() == #"{"role":"system","content":"Be brief."}"#)
        #expect(messages[1]["content"] == "Earlier" && messages[3]["content"] == "Hi there")
        // Both calls belong to the assistant message they follow.
        #expect(messages[4]["content"] == "Let me look." && messages[4]["tool_calls"]?.arrayValue?.count == 2)
        #expect(messages[4]["tool_calls"]?.arrayValue?[1]["function"]?["arguments"] == #"{"a":2}"#)
        #expect(messages[5].serialized() == #"{"role":"tool","tool_call_id":"c1","content":"one"}"#)
        #expect(body["max_completion_tokens"] == 50 && body["logprobs"] == true && body["top_logprobs"] == 2)
        #expect(body["tools"]?.serialized() == #"[{"type":"function","function":{"name":"f","parameters":{"type":"object"},"strict":true}}]"#)
        #expect(body["tool_choice"]?.serialized() == #"{"type":"function","function":{"name":"f"}}"#)
        #expect(body["response_format"]?.serialized() == #"{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"},"strict":true}}"#)
        #expect(body["stream"] == nil)
    }

    @Test("null fields read as absent: the response echoes OpenAI's defaults, never a null the schema forbids")
    func responsesNulls() throws {
        let req = try ResponsesRequest(data(#"{"input": "x", "parallel_tool_calls": null, "temperature": null, "text": null, "tools": null, "store": null}"#))
        let r = ResponsesAnswer(id: "resp_1", created: 0, request: req.echo).response()
        #expect(r["parallel_tool_calls"] == true && r["temperature"] == 1 && r["top_p"] == 1 && r["store"] == true)
        #expect(r["text"]?.serialized() == #"{"format":{"type":"text"}}"# && r["tools"] == [] && r["tool_choice"] == "auto")
        #expect(r["user"] == nil && r["usage"]?["total_tokens"] == 0)
        let m = try MessagesRequest(data(#"{"max_tokens": 4, "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": null}]}]}"#))
        #expect(try m.chatBody()["messages"]?.arrayValue?[0]["tool_calls"]?.arrayValue?[0]["function"]?["arguments"] == "{}")
        #expect(MessagesAnswer.toolUse(.init(id: "t", name: "f", arguments: "[1]"))["input"]?.serialized() == "{}")
    }

    @Test("what a Responses request can't have here is a 400 naming it", arguments: [
        (#"{"input": "x", "tools": [{"type": "file_search"}]}"#, "tools[0].type"),
        (#"{"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}"#, "input[0].content[0]"),
        (#"{"input": [{"role": "tool", "content": "x"}]}"#, "input[0].role"),
        (#"{"input": [{"type": "function_call", "name": "f"}]}"#, "input[0].call_id"),
        (#"{"input": "x", "reasoning": {"effort": "high"}}"#, "reasoning.effort"),
        (#"{"input": "x", "conversation": "conv_1"}"#, "conversation"),
        (#"{"input": "x", "text": {"format": {"type": "yaml"}}}"#, "text.format.type"),
        (#"{"input": "x", "stream": "yes"}"#, "stream"),
        (#"{}"#, "input"),
        (#"{"input": "x", "parallel_tool_calls": {}}"#, "parallel_tool_calls"),
        (#"{"input": "x", "metadata": {"a": 1}}"#, "metadata"),
        (#"{"input": "x", "max_output_tokens": 1.5}"#, "max_output_tokens"),
    ])
    func responsesRefusals(body: String, param: String) {
        do {
            _ = try ResponsesRequest(data(body)).chatBody(history: [])
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.status == .badRequest && error.param == param, "\(body): \(error.message)")
        }
    }

    @Test("a Messages request becomes the chat body: system blocks, tool uses, results before the user's text")
    func messagesRequest() throws {
        let req = try MessagesRequest(data(#"""
        {"model": "m", "max_tokens": 64, "system": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
         "stop_sequences": ["END"], "top_k": 5, "metadata": {"user_id": "u1"}, "stream": true,
         "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
         "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
         "messages": [{"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": [{"type": "text", "text": "Calling."}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]},
                                                   {"type": "tool_result", "tool_use_id": "t2", "content": "bad", "is_error": true},
                                                   {"type": "text", "text": "Thanks"}]}]}
        """#))
        let body = try req.chatBody()
        let m = body["messages"]?.arrayValue ?? []
        #expect(m.count == 6)
        #expect(m[0].serialized() == #"{"role":"system","content":"Be brief."}"#)
        #expect(m[2].serialized() == #"{"role":"assistant","content":"Calling.","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}"#)
        #expect(m[3].serialized() == #"{"role":"tool","tool_call_id":"t1","content":"ok"}"#)
        #expect(m[4]["content"] == "Error: bad" && m[5].serialized() == #"{"role":"user","content":"Thanks"}"#)
        #expect(body["max_completion_tokens"] == 64 && body["stop"] == ["END"] && body["top_k"] == 5 && body["user"] == "u1")
        #expect(body["tool_choice"] == "required" && body["parallel_tool_calls"] == false)
        #expect(body["tools"]?.serialized() == #"[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}]"#)
        #expect(body["stream"] == true && body["stream_options"]?["include_usage"] == true)
    }

    @Test("what a Messages request can't have here is a 400 naming it", arguments: [
        (#"{"messages": [{"role": "user", "content": "x"}]}"#, "max_tokens"),
        (#"{"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}"#, "messages.0.content.0"),
        (#"{"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}"#, "messages.0.role"),
        (#"{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "w"}]}"#, "tools.0.type"),
        (#"{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "enabled", "budget_tokens": 1024}}"#, "thinking"),
        (#"{"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]}"#, "messages.0.content.0"),
    ])
    func messagesRefusals(body: String, param: String) {
        do {
            _ = try MessagesRequest(data(body)).chatBody()
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.status == .badRequest && error.param == param, "\(body): \(error.message)")
        }
    }

    // MARK: Streams

    /// A chat stream as the server writes it: opening, two pieces of text, a call, the finish
    /// (by a stop string), the usage with the receipt stub, [DONE].
    static let chatStream: [String] = [
        #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
        #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}}]}"#,
        #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
        #"{"id":"x","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls","stop_reason":"END"}]}"#,
        #"{"id":"x","model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}},"verity":{"record_id":"x"}}"#,
    ]

    /// The stream, written in pieces cut at every `cut` bytes, through the translator: the events
    /// it wrote, as (name, data).
    func translate<T: StreamTranslator>(_ translator: T, cut: Int) async throws -> [(String?, JSON)] {
        let text = Self.chatStream.map { "data: \($0)\n\n" }.joined() + "data: [DONE]\n\n"
        let bytes = Array(text.utf8)
        let source = Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
            var at = 0
            while at < bytes.count {
                try await writer.write(ByteBuffer(bytes: bytes[at..<min(at + cut, bytes.count)]))
                at += cut
            }
            try await writer.finish(nil)
        })
        let sink = Sink()
        try await ChatBridge.translate(source, with: translator).body.write(SinkWriter(sink: sink))
        return sink.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
            let lines = event.split(separator: "\n")
            let name = lines.first { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
            let payload = lines.first { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) } ?? ""
            return (name, (try? JSON.parse(Data(payload.utf8))) ?? nil)
        }
    }

    @Test("the chat stream becomes Anthropic's events, however its writes are cut", arguments: [1, 7, 4096])
    func messagesStream(cut: Int) async throws {
        let events = try await translate(MessagesStream(answer: MessagesAnswer(id: "msg_1")), cut: cut)
        #expect(events.map { $0.0 ?? "" } == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                                              "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
                                              "content_block_stop", "message_delta", "message_stop"])
        #expect(events.allSatisfy { $0.1["type"]?.stringValue == $0.0 })
        #expect(events[5].1["content_block"]?.serialized() == #"{"type":"tool_use","id":"call_1","name":"f","input":{},"caller":{"type":"direct"}}"#)
        #expect(events[7].1["delta"]?.serialized() == #"{"type":"input_json_delta","partial_json":"1}"}"#)
        let delta = events[9].1
        #expect(delta["delta"]?.serialized() == #"{"stop_reason":"tool_use","stop_sequence":"END"}"#)
        #expect(delta["usage"]?["input_tokens"] == 7 && delta["usage"]?["cache_read_input_tokens"] == 2)
        #expect(delta["verity"]?["record_id"] == "x")
    }

    @Test("the chat stream becomes the Responses API's events, numbered, ending with the whole response", arguments: [3, 4096])
    func responsesStream(cut: Int) async throws {
        let req = try ResponsesRequest(data(#"{"input": "x"}"#))
        let store = ResponseStore()
        let answer = ResponsesAnswer(id: "resp_abc", created: 1, request: req.echo)
        let events = try await translate(ResponsesStream(answer: answer, store: store, owner: "me", conversation: [["role": "user", "content": "x"]]),
                                         cut: cut)
        #expect(events.map { $0.0 ?? "" } == [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
            "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
            "response.completed"])
        #expect(events.enumerated().allSatisfy { $0.element.1["sequence_number"] == .int($0.offset) })
        #expect(events[9].1["output_index"] == 1 && events[9].1["item"]?["id"] == "fc_abc_0")
        let final = events.last!.1["response"]!
        #expect(final["status"] == "completed" && final["output"]?.arrayValue?.count == 2)
        #expect(final["output"]?.arrayValue?[0]["content"]?.arrayValue?[0]["text"] == "Hello")
        #expect(final["output"]?.arrayValue?[1]["arguments"] == #"{"a":1}"#)
        #expect(final["usage"]?["input_tokens"] == 7 && final["verity"]?["record_id"] == "x")
        // Stored with the conversation, the answer as its last (assistant) message.
        let stored = try #require(store.get("resp_abc", owner: "me"))
        #expect(stored.conversation.count == 2 && stored.conversation[1]["tool_calls"]?.arrayValue?.count == 1)
        #expect(store.get("resp_abc", owner: "someone else") == nil)
    }

    @Test("a chat error event ends the translated stream with the format's error event")
    func errorEvents() async {
        var m = MessagesStream(answer: MessagesAnswer(id: "msg_1"))
        let error = JSON.object([("error", ["message": "boom", "type": "server_error", "param": nil, "code": "internal_error"])])
        let out = await m.chunk(error)
        #expect(String(buffer: out[0]).hasPrefix("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}"))
        #expect(await m.done().isEmpty)
        var r = ResponsesStream(answer: ResponsesAnswer(id: "resp_1", created: 0, request: try! ResponsesRequest(data(#"{"input":"x"}"#)).echo),
                                store: nil, owner: "", conversation: [])
        let events = await r.chunk(error)
        #expect(String(buffer: events[0]).contains(#""type":"error","code":"internal_error","message":"boom""#))
        #expect(await r.done().isEmpty)
    }

    @Test("stored responses: only their owner sees them; the oldest go past the count or size limit")
    func store() {
        let store = ResponseStore(maxResponses: 2, maxBytes: 1 << 20)
        for i in 0..<3 { store.put(id: "r\(i)", owner: "a", response: ["i": .int(i)], conversation: []) }
        #expect(store.get("r0", owner: "a") == nil && store.get("r2", owner: "a") != nil && store.get("r1", owner: "b") == nil)
        #expect(!store.delete("r1", owner: "b") && store.delete("r1", owner: "a") && store.get("r1", owner: "a") == nil)
        let small = ResponseStore(maxResponses: 100, maxBytes: 100)
        small.put(id: "big", owner: "a", response: .string(String(repeating: "x", count: 200)), conversation: [])
        #expect(small.get("big", owner: "a") == nil)
        for i in 0..<10 { small.put(id: "s\(i)", owner: "a", response: .string(String(repeating: "y", count: 30)), conversation: []) }
        #expect(small.get("s9", owner: "a") != nil && small.get("s0", owner: "a") == nil)
    }
}

private final class Sink: @unchecked Sendable {
    var text = ""
}

private struct SinkWriter: ResponseBodyWriter {
    let sink: Sink
    mutating func write(_ buffer: ByteBuffer) async throws { sink.text += String(buffer: buffer) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
