import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// huggingface_hub's cache layout (`file_download.py`), byte for byte, so that a model either side
/// downloaded is found by the other:
///
/// ```
/// <root>/models--ORG--NAME/
///     blobs/<etag>                    the file's content; <etag> is the sha256 for LFS files, the git blob id otherwise
///     blobs/<etag>.incomplete         a download in progress (resumed with Range)
///     snapshots/<commit>/<path>       a relative symlink to ../../blobs/<etag> (one more ../ per folder in <path>)
///     refs/<revision>                 the commit a branch or tag resolved to (no newline)
/// <root>/.locks/models--ORG--NAME/<etag>.lock    flock(2) held while a blob is written
/// ```
public struct HubCache: Sendable, Equatable {
    /// The cache root (`HF_HUB_CACHE`).
    public let root: String

    public init(root: String) { self.root = root }

    /// `models--ORG--NAME` (huggingface_hub `repo_folder_name`).
    public static func repoFolderName(_ repo: String) -> String {
        (["models"] + repo.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    public func repoDirectory(_ repo: String) -> String { root + "/" + Self.repoFolderName(repo) }
    public func blobsDirectory(_ repo: String) -> String { repoDirectory(repo) + "/blobs" }
    public func blobPath(_ repo: String, etag: String) -> String { blobsDirectory(repo) + "/" + etag }
    public func snapshotDirectory(_ repo: String, commit: String) -> String { repoDirectory(repo) + "/snapshots/" + commit }
    public func snapshotPath(_ repo: String, commit: String, file: String) -> String { snapshotDirectory(repo, commit: commit) + "/" + file }
    public func refPath(_ repo: String, revision: String) -> String { repoDirectory(repo) + "/refs/" + revision }
    public func lockPath(_ repo: String, etag: String) -> String { root + "/.locks/" + Self.repoFolderName(repo) + "/" + etag + ".lock" }

    /// The symlink target from `snapshots/<commit>/<file>` to `blobs/<etag>`: `../../blobs/<etag>`, one
    /// more `../` per folder in `file` (what `os.path.relpath` gives huggingface_hub).
    public static func blobLinkTarget(file: String, etag: String) -> String {
        let depth = file.split(separator: "/").count - 1
        return String(repeating: "../", count: 2 + depth) + "blobs/" + etag
    }

    /// The commit `revision` stands for in the cache: itself when it is a commit hash with a snapshot
    /// folder, else the content of `refs/<revision>`.
    public func commit(_ repo: String, revision: String) -> String? {
        if HubModelReference.isCommitHash(revision) {
            return FileManager.default.fileExists(atPath: snapshotDirectory(repo, commit: revision)) ? revision : nil
        }
        guard let text = try? String(contentsOfFile: refPath(repo, revision: revision), encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return HubModelReference.isCommitHash(commit) ? commit : nil
    }

    /// Records that `revision` resolved to `commit` (not for a revision that is the commit itself):
    /// written to a temporary file and renamed, so a reader never sees a partial ref.
    public func writeRef(_ repo: String, revision: String, commit: String) throws(HubError) {
        guard revision != commit else { return }
        let path = refPath(repo, revision: revision)
        if (try? String(contentsOfFile: path, encoding: .utf8)) == commit { return }
        try HubFiles.writeAtomically(commit, to: path)
    }

    /// Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative symlink, replacing whatever
    /// was there (a broken link from an older blob).
    public func link(_ repo: String, commit: String, file: String, etag: String) throws(HubError) {
        let path = snapshotPath(repo, commit: commit, file: file)
        let target = Self.blobLinkTarget(file: file, etag: etag)
        try HubFiles.createDirectories((path as NSString).deletingLastPathComponent)
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: path), existing == target { return }
        let temporary = path + ".\(UUID().uuidString.prefix(8)).link"
        guard symlink(target, temporary) == 0 else { throw HubError(.io, "cannot create the symlink \(temporary): \(String(cString: strerror(errno)))") }
        guard rename(temporary, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw HubError(.io, "cannot create the symlink \(path): \(message)")
        }
    }

    /// Every regular file (following symlinks; broken links are left out) under the snapshot folder,
    /// as paths relative to it, sorted.
    public func snapshotFiles(_ repo: String, commit: String) -> [String] {
        let directory = snapshotDirectory(repo, commit: commit)
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(relative)
            }
        }
        return files.sorted()
    }

    /// Whether `path` names an existing regular file (following symlinks).
    static func fileExists(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}
