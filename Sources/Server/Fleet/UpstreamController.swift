import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import NIOCore
import NIOFoundationCompat
import Node
import Synchronization

/// Where a worker that fronts an external engine sends its jobs: an OpenAI-compatible server
/// (vLLM, SGLang, TGI, llama-server, Ollama, llama-cpp-python) and the model name it serves.
public struct UpstreamEngine: Sendable {
    /// Its API's base URL, `http://HOST:PORT/v1`.
    public var url: String
    /// The model name the engine knows (`--upstream-model`).
    public var model: String
    /// The model id the worker advertises (default: the engine's model name).
    public var servedName: String
    /// The engine's bearer key, if it wants one.
    public var apiKey: String?
    /// The context length advertised (the engine enforces its own).
    public var contextLength: Int
    /// Requests the engine takes at once, advertised as capacity.
    public var capacity: Int

    public init(url: String, model: String, servedName: String? = nil, apiKey: String? = nil, contextLength: Int = 4096, capacity: Int = 16) {
        self.url = url
        self.model = model
        self.servedName = servedName ?? model
        self.apiKey = apiKey
        self.contextLength = contextLength
        self.capacity = capacity
    }

    /// How the advert names the model: matched by id alone (an engine's weights have no digest
    /// this worker can state), its source `upstream:` and the engine's model name.
    var advertised: Advert.Model {
        Advert.Model(id: servedName, source: "upstream:" + model, digest: nil, contextLength: contextLength)
    }
}

