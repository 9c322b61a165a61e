import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Node

/// Answers a chat completions body: a server's own engine (``ChatCompletionsController``) or a
/// gateway's fleet (``GatewayControllers``). `id` is the answer's id (and its record's); `api`
/// names the wire format the request came in, which the record keeps.
typealias ChatAnswerer = @Sendable (_ body: Data, _ context: VerityRequestContext, _ id: String, _ api: String) async throws -> Response

/// The other wire formats (OpenAI's Responses API, Anthropic's Messages API) are translations:
/// their request becomes a chat completions body, which goes down the one generation path (with
/// its validation, its grammar, its tools and its ledger record), and the chat answer, whole or
/// streamed, is translated back. This holds the plumbing both share.
enum ChatBridge {
    /// The whole (non-streaming) chat answer: its JSON and its headers. A body that is not JSON
    /// (which the chat path never sends) is a server error.
    static func collect(_ response: Response) async throws -> JSON {
        let sink = ByteSink()
        try await response.body.write(CollectingWriter(sink: sink))
        do { return try JSON.parse(sink.data) } catch {
            throw APIError.server("The chat answer could not be read: \(error)")
        }
    }

    /// The streamed chat answer, each of its server-sent events passed through `translator`,
    /// whose output is written instead. The chat stream's headers stay (the record id's among
    /// them).
    static func translate<T: StreamTranslator>(_ response: Response, with translator: T) -> Response {
        let body = response.body
        var translated = response
        translated.headers[.contentLength] = nil
        translated.body = ResponseBody { writer in
            try await body.write(TranslatingWriter(parent: writer, translator: translator))
        }
        return translated
    }

    /// A call a chat answer made, as both translations carry it.
    struct ToolCall: Sendable {
        var id: String
        var name: String
        /// The arguments' JSON text.
        var arguments: String
    }

    /// A chat message's (or a `tool_calls` delta's) calls. Arguments missing from a whole
    /// message read as `{}`.
    static func calls(_ list: JSON?) -> [ToolCall] {
        (list?.arrayValue ?? []).map { call in
            ToolCall(id: call["id"]?.stringValue ?? "", name: call["function"]?["name"]?.stringValue ?? "",
                     arguments: call["function"]?["arguments"]?.stringValue ?? "{}")
        }
    }

    /// A request body that must be a JSON object: checked as chat's are (``JSONPrecheck``), then parsed.
    static func object(_ data: Data) throws(APIError) -> JSON {
        try JSONPrecheck.check(data)
        let json: JSON
        do { json = try JSON.parse(data) } catch { throw APIError.invalidJSON(error.description) }
        guard json.objectFields != nil else { throw APIError.invalidRequest("The request body must be a JSON object.", code: "invalid_type") }
        return json
    }

    /// One server-sent event, named when `event` is given (the Responses and Messages streams
    /// name every event; the chat stream names none).
    static func sse(event: String?, _ data: JSON) -> ByteBuffer {
        ByteBuffer(string: (event.map { "event: \($0)\n" } ?? "") + "data: " + data.serialized() + "\n\n")
    }
}

/// Turns the chat stream's events into another format's. Events arrive in order: chunks (each a
/// JSON object: a `chat.completion.chunk`, or an `{"error": …}` that ends the answer), then
/// `[DONE]` (absent when the stream broke off or ended on an error).
protocol StreamTranslator: Sendable {
    /// The events to write for one chat chunk.
    mutating func chunk(_ chunk: JSON) async -> [ByteBuffer]
    /// The events to write for `data: [DONE]`.
    mutating func done() async -> [ByteBuffer]
}

/// Receives a response body's bytes.
private final class ByteSink: @unchecked Sendable {
    var data = Data()
}

private struct CollectingWriter: ResponseBodyWriter {
    let sink: ByteSink

    mutating func write(_ buffer: ByteBuffer) async throws {
        sink.data.append(contentsOf: buffer.readableBytesView)
        guard sink.data.count <= GatewayResponder.maxAnswerBytes else { throw APIError.server("The chat answer is too large to translate.") }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// Splits the chat stream into its events (however its writes cut them) and writes what the
/// translator makes of each.
private struct TranslatingWriter<T: StreamTranslator>: ResponseBodyWriter {
    var parent: any ResponseBodyWriter
    var translator: T
    var pending: [UInt8] = []

    mutating func write(_ buffer: ByteBuffer) async throws {
        pending.append(contentsOf: buffer.readableBytesView)
        while let end = Self.eventEnd(pending) {
            let event = String(decoding: pending[..<end.start], as: UTF8.self)
            pending.removeSubrange(..<end.next)
            for line in event.split(separator: "\n", omittingEmptySubsequences: true) {
                let text = line.hasSuffix("\r") ? line.dropLast() : line
                guard text.hasPrefix("data:") else { continue }
                let payload = text.dropFirst(5).drop { $0 == " " }
                let out: [ByteBuffer]
                if payload == "[DONE]" {
                    out = await translator.done()
                } else if let json = try? JSON.parse(Data(payload.utf8)) {
                    out = await translator.chunk(json)
                } else {
                    continue
                }
                for buffer in out { try await parent.write(buffer) }
            }
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await parent.finish(trailingHeaders)
    }

    /// Where the first event ends (its blank line): the event's last byte and the next event's first.
    private static func eventEnd(_ bytes: [UInt8]) -> (start: Int, next: Int)? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x0A, bytes[i + 1] == 0x0A { return (i, i + 2) }
            if bytes[i] == 0x0A, bytes[i + 1] == 0x0D, i + 2 < bytes.count, bytes[i + 2] == 0x0A { return (i, i + 3) }
            i += 1
        }
        return nil
    }
}

extension JSON {
    /// The integer, if this is one (or a double with an integral value).
    var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    /// The boolean, if this is one.
    var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The object's fields, if this is one.
    var objectFields: [(String, JSON)]? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// This value, or nil when it is `null`. (Beware `{ $0.isNull ? nil : $0 }`: JSON is
    /// expressible by `nil`, so that closure returns `.null`, not nil.)
    var nonNull: JSON? { isNull ? Optional<JSON>.none : self }
}
