import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Server

/// One request the server must refuse, and how: every validation branch of the request types,
/// each answered in OpenAI's error shape with the right status, `code` and `param`.
struct Refusal: Sendable, CustomTestStringConvertible {
    var name: String
    var method: HTTPRequest.Method = .post
    var path: String
    var body: String?
    var status: HTTPResponse.Status = .badRequest
    var code: String? = "invalid_value"
    var param: String?

    var testDescription: String { name }

    static let model = "SmolLM2-135M-Instruct.Q4_1"

    static func chat(_ name: String, _ fields: String, messages: String = #"[{"role": "user", "content": "Hi"}]"#,
                     status: HTTPResponse.Status = .badRequest, code: String? = "invalid_value", param: String?) -> Refusal {
        Refusal(name: "chat: " + name, path: "/v1/chat/completions",
                body: #"{"model": "\#(model)", "messages": \#(messages), "max_tokens": 1\#(fields.isEmpty ? "" : ", " + fields)}"#,
                status: status, code: code, param: param)
    }

    static func completion(_ name: String, _ fields: String, code: String? = "invalid_value", param: String?) -> Refusal {
        Refusal(name: "completions: " + name, path: "/v1/completions",
                body: #"{"model": "\#(model)", "max_tokens": 1, \#(fields)}"#, code: code, param: param)
    }
}

@Suite("Request validation, in process")
struct ValidationTests {
    static let manyStops = "[" + (0...16).map { "\"s\($0)\"" }.joined(separator: ",") + "]"
    static let manyBiases = "{" + (0...1024).map { "\"\($0)\": 1" }.joined(separator: ",") + "}"
    static let longText = String(repeating: "word ", count: 700)

