import Crypto
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `blobs/<etag>.incomplete` file being written: appends with POSIX `write`, maps ENOSPC to
/// ``HubError/Code-swift.struct/diskFull``, and on ``commit(to:)`` syncs and renames it into place.
final class BlobFile {
    let path: String
    private var fd: Int32
    /// Bytes in the file (where the next write goes).
    private(set) var size: Int64

    /// Opens (creating) `path`, keeping what an interrupted download left.
    init(path: String) throws(HubError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HubError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else { throw HubError(.io, "cannot seek in \(path): \(String(cString: strerror(errno)))") }
        size = Int64(end)
    }

    deinit { close() }

    func close() {
        guard fd >= 0 else { return }
        _ = posixClose(fd)
        fd = -1
    }

    /// Empties the file (a server that ignored Range, or a prefix longer than the file).
    func truncate() throws(HubError) {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw HubError(.io, "cannot truncate \(path): \(String(cString: strerror(errno)))")
        }
        size = 0
    }

    /// Appends `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws(HubError) {
        var offset = 0
        while offset < bytes.count {
            let n = posixWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                let error = errno
                if error == EINTR { continue }
                if error == ENOSPC || error == EDQUOT {
                    let free = Self.freeBytes(at: (path as NSString).deletingLastPathComponent)
                    throw HubError(.diskFull, "disk full while writing \(path) (\(HubProgress.size(size)) written; "
                        + "\(free.map { HubProgress.size($0) } ?? "unknown") free): free some space and run again to resume")
                }
                throw HubError(.io, "cannot write \(path): \(String(cString: strerror(error)))")
            }
            offset += n
            size += Int64(n)
        }
    }

    /// The SHA-256 of the first `size` bytes (the prefix an interrupted download left), read back.
    func hashExisting(into hasher: inout SHA256) throws(HubError) {
        try readAll { hasher.update(bufferPointer: $0) }
    }

    /// Calls `body` with the file's bytes in chunks, from the start.
    func readAll(_ body: (UnsafeRawBufferPointer) -> Void) throws(HubError) {
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var offset: Int64 = 0
        while offset < size {
            let n = pread(fd, buffer.baseAddress!, min(chunk, Int(size - offset)), off_t(offset))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HubError(.io, "cannot read \(path): \(n < 0 ? String(cString: strerror(errno)) : "unexpected end")") }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += Int64(n)
        }
    }

    /// fsync, close and rename to `destination` (atomic within `blobs/`), then sync the folder.
    func commit(to destination: String) throws(HubError) {
        guard fsync(fd) == 0 else { throw HubError(.io, "cannot sync \(path): \(String(cString: strerror(errno)))") }
        close()
        guard rename(path, destination) == 0 else { throw HubError(.io, "cannot rename \(path) to \(destination): \(String(cString: strerror(errno)))") }
        let directory = open((destination as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            _ = posixClose(directory)
        }
    }

    /// Removes the file (a download that failed verification).
    func discard() {
        close()
        unlink(path)
    }

    /// Free bytes for an unprivileged user on the file system holding `path` (statvfs).
    static func freeBytes(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}

private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
