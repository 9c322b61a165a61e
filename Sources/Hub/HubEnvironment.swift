import Foundation

/// Where the hub is, who the caller is, and where the cache lives: the environment variables
/// huggingface_hub reads (`constants.py`), with the same defaults, so Python and Verity share a cache.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `HF_ENDPOINT` | the hub's base URL | `https://huggingface.co` |
/// | `HF_TOKEN` (or legacy `HUGGING_FACE_HUB_TOKEN`) | bearer token | the token file |
/// | `HF_TOKEN_PATH` | the token file (`huggingface-cli login` writes it) | `$HF_HOME/token` |
/// | `HF_HOME` | huggingface's home | `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` |
/// | `HF_HUB_CACHE` (or legacy `HUGGINGFACE_HUB_CACHE`) | the cache | `$HF_HOME/hub` |
/// | `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) | no network: `1`, `ON`, `YES`, `TRUE` | off |
public struct HubEnvironment: Sendable, Equatable {
    /// The hub's base URL, without a trailing `/`.
    public var endpoint: String
    /// The bearer token, if any.
    public var token: String?
    /// Where the token came from (`HF_TOKEN` or a file path), for messages.
    public var tokenSource: String?
    /// The cache root (`…/hub`), holding `models--ORG--NAME` folders.
    public var cacheDirectory: String
    /// No network: only the cache is used.
    public var offline: Bool

    public init(endpoint: String = "https://huggingface.co", token: String? = nil, cacheDirectory: String, offline: Bool = false) {
        self.endpoint = Self.trimmedEndpoint(endpoint)
        self.token = token
        self.tokenSource = token == nil ? nil : "the token given"
        self.cacheDirectory = cacheDirectory
        self.offline = offline
    }

    /// The environment as huggingface_hub would read it from `env`.
    public static func current(_ env: [String: String] = ProcessInfo.processInfo.environment) -> HubEnvironment {
        func value(_ name: String) -> String? {
            guard let v = env[name], !v.isEmpty else { return nil }
            return v
        }
        let home = value("HOME") ?? NSHomeDirectory()
        func expand(_ path: String) -> String {
            if path == "~" { return home }
            if path.hasPrefix("~/") { return home + path.dropFirst() }
            return path
        }
        let hfHome = expand(value("HF_HOME") ?? ((value("XDG_CACHE_HOME").map(expand) ?? home + "/.cache") + "/huggingface"))
        let cache = expand(value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") ?? hfHome + "/hub")
        var environment = HubEnvironment(endpoint: value("HF_ENDPOINT") ?? "https://huggingface.co", cacheDirectory: cache,
                                         offline: isTrue(env["HF_HUB_OFFLINE"]) || isTrue(env["TRANSFORMERS_OFFLINE"]))
        if let token = (value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN"))?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            environment.token = token
            environment.tokenSource = env["HF_TOKEN"] != nil ? "HF_TOKEN" : "HUGGING_FACE_HUB_TOKEN"
        } else {
            let path = expand(value("HF_TOKEN_PATH") ?? hfHome + "/token")
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !token.isEmpty {
                    environment.token = token
                    environment.tokenSource = path
                }
            }
        }
        return environment
    }

    /// huggingface_hub's `_is_true`: `1`, `ON`, `YES`, `TRUE` in any case.
    static func isTrue(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(value.trimmingCharacters(in: .whitespaces).uppercased())
    }

    static func trimmedEndpoint(_ endpoint: String) -> String {
        var e = endpoint.trimmingCharacters(in: .whitespaces)
        while e.hasSuffix("/") { e.removeLast() }
        return e
    }
}