/// A worker's completion endpoints in front of an external engine: a job from its gateway goes to
/// the engine with the engine's model name (a stream also asks for usage), the engine's answer
/// comes back as it streams, and the worker adds its signed usage statement to the end: the
/// request's and the generated text's SHA-256, the engine's token counts, the times, and the
/// worker's GPU, provider and price.
///
/// The statement rides on the answer's last chunk with choices (or on the usage chunk when the
/// client asked for one), never on a chunk of its own, so clients that read `choices[0]` of every
/// chunk keep working.
struct UpstreamController {
    let engine: UpstreamEngine
    let client: JobClient
    let signer: UsageStatementSigner
    let limits: RequestLimits
    let logger: Logger
    let inFlight: InFlight
    var headTimeout: Duration = .seconds(30)
    var jobTimeout: Duration = .seconds(600)

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("chat/completions") { request, context in try await complete(request, context: context, path: "/chat/completions") }
        group.post("completions") { request, context in try await complete(request, context: context, path: "/completions") }
        group.get("models") { _, _ in
            Response.json(["object": "list", "data": [["id": .string(engine.servedName), "object": "model", "created": 0, "owned_by": "upstream"]]])
        }
    }

    /// Requests in flight to the engine: the heartbeat's load.
    final class InFlight: Sendable {
        private let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
        func enter() { count.add(1, ordering: .relaxed) }
        func leave() { count.subtract(1, ordering: .relaxed) }
    }

    private func complete(_ request: Request, context: VerityRequestContext, path: String) async throws -> Response {
        let body = try await RequestBody.read(request, limit: limits.maxBodyBytes)
        let received: JSON
        do { received = try JSON.parse(body) } catch { throw APIError.invalidJSON("\(error)") }
        guard received["model"]?.stringValue == engine.servedName else {
            throw APIError.modelNotFound(received["model"]?.stringValue ?? "")
        }
        let streaming = received["stream"] == .bool(true)
        let clientWantsUsage = received["stream_options"]?["include_usage"] == .bool(true)
        var forwarded = received.setting("model", .string(engine.model))
        if streaming { forwarded = forwarded.setting("stream_options", ["include_usage": true]) }
        let id = context.jobRequestID ?? RequestValidation.newID(path == "/completions" ? "cmpl" : "chatcmpl")
        var interaction = Interaction(recordID: id, caller: context.caller, timestampMilliseconds: Interaction.now(), modelID: engine.servedName,
                                      modelDigest: "", chatTemplateHash: nil, parameters: ModelParameters(temperature: 1, topP: 1),
                                      systemPrompt: nil, prompt: "")
        interaction.bodyDigest = Data(SHA256.hash(data: body))
        interaction.routedAdvert = context.jobAdvertHash
        let started = Interaction.now()
        inFlight.enter()
        let response: HTTPClientResponse
        do {
            response = try await client.send(base: engine.url, path: path, body: Data(forwarded.serialized().utf8), requestID: nil,
                                             headTimeout: streaming ? headTimeout : jobTimeout, totalTimeout: jobTimeout)
        } catch {
            inFlight.leave()
            logger.warning("\(id): the engine at \(engine.url) did not answer: \(error)")
            throw APIError(status: .badGateway, message: "The engine behind this worker did not answer (\(error)).", type: "server_error",
                           param: nil, code: "upstream_unavailable")
        }
        guard response.status == .ok else {
            inFlight.leave()
            let data = (try? await response.body.collect(upTo: 1 << 20)).map { Data(buffer: $0) } ?? Data()
            // The engine's refusal, as it gave it (a 400 is the request's fault; a 5xx is the engine's).
            return Response(status: HTTPResponse.Status(code: Int(response.status.code)), headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(data: data)))
        }
        let closure = await context.connectionClosure()
        if streaming {
            let upstream = response.body
            let interaction = interaction
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: ResponseBody { writer in
                defer { inFlight.leave() }
                try await relay(upstream, to: &writer, interaction: interaction, started: started, clientWantsUsage: clientWantsUsage,
                                closure: closure)
            })
        }
        defer { inFlight.leave() }
        let pump = BodyPump(response.body, closure: closure)
        var data = ByteBuffer()
        for try await buffer in pump.stream {
            var buffer = buffer
            data.writeBuffer(&buffer)
        }
        pump.done()
        var answer = try JSON.parse(Data(buffer: data))
        var text = ""
        for choice in answer["choices"]?.arrayValue ?? [] {
            text += choice["message"]?["content"]?.stringValue ?? choice["text"]?.stringValue ?? ""
        }
        let statement = try sign(interaction, text: text, usage: answer["usage"], chunks: 0, started: started)
        answer = answer.adding(statement.key, statement.value)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: answer.serialized())))
    }

    /// Relays the engine's stream: chunks pass at once, except the one the statement will ride
    /// (the last with a finish reason, or the usage chunk if the client asked for usage).
    private func relay(_ body: HTTPClientResponse.Body, to writer: inout any ResponseBodyWriter, interaction: Interaction, started: Int64,
                       clientWantsUsage: Bool, closure: ConnectionClosure?) async throws {
        let pump = BodyPump(body, closure: closure)
        defer { pump.cancel() }
        var reader = ServerSentEventReader()
        var text = "", usage: JSON?, held: JSON?, chunks = 0, done = false
        reading: for try await buffer in pump.stream {
            for event in reader.feed(buffer) {
                if event.trimmingCharacters(in: .whitespaces) == "[DONE]" {
                    done = true
                    break reading
                }
                let chunk: JSON
                do { chunk = try JSON.parse(Data(event.utf8)) } catch {
                    try await writer.write(Self.sse(APIError.server("The engine sent an event that is not JSON.").body))
                    return
                }
                if chunk["error"] != nil {
                    try await writer.write(Self.sse(chunk))
                    return
                }
                let choices = chunk["choices"]?.arrayValue ?? []
                var finished = false
                for choice in choices {
                    if let piece = choice["delta"]?["content"]?.stringValue ?? choice["text"]?.stringValue, !piece.isEmpty {
                        text += piece
                        chunks += 1
                    }
                    if let reason = choice["finish_reason"], reason != .null { finished = true }
                }
                if let found = chunk["usage"], found != .null { usage = found }
                if choices.isEmpty {
                    // The usage chunk: the client's if it asked for it, else only read.
                    if clientWantsUsage {
                        if let previous = held { try await writer.write(Self.sse(previous)) }
                        held = chunk
                    }
                    continue
                }
                if let previous = held {
                    try await writer.write(Self.sse(previous))
                    held = nil
                }
                if finished { held = chunk } else { try await writer.write(Self.sse(chunk)) }
            }
        }
        guard done else {
            // The engine broke off: the gateway sees a stream without [DONE] and records it failed.
            logger.warning("\(interaction.recordID): the engine's stream ended without [DONE]")
            return
        }
        pump.done()
        let statement = try sign(interaction, text: text, usage: usage, chunks: chunks, started: started)
        var last = held ?? ["id": .string(interaction.recordID), "object": "chat.completion.chunk", "choices": []]
        last = last.adding(statement.key, statement.value)
        try await writer.write(Self.sse(last))
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        try await writer.finish(nil)
    }

    /// The signed statement for an answer: token counts from the engine's usage (else the chunks
    /// that carried text, and no prompt tokens).
    private func sign(_ interaction: Interaction, text: String, usage: JSON?, chunks: Int, started: Int64) throws(APIError) -> (key: String, value: JSON) {
        let prompt = usage?["prompt_tokens"].flatMap(Self.int) ?? 0
        let completion = usage?["completion_tokens"].flatMap(Self.int) ?? chunks
        let handle = AnswerHandle(entry: nil, startedMilliseconds: started)
        return try signer.sign(handle, interaction, response: text, promptTokens: prompt, completionTokens: completion)
    }

    private static func int(_ value: JSON) -> Int? {
        switch value {
        case .int(let i): i
        case .double(let d): Int(exactly: d)
        default: nil
        }
    }

    private static func sse(_ value: JSON) -> ByteBuffer {
        ByteBuffer(string: "data: " + value.serialized() + "\n\n")
    }
}
