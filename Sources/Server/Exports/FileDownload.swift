import Foundation
import HTTPTypes
import Hummingbird

/// A file an export wrote, streamed from disk (a multi-gigabyte file is never held in memory),
/// with byte ranges for resuming: `Accept-Ranges: bytes`; one range per request (`bytes=a-b`,
/// `bytes=a-`, `bytes=-n`) answered 206 with `Content-Range`; a range past the end 416; several
/// ranges, or a malformed header, the whole file (RFC 9110 §14.2 lets a server ignore them);
/// `If-Range` with another validator, the whole file. The file's SHA-256 goes in
/// `X-Content-SHA256` (hex), `Digest` (RFC 3230) and `Repr-Digest` (RFC 9530), and is its ETag.
enum FileDownload {
    /// What a `Range` header asks of a file of `size` bytes.
    enum Selection: Equatable {
        case whole
        case part(ClosedRange<Int>)
        case unsatisfiable
    }

    /// Reads a `Range` header against a file of `size` bytes.
    static func selection(_ header: String?, size: Int) -> Selection {
        guard let header else { return .whole }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = String(spec[..<dash]).trimmingCharacters(in: .whitespaces)
        let last = String(spec[spec.index(after: dash)...]).trimmingCharacters(in: .whitespaces)
        switch (number(first), number(last)) {
        case (nil, let n?) where first.isEmpty:
            // The last n bytes.
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .part(max(0, size - n)...(size - 1))
        case (let a?, nil) where last.isEmpty:
            guard a < size else { return .unsatisfiable }
            return .part(a...(size - 1))
        case (let a?, let b?):
            guard a <= b else { return .whole }  // invalid: ignored
            guard a < size else { return .unsatisfiable }
            return .part(a...min(b, size - 1))
        default:
            return .whole
        }
    }

    /// Digits as a number (a number too large for Int is Int.max: past any file's end); nil for
    /// anything but digits.
    private static func number(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text) ?? Int.max
    }

    /// The response for `path` (whose digest is `sha256`, `sha256:<hex>`, and size `bytes`),
    /// downloaded as `name`. 410 when the file is gone or no longer its exported size.
    static func response(path: String, name: String, sha256: String, bytes: Int, request: Request,
                         context: some RequestContext) async throws -> Response {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        guard let size, size == bytes else {
            throw APIError(status: .gone, message: size == nil ? "The file \(name) is no longer on the server." : "The file \(name) changed on the server since it was exported.",
                           type: "invalid_request_error", param: nil, code: "export_file_gone")
        }
        let hex = String(sha256.dropFirst("sha256:".count))
        let etag = "\"\(hex)\""
        var headers: HTTPFields = [
            .contentType: contentType(name),
            .contentDisposition: disposition(name),
            .acceptRanges: "bytes",
            .eTag: etag,
            .cacheControl: "private, no-cache",
            HTTPField.Name("X-Content-SHA256")!: hex,
        ]
        if let digest = Data(hexadecimal: hex)?.base64EncodedString() {
            headers[HTTPField.Name("Digest")!] = "sha-256=\(digest)"
            headers[HTTPField.Name("Repr-Digest")!] = "sha-256=:\(digest):"
        }
        var selection = selection(request.headers[.range], size: size)
        if let ifRange = request.headers[.ifRange], ifRange != etag { selection = .whole }
        let io = FileIO()
        switch selection {
        case .whole:
            return Response(status: .ok, headers: headers, body: try await io.loadFile(path: path, context: context))
        case .part(let range):
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
            return Response(status: .partialContent, headers: headers, body: try await io.loadFile(path: path, range: range, context: context))
        case .unsatisfiable:
            let fields: HTTPFields = [.contentRange: "bytes */\(size)", .acceptRanges: "bytes"]
            let error = APIError(status: .rangeNotSatisfiable, message: "The range \(request.headers[.range] ?? "") is outside \(name) (\(size) bytes).",
                                 type: "invalid_request_error", param: nil, code: "range_not_satisfiable", headers: fields)
            return error.response()
        }
    }

    static func contentType(_ name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "json": "application/json"
        case "md": "text/markdown; charset=utf-8"
        case "txt", "jinja": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }

    /// `attachment; filename="…"` (ASCII, quotes and backslashes replaced) and RFC 8187's
    /// `filename*` with the name as it is.
    static func disposition(_ name: String) -> String {
        let ascii = String(String.UnicodeScalarView(name.unicodeScalars.map { scalar -> Unicode.Scalar in
            scalar.isASCII && scalar.value >= 0x20 && scalar != "\"" && scalar != "\\" && scalar.value != 0x7F ? scalar : "_"
        }))
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ascii
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }
}

private extension Data {
    init?(hexadecimal text: String) {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
