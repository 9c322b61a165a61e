import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The browser chat at `/`: static HTML, CSS and JavaScript shipped as this target's resources
/// (`Sources/Server/WebChat`), read once at start-up and served from memory.
///
/// The page talks to the same `/v1/*` API as any client, with the API key the user enters kept in
/// the browser. Every response carries a strict Content-Security-Policy (scripts, styles and
/// connections from this origin only, no inline script, no plugins, no framing): model output is
/// untrusted, and the page renders it as text, but the policy is the second wall.
struct WebChatController: Sendable {
    struct File: Sendable {
        var bytes: ByteBuffer
        var contentType: String
        var etag: String
    }

    /// The files by name (`index.html`, `app.js`, …); empty when the resources were not found.
    let files: [String: File]
    /// Where the files were read from, or why they weren't.
    let origin: String

    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
            + "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("Cross-Origin-Opener-Policy")!: "same-origin",
    ]

    static let contentTypes = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml", "json": "application/json", "png": "image/png", "ico": "image/x-icon",
    ]

    /// With `$VERITY_WEB_ROOT` set, the directory the files are read from on every request, so the
    /// page can be worked on without rebuilding or restarting.
    let liveRoot: URL?

    /// Reads the files from `directory`, or from the first place the resources are found:
    /// `$VERITY_WEB_ROOT` (read live), then the resource bundle next to the executable (where
    /// SwiftPM puts it, and where an installed `verity` needs it).
    init(directory: URL? = nil) {
        let environment = ProcessInfo.processInfo.environment["VERITY_WEB_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
        liveRoot = directory == nil ? environment.map { URL(fileURLWithPath: $0, isDirectory: true) } : nil
        guard let root = directory ?? liveRoot ?? Self.locate() else {
            files = [:]
            origin = "the resource bundle Verity_Server.resources (WebChat/) was not found next to the verity executable"
            return
        }
        files = Self.load(root)
        origin = files["index.html"] == nil ? "\(root.path) holds no index.html" : root.path + (liveRoot == nil ? "" : " (VERITY_WEB_ROOT, read live)")
    }

    private static func load(_ root: URL) -> [String: File] {
        var files: [String: File] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for name in names {
            let ext = (name as NSString).pathExtension.lowercased()
            guard let type = contentTypes[ext], let data = FileManager.default.contents(atPath: root.appendingPathComponent(name).path)
            else { continue }
            let digest = SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
            files[name] = File(bytes: ByteBuffer(bytes: data), contentType: type, etag: "\"\(digest)\"")
        }
        return files
    }

    private static func locate() -> URL? {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directories = [executable.deletingLastPathComponent()]
        if let main = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() { directories.append(main) }
        for directory in directories {
            for bundleName in ["Verity_Server.resources", "Verity_Server.bundle"] {
                let path = directory.appendingPathComponent(bundleName).path
                guard FileManager.default.fileExists(atPath: path) else { continue }
                if let url = Bundle(path: path)?.url(forResource: "WebChat", withExtension: nil) { return url }
                let flat = URL(fileURLWithPath: path).appendingPathComponent("WebChat")
                if FileManager.default.fileExists(atPath: flat.appendingPathComponent("index.html").path) { return flat }
            }
        }
        return nil
    }

    var isAvailable: Bool { files["index.html"] != nil }

    /// `GET /` (the page) and `GET /assets/{name}` (its scripts, styles and icons); public.
    func addRoutes(to router: Router<VerityRequestContext>) {
        router.get("/") { request, _ in try response(for: "index.html", request) }
        router.get("/index.html") { request, _ in try response(for: "index.html", request) }
        router.get("/assets/{name}") { request, context in
            try response(for: context.parameters.get("name") ?? "", request)
        }
    }

    private func response(for name: String, _ request: Request) throws(APIError) -> Response {
        guard isAvailable else {
            throw APIError(status: .serviceUnavailable, message: "The web chat is not available: \(origin). The API under /v1/ is.",
                           type: "server_error", param: nil, code: "web_chat_unavailable")
        }
        let files = liveRoot.map(Self.load) ?? files
        guard let file = files[name] else {
            throw APIError.notFound(request.uri.path)
        }
        var headers = Self.securityHeaders
        headers[.eTag] = file.etag
        // Revalidate every time (the files change with the binary); a match costs one 304.
        headers[.cacheControl] = "no-cache"
        if request.headers[.ifNoneMatch] == file.etag {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = file.contentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: file.bytes))
    }
}

extension WebChatController {
    /// The web chat's files, with a log line saying where they come from (or that they are missing).
    static func announced(logger: Logger) -> WebChatController {
        let web = WebChatController()
        if web.isAvailable {
            logger.info("web chat: \(web.files.count) files from \(web.origin)")
        } else {
            logger.warning("web chat unavailable: \(web.origin); the API under /v1/ is served")
        }
        return web
    }
}
