#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns the bytes a `GGUFFile` reads: either a read-only, private memory mapping of a file
/// (unmapped in `deinit`) or a heap copy of an in-memory buffer (freed in `deinit`).
///
/// The bytes never move and are never written while the owner lives, so raw pointers into
/// ``buffer`` stay valid for the owner's lifetime.
public final class MappedFile: @unchecked Sendable {
    private enum Storage {
        case mapped(UnsafeMutableRawPointer, Int)
        case heap(UnsafeMutableRawBufferPointer)
        case empty
    }

    private let storage: Storage

    /// The file's bytes.
    public let buffer: UnsafeRawBufferPointer

    /// The path the bytes were mapped from, or `nil` for an in-memory copy.
    public let path: String?

    /// Number of bytes.
    public var count: Int { buffer.count }

    /// Maps `path` read-only (`PROT_READ`, `MAP_PRIVATE`). Nothing is read or copied; pages are
    /// faulted in on first access. An empty file gives an empty buffer.
    public init(path: String) throws(GGUFError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw GGUFError(.io, "cannot open '\(path)': \(MappedFile.errnoText())")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw GGUFError(.io, "cannot stat '\(path)': \(MappedFile.errnoText())")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw GGUFError(.io, "'\(path)' is not a regular file")
        }
        guard let size = Int(exactly: st.st_size), size >= 0 else {
            throw GGUFError(.io, "'\(path)' has an unrepresentable size \(st.st_size)")
        }
        self.path = path
        if size == 0 {
            storage = .empty
            buffer = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let raw = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let raw, Int(bitPattern: raw) != -1 else {
            throw GGUFError(.io, "cannot mmap '\(path)' (\(size) bytes): \(MappedFile.errnoText())")
        }
        storage = .mapped(raw, size)
        buffer = UnsafeRawBufferPointer(start: raw, count: size)
    }

    /// Copies `bytes` into a page-aligned heap buffer owned by this object.
    public init(copying bytes: [UInt8]) {
        path = nil
        let heap = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4096)
        bytes.withUnsafeBytes { src in
            if let base = src.baseAddress, let dst = heap.baseAddress, src.count > 0 {
                dst.copyMemory(from: base, byteCount: src.count)
            }
        }
        storage = .heap(heap)
        buffer = UnsafeRawBufferPointer(heap)
    }

    /// A page-aligned heap buffer of `byteCount` bytes, filled once by `fill` (converted weights:
    /// a permuted, shifted or quantized copy of a tensor). Read-only afterwards.
    public init(allocating byteCount: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        path = nil
        let heap = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 4096)
        let used = UnsafeMutableRawBufferPointer(rebasing: heap[0 ..< byteCount])
        fill(used)
        storage = .heap(heap)
        buffer = UnsafeRawBufferPointer(used)
    }

    deinit {
        switch storage {
        case .mapped(let base, let size):
            munmap(base, size)
        case .heap(let heap):
            heap.deallocate()
        case .empty:
            break
        }
    }

    static func errnoText() -> String {
        let code = errno
        if let text = strerror(code) {
            return "\(String(cString: text)) (errno \(code))"
        }
        return "errno \(code)"
    }
}
