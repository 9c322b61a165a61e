import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock(2)` on a lock file, the lock Python's `filelock` takes (huggingface_hub's
/// `WeakFileLock` on `.locks/models--ORG--NAME/<etag>.lock`), so Python and Verity never write the
/// same blob at once. The lock file stays in place on release, as `filelock` leaves it.
final class FileLock {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { release() }

    /// Waits for the lock (polling, so a waiting task can be cancelled); `waiting` is called once
    /// if it is not free within two seconds.
    static func acquire(_ path: String, waiting: () -> Void) async throws(HubError) -> FileLock {
        try HubFiles.createDirectories((path as NSString).deletingLastPathComponent)
        let start = DispatchTime.now().uptimeNanoseconds
        var warned = false
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o664)
            guard fd >= 0 else { throw HubError(.io, "cannot open the lock file \(path): \(String(cString: strerror(errno)))") }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                // A peer may have removed the file between our open and flock: the lock must be on the
                // inode the path names now.
                var held = stat()
                var named = stat()
                if fstat(fd, &held) == 0, stat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                    return FileLock(fd: fd)
                }
                close(fd)
                continue
            }
            let error = errno
            close(fd)
            guard error == EWOULDBLOCK || error == EAGAIN || error == EINTR else {
                throw HubError(.io, "cannot lock \(path): \(String(cString: strerror(error)))")
            }
            if !warned && DispatchTime.now().uptimeNanoseconds - start > 2_000_000_000 {
                warned = true
                waiting()
            }
            do { try await Task.sleep(for: .milliseconds(100)) } catch { throw HubError(.network, "cancelled while waiting for \(path)", cause: error) }
        }
    }

    func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }
}