    static let refusals: [Refusal] = [
        // Decoding, the same for every JSON endpoint.
        Refusal(name: "empty body", path: "/v1/chat/completions", body: "", code: "invalid_json"),
        Refusal(name: "malformed JSON", path: "/v1/chat/completions", body: #"{"model": "#, code: "invalid_json"),
        Refusal(name: "a body that is not an object", path: "/v1/chat/completions", body: "[1, 2]", code: "invalid_type"),
        Refusal(name: "missing messages", path: "/v1/chat/completions", body: #"{"model": "m"}"#, code: "missing_required_parameter", param: "messages"),
        Refusal(name: "a field of the wrong type", path: "/v1/chat/completions",
                body: #"{"model": "m", "messages": [], "temperature": "hot"}"#, code: "invalid_type", param: "temperature"),
        Refusal(name: "a nested field of the wrong type", path: "/v1/chat/completions",
                body: #"{"model": "m", "messages": [{"role": 1}]}"#, code: "invalid_type", param: "messages[0].role"),
        Refusal(name: "unknown model", path: "/v1/chat/completions", body: #"{"model": "nope", "messages": []}"#,
                status: .notFound, code: "model_not_found", param: "model"),
        // Chat.
        .chat("a tool without its function", #""tools": [{"type": "function"}]"#, param: "tools[0]"),
        .chat("functions", #""functions": [{"name": "f"}]"#, code: "unsupported_parameter", param: "functions"),
        .chat("an unknown response format", #""response_format": {"type": "xml"}"#, param: "response_format.type"),
        .chat("an unenforceable schema", #""response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}}"#,
              code: "unsupported_schema", param: "response_format.json_schema.schema"),
        .chat("top_logprobs above 20", #""logprobs": true, "top_logprobs": 21"#, param: "top_logprobs"),
        .chat("top_logprobs without logprobs", #""top_logprobs": 2"#, param: "top_logprobs"),
        .chat("no messages", "", messages: "[]", param: "messages"),
        .chat("an unknown role", "", messages: #"[{"role": "wizard", "content": "Hi"}]"#, param: "messages[0].role"),
        .chat("a tool call without its function", "", messages: #"[{"role": "assistant", "content": "", "tool_calls": [{"id": "x"}]}]"#,
              code: "missing_required_parameter", param: "messages[0].tool_calls[0].function.name"),
        .chat("an image part", "", messages: #"[{"role": "user", "content": [{"type": "image_url"}]}]"#,
              code: "unsupported_parameter", param: "messages[0].content[0]"),
        .chat("n above 16", #""n": 17"#, param: "n"),
        .chat("n of 0", #""n": 0"#, param: "n"),
        .chat("temperature above 2", #""temperature": 2.5"#, param: "temperature"),
        .chat("top_p above 1", #""top_p": 1.5"#, param: "top_p"),
        .chat("top_k below -1", #""top_k": -2"#, param: "top_k"),
        .chat("min_p above 1", #""min_p": 2"#, param: "min_p"),
        .chat("presence_penalty above 2", #""presence_penalty": 3"#, param: "presence_penalty"),
        .chat("frequency_penalty below -2", #""frequency_penalty": -3"#, param: "frequency_penalty"),
        .chat("repetition_penalty of 0", #""repetition_penalty": 0"#, param: "repetition_penalty"),
        .chat("a logit_bias key that is no token id", #""logit_bias": {"abc": 1}"#, param: "logit_bias"),
        .chat("a logit_bias key beyond 32 bits", #""logit_bias": {"4294967296": 1}"#, param: "logit_bias"),
        .chat("a logit_bias key beyond the vocabulary", #""logit_bias": {"50000": 1}"#, param: "logit_bias"),
        .chat("more than 2048 messages", "", messages: "[" + Array(repeating: #"{"role": "user", "content": "a"}"#, count: 2049).joined(separator: ",") + "]",
              param: "messages"),
        .chat("a logit_bias value above 100", #""logit_bias": {"1": 200}"#, param: "logit_bias"),
        .chat("more than 1024 logit_bias entries", #""logit_bias": \#(manyBiases)"#, param: "logit_bias"),
        .chat("more than 16 stop strings", #""stop": \#(manyStops)"#, param: "stop"),
        .chat("a stop string over 256 bytes", #""stop": "\#(String(repeating: "x", count: 257))""#, param: "stop"),
        .chat("negative max_tokens", #""max_completion_tokens": -1"#, param: "max_completion_tokens"),
        .chat("max_tokens beyond the context", #""max_completion_tokens": 100000"#, code: "context_length_exceeded",
              param: "max_completion_tokens"),
        .chat("max_tokens of Int.max", #""max_completion_tokens": 9223372036854775807"#, code: "context_length_exceeded",
              param: "max_completion_tokens"),
        .chat("prompt and max_tokens beyond the context", #""max_completion_tokens": 510"#, code: "context_length_exceeded", param: "messages"),
        .chat("top_k beyond the vocabulary", #""top_k": 49153"#, param: "top_k"),
        .chat("max_tokens of -0", #""max_tokens": -0"#, param: "max_tokens"),
        .chat("a fractional max_tokens", #""max_tokens": 1.5"#, param: "max_tokens"),
        .chat("max_tokens of 1.0e-400", #""max_tokens": 1.0e-400"#, param: "max_tokens"),
        .chat("max_tokens beyond 64 bits", #""max_tokens": 9223372036854775808"#, param: "max_tokens"),
        .chat("a temperature beyond a double", #""temperature": 1e309"#, param: "temperature"),
        .chat("a seed beyond 64 bits", #""seed": 18446744073709551616"#, param: "seed"),
        .chat("a lone surrogate", "", messages: #"[{"role": "user", "content": "\ud800"}]"#, code: "invalid_json", param: nil),
        .chat("nesting 100 levels deep", #""metadata": \#(String(repeating: "[", count: 100) + String(repeating: "]", count: 100))"#,
              code: "invalid_json", param: nil),
        .chat("a prompt beyond the context", "", messages: #"[{"role": "user", "content": "\#(longText)"}]"#,
              code: "context_length_exceeded", param: "messages"),
        // Completions.
        .completion("a batch of prompts", #""prompt": ["a", "b"]"#, code: "unsupported_parameter", param: "prompt"),
        .completion("echo", #""prompt": "a", "echo": true"#, code: "unsupported_parameter", param: "echo"),
        .completion("suffix", #""prompt": "a", "suffix": "b""#, code: "unsupported_parameter", param: "suffix"),
        .completion("best_of above 1", #""prompt": "a", "best_of": 2"#, code: "unsupported_parameter", param: "best_of"),
        .completion("logprobs above 20", #""prompt": "a", "logprobs": 21"#, param: "logprobs"),
        .completion("a token id beyond the vocabulary", #""prompt": [1, 99999999]"#, param: "prompt"),
        .completion("a negative token id", #""prompt": [-1]"#, param: "prompt"),
        .completion("a token id of -0", #""prompt": [1, -0]"#, param: "prompt"),
        .completion("a token id beyond 32 bits", #""prompt": [1099511627776]"#, param: "prompt"),
        .completion("an empty prompt", #""prompt": []"#, param: "prompt"),
        .completion("a prompt of the wrong type", #""prompt": {"text": "a"}"#, code: "invalid_type", param: "prompt"),
        // Tokenizing.
        Refusal(name: "tokenize without prompt or messages", path: "/v1/tokenize", body: #"{"model": "\#(Refusal.model)"}"#,
                code: "missing_required_parameter", param: "prompt"),
        Refusal(name: "detokenize a token beyond the vocabulary", path: "/v1/detokenize",
                body: #"{"model": "\#(Refusal.model)", "tokens": [99999999]}"#, param: "tokens"),
        Refusal(name: "chat/template without messages", path: "/v1/chat/template", body: #"{"model": "\#(Refusal.model)"}"#,
                code: "missing_required_parameter", param: "messages"),
        // The ledger's reads.
        Refusal(name: "a block height that is no number", method: .get, path: "/v1/ledger/blocks/abc", param: "height"),
        Refusal(name: "an unknown block", method: .get, path: "/v1/ledger/blocks/7", status: .notFound, code: "not_found"),
        Refusal(name: "consistency without from", method: .get, path: "/v1/ledger/consistency?to=0",
                code: "missing_required_parameter", param: "from"),
        Refusal(name: "consistency from above to", method: .get, path: "/v1/ledger/consistency?from=2&to=1", param: "from"),
        Refusal(name: "consistency beyond the tree", method: .get, path: "/v1/ledger/consistency?from=0&to=5", param: "to"),
        Refusal(name: "entries from a negative start", method: .get, path: "/v1/ledger/entries?start=-1", param: "start"),
        Refusal(name: "an unknown record", method: .get, path: "/v1/ledger/records/chatcmpl-nope", status: .notFound, code: "not_found"),
        Refusal(name: "the receipt of an unknown record", method: .get, path: "/v1/ledger/records/chatcmpl-nope/receipt",
                status: .notFound, code: "not_found"),
        Refusal(name: "listing records without an account key", method: .get, path: "/v1/ledger/records",
                status: .unauthorized, code: "invalid_api_key"),
        Refusal(name: "an unknown route", method: .get, path: "/v1/nothing-here", status: .notFound, code: "not_found"),
    ]

    @Test("each refusal has OpenAI's error shape, status, code and param", arguments: refusals)
    func refusal(_ refusal: Refusal) async throws {
        try await TestServer.withShared { _, client in
            try await client.execute(uri: refusal.path, method: refusal.method, headers: TestServer.authorized,
                                     body: refusal.body.map { ByteBuffer(string: $0) }) { response in
                #expect(response.status == refusal.status, "\(String(buffer: response.body))")
                let error = try #require(try? ErrorBody(response.body), "not an OpenAI error: \(String(buffer: response.body))")
                #expect(!error.message.isEmpty)
                #expect(error.code == refusal.code)
                #expect(error.param == refusal.param)
            }
        }
    }

    @Test("bytes that are not UTF-8 are a 400 that says so")
    func invalidUTF8() async throws {
        try await TestServer.withShared { _, client in
            var body = ByteBuffer(string: #"{"model": "SmolLM2-135M-Instruct.Q4_1", "messages": [{"role": "user", "content": ""#)
            body.writeBytes([0xFF, 0xFE])
            body.writeString(#""}]}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: TestServer.authorized, body: body) { response in
                #expect(response.status == .badRequest)
                let error = try? ErrorBody(response.body)
                #expect(error?.code == "invalid_json")
                #expect(error?.message.contains("UTF-8") == true)
            }
        }
    }

    @Test("a body over the limit is 413, before it is decoded")
    func bodyLimit() async throws {
        var limits = RequestLimits()
        limits.maxBodyBytes = 1024
        try await TestServer.withApp(limits: limits) { _, client in
            let body = #"{"model": "m", "messages": [{"role": "user", "content": "\#(String(repeating: "a", count: 2000))"}]}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: TestServer.authorized,
                                     body: ByteBuffer(string: body)) { response in
                #expect(response.status == .contentTooLarge)
                #expect((try? ErrorBody(response.body))?.code == "request_too_large")
            }
        }
    }
}
