import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// POSIX file-system helpers whose errors name the path and the system's reason (strerror), never
/// Foundation's "The operation could not be completed".
enum HubFiles {
    /// `mkdir -p path` (mode 0755 less the umask).
    static func createDirectories(_ path: String) throws(HubError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path && parent != "/" { try createDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw HubError(.io, "cannot create the folder \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes `text` to a temporary file next to `path`, then renames it over `path`.
    static func writeAtomically(_ text: String, to path: String) throws(HubError) {
        try createDirectories((path as NSString).deletingLastPathComponent)
        let temporary = path + ".\(UUID().uuidString.prefix(8)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HubError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let failure = written == bytes.count ? nil : String(cString: strerror(errno))
        close(fd)
        if let failure {
            unlink(temporary)
            throw HubError(.io, "cannot write \(temporary): \(failure)")
        }
        guard rename(temporary, path) == 0 else {
            let failure = String(cString: strerror(errno))
            unlink(temporary)
            throw HubError(.io, "cannot write \(path): \(failure)")
        }
    }
}
