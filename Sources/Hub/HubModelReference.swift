import Foundation

/// A model on the hub: `org/name`, an optional quant tag or file, and a revision.
///
/// Spellings accepted: `org/name`, `org/name:Q4_K_M`, `org/name:path/in/repo.gguf`, each optionally
/// prefixed by `hf:`, `hf.co/`, `huggingface.co/` or `https://huggingface.co/` (as Ollama and
/// llama-server take them).
public struct HubModelReference: Sendable, Equatable, CustomStringConvertible {
    /// `org/name`, validated by the hub's rules.
    public var repo: String
    /// A quant tag (`Q4_K_M`, matched case-insensitively) or a file path inside the repo.
    public var tag: String?
    /// A branch, tag or 40-hex commit; `main` by default.
    public var revision: String

    /// The longest repo id part the hub accepts.
    public static let maxPartLength = 96

    /// Parses `spec`.
    /// - Parameters:
    ///   - spec: `org/name[:QUANT|:FILE]`, optionally with an `hf:` / `hf.co/` / `huggingface.co/` prefix.
    ///   - revision: a branch, tag or commit; nil or empty means `main`.
    /// - Throws: ``HubError/Code-swift.struct/invalidReference`` naming what is wrong.
    public init(parsing spec: String, revision: String? = nil) throws(HubError) {
        var rest = spec.trimmingCharacters(in: .whitespaces)
        for prefix in ["hf://", "hf:"] where rest.lowercased().hasPrefix(prefix) {
            rest.removeFirst(prefix.count)
        }
        for prefix in ["https://", "http://"] where rest.lowercased().hasPrefix(prefix) {
            rest.removeFirst(prefix.count)
        }
        for host in ["hf.co/", "huggingface.co/", "www.huggingface.co/"] where rest.lowercased().hasPrefix(host) {
            rest.removeFirst(host.count)
        }
        var tag: String?
        if let colon = rest.firstIndex(of: ":") {
            tag = String(rest[rest.index(after: colon)...])
            rest = String(rest[..<colon])
            if tag!.isEmpty { throw HubError(.invalidReference, "\"\(spec)\": empty tag after ':' (expected org/name:QUANT or org/name:FILE.gguf)") }
        }
        try Self.validateRepo(rest, spec: spec)
        if let tag { try Self.validateTag(tag, spec: spec) }
        let rev = (revision?.isEmpty ?? true) ? "main" : revision!
        try Self.validateRevision(rev)
        self.repo = rest
        self.tag = tag
        self.revision = rev
    }

    public var description: String {
        repo + (tag.map { ":" + $0 } ?? "") + (revision == "main" ? "" : "@" + revision)
    }

    /// The hub's repo id rules (huggingface_hub `validate_repo_id`): `org/name`, each part of
    /// `[A-Za-z0-9._-]`, at most 96 characters, not starting or ending with `-` or `.`, and no
    /// `--` or `..` (the cache folder name joins the parts with `--`).
    static func validateRepo(_ repo: String, spec: String) throws(HubError) {
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw HubError(.invalidReference, "\"\(spec)\" is not a hub model id: expected org/name (one '/')")
        }
        for part in parts {
            guard !part.isEmpty else { throw HubError(.invalidReference, "\"\(spec)\": the organization and the name must not be empty") }
            guard part.count <= maxPartLength else {
                throw HubError(.invalidReference, "\"\(spec)\": '\(part)' is longer than \(maxPartLength) characters")
            }
            guard part.unicodeScalars.allSatisfy(Self.isRepoCharacter) else {
                throw HubError(.invalidReference, "\"\(spec)\": '\(part)' may hold only letters, digits, '-', '_' and '.'")
            }
            guard !part.contains("--"), !part.contains("..") else {
                throw HubError(.invalidReference, "\"\(spec)\": '\(part)' must not contain '--' or '..'")
            }
            guard let first = part.first, let last = part.last, !"-.".contains(first), !"-.".contains(last) else {
                throw HubError(.invalidReference, "\"\(spec)\": '\(part)' must not start or end with '-' or '.'")
            }
        }
    }

    static func isRepoCharacter(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "_" || c == ".")
    }

    /// A tag is a quant name (`[A-Za-z0-9._-]`) or a safe relative path inside the repo.
    static func validateTag(_ tag: String, spec: String) throws(HubError) {
        if tag.unicodeScalars.allSatisfy(isRepoCharacter), tag != ".", tag != ".." { return }
        guard HubPath.isSafeRelative(tag) else {
            throw HubError(.invalidReference, "\"\(spec)\": '\(tag)' is neither a quant tag nor a relative path inside the repo")
        }
    }

    /// A branch or tag name (slashes allowed, as in `refs/pr/1`) or a commit: no spaces or control
    /// characters, no `..` components, no leading or trailing `/`.
    static func validateRevision(_ revision: String) throws(HubError) {
        guard revision.count <= 256,
              revision.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F && !"\\:?*[~^\"<>|".unicodeScalars.contains($0) }),
              HubPath.isSafeRelative(revision)
        else { throw HubError(.invalidReference, "revision \"\(revision)\" is not a valid branch, tag or commit name") }
    }

    /// Whether `revision` is a full commit hash (40 lowercase hex digits), which needs no ref.
    public static func isCommitHash(_ revision: String) -> Bool {
        revision.utf8.count == 40 && revision.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}

/// Relative paths that come from users or from the hub (file names, index shard names).
enum HubPath {
    /// Non-empty, relative, no empty, `.` or `..` components, no backslash or control characters.
    static func isSafeRelative(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.hasSuffix("/"), path.utf8.count <= 1024 else { return false }
        guard !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\\" }) else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }
}
