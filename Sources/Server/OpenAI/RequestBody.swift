import Foundation
import Hummingbird
import NIOCore

/// Reading and decoding request bodies: at most a limit of bytes (413 beyond), and every failure
/// to decode as the 400 OpenAI clients expect, with the offending field's path in `param`.
enum RequestBody {
    /// The body's bytes, at most `limit`.
    static func read(_ request: Request, limit: Int) async throws(APIError) -> Data {
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Data(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(limit: limit)
        } catch {
            throw APIError.invalidJSON("the body could not be read: \(error)")
        }
    }

    /// A body already read, to hand on to the next reader (a middleware that had to read it).
    static func replay(_ data: Data) -> Hummingbird.RequestBody {
        Hummingbird.RequestBody(buffer: ByteBuffer(bytes: data))
    }

    /// The body decoded as `T`.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws(APIError) -> T {
        try decode(type, from: try await read(request, limit: limit))
    }

    /// Decodes a body, turning every failure into the 400 OpenAI clients expect, with the
    /// offending field's path in `param`.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(APIError) -> T {
        try JSONPrecheck.check(data)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            switch error {
            case .keyNotFound(let key, let context):
                throw APIError.missing(path(context.codingPath + [key]))
            case .typeMismatch(let expected, let context), .valueNotFound(let expected, let context):
                if context.codingPath.isEmpty {
                    throw data.isEmpty ? APIError.invalidJSON("the body is empty") : APIError.invalidRequest("The request body must be a JSON object.", code: "invalid_type")
                }
                throw APIError.invalidType(path(context.codingPath), "expected \(describe(expected)). \(context.debugDescription)")
            case .dataCorrupted(let context):
                if context.codingPath.isEmpty {
                    let detail = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                    throw APIError.invalidJSON(detail ?? context.debugDescription)
                }
                throw APIError.invalidType(path(context.codingPath), context.debugDescription)
            @unknown default:
                throw APIError.invalidJSON("\(error)")
            }
        } catch {
            throw APIError.invalidJSON("\(error)")
        }
    }

    /// `messages[0].content` from a coding path.
    private static func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let i = key.intValue { out += "[\(i)]" } else { out += out.isEmpty ? key.stringValue : "." + key.stringValue }
        }
        return out
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int32.Type, is Int64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a value of another type"
        }
    }
}
