import Foundation
import Node
import Testing
@testable import Server

@Suite("Relaying a worker's answer as the gateway's")
struct AnswerRelayTests {
    func chunk(_ content: String?, finish: String? = nil, usage: JSON = nil, statement: JSON? = nil) -> String {
        var value: JSON = ["id": "chatcmpl-worker", "object": "chat.completion.chunk", "model": "upstream-name",
                           "choices": [["index": 0, "delta": content.map { ["content": .string($0)] } ?? [:],
                                        "finish_reason": finish.map(JSON.string) ?? nil]], "usage": usage]
        if let statement { value = value.setting("verity_usage", statement) }
        return value.serialized()
    }

    @Test("a stream: ids rewritten, text and finish collected, chunks passed on at once but the statement's held for the stub")
    func stream() throws {
        var relay = AnswerRelay(id: "chatcmpl-gateway", model: "m")
        var sent: [JSON] = []
        sent += try relay.accept(event: chunk("Hel"))
        #expect(sent.count == 1, "a chunk goes on as soon as it comes")
        sent += try relay.accept(event: chunk("lo"))
        sent += try relay.accept(event: chunk(nil, finish: "stop", usage: ["prompt_tokens": 3, "completion_tokens": 2],
                                              statement: ["payload": "cGF5bG9hZA==", "signature": "c2ln"]))
        #expect(sent.count == 2, "the chunk with the statement waits for the record")
        sent += try relay.accept(event: "[DONE]")
        #expect(relay.done)
        let finished = relay.finish(adding: ("verity", ["record_id": "chatcmpl-gateway"]))
        let last = try #require(finished)
        sent.append(last)
        #expect(sent.count == 3)
        #expect(sent.allSatisfy { $0["id"] == "chatcmpl-gateway" && $0["model"] == "m" && $0["verity_usage"] == nil })
        #expect(last["verity"]?["record_id"] == "chatcmpl-gateway")
        #expect(relay.text == "Hello")
        #expect(relay.finishReason == "stop")
        #expect(relay.usage?["completion_tokens"] == .int(2))
        #expect(relay.usageStatement?["signature"] == "c2ln")
    }

    @Test("a whole response is rewritten the same way")
    func whole() throws {
        var relay = AnswerRelay(id: "cmpl-gateway", model: "m")
        let body: JSON = ["id": "cmpl-w", "object": "text_completion", "model": "x",
                          "choices": [["index": 0, "text": "Paris", "finish_reason": "length"]], "verity_usage": ["payload": "e30="]]
        let out = try relay.accept(response: Data(body.serialized().utf8))
        #expect(out["id"] == "cmpl-gateway" && out["verity_usage"] == nil)
        #expect(relay.text == "Paris" && relay.finishReason == "length")
    }

    @Test("an event that is not JSON is an error; an upstream error event passes through")
    func errors() throws {
        var relay = AnswerRelay(id: "x", model: "m")
        #expect(throws: JSON.ParseError.self) { try relay.accept(event: "not json") }
        let passed = try relay.accept(event: #"{"error": {"message": "boom"}}"#)
        #expect(passed.first?["error"]?["message"] == "boom")
    }
}
