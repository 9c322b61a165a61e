#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension GGUFWriter {
    /// A GGUF file written tensor by tensor, so that a model of any size goes through bounded
    /// memory: the header (the writer's metadata and every tensor's info, whose sizes are known
    /// up front) is written at once, then each tensor's data in the declared order with
    /// ``append(_:)``, then ``finish()``. The bytes are exactly those ``serialize()`` writes.
    ///
    /// `observer` sees every byte written, in order (to hash the file as it is written).
    public final class Stream {
        public let path: String
        public let tensors: [GGUFTensorInfo]
        private let alignment: Int
        private var fd: Int32
        private var next = 0
        private let observer: ((UnsafeRawBufferPointer) -> Void)?
        /// Bytes written so far.
        public private(set) var bytesWritten = 0

        /// Creates (or truncates) `path` and writes the header declaring `tensors` (name,
        /// dimensions in ggml order, type; their offsets are assigned here).
        public init(writer: GGUFWriter, tensors declared: [(name: String, dimensions: [Int], type: GGMLType)], path: String,
                    observer: ((UnsafeRawBufferPointer) -> Void)? = nil) throws(GGUFError) {
            let alignment = writer.alignment
            guard alignment > 0, alignment & (alignment - 1) == 0, let alignment32 = UInt32(exactly: alignment) else {
                throw GGUFError(.invalidAlignment, "alignment \(alignment) is not a non-zero power of two that fits in UInt32")
            }
            var infos: [GGUFTensorInfo] = []
            var names: Set<String> = []
            var offset = 0
            for t in declared {
                guard !t.name.isEmpty else { throw GGUFError(.invalidString, "tensor name is empty") }
                guard names.insert(t.name).inserted else { throw GGUFError(.duplicateTensor, "tensor '\(t.name)' is declared twice") }
                let info = try GGUFTensorInfo(name: t.name, dimensions: t.dimensions, type: t.type, offset: offset)
                infos.append(info)
                let (end, o) = offset.addingReportingOverflow(GGUFWriter.padded(info.byteCount, alignment))
                guard !o else { throw GGUFError(.overflow, "data section size overflows") }
                offset = end
            }
            let kv = try writer.resolvedEntries(alignment32)
            let header = try GGUFWriter.header(version: writer.version, kv: kv, alignment: alignment,
                                               tensors: infos.map { ($0.name, $0.dimensions, $0.type, $0.offset) })

            self.path = path
            self.tensors = infos
            self.alignment = alignment
            self.observer = observer
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw GGUFError(.io, "cannot create '\(path)': \(MappedFile.errnoText())") }
            do throws(GGUFError) {
                try writeBytes(header)
            } catch {
                abandon()
                throw error
            }
        }

        deinit { if fd >= 0 { close(fd) } }

        /// The next declared tensor, if any is still to be written.
        public var nextTensor: GGUFTensorInfo? { next < tensors.count ? tensors[next] : nil }

        /// Writes the next declared tensor's data, which must be exactly its byte count.
        public func append(_ data: UnsafeRawBufferPointer) throws(GGUFError) {
            guard let info = nextTensor else { throw GGUFError(.invalidTensor, "\(path): all \(tensors.count) declared tensors were already written") }
            guard data.count == info.byteCount else {
                throw GGUFError(.invalidTensor, "tensor '\(info.name)' \(info.type.name) \(info.dimensions) needs \(info.byteCount) bytes, got \(data.count)")
            }
            try write(data)
            let pad = GGUFWriter.padded(data.count, alignment) - data.count
            if pad > 0 {
                try writeBytes([UInt8](repeating: 0, count: pad))
            }
            next += 1
        }

        /// Checks that every declared tensor was written, flushes the file to disk and closes it.
        public func finish() throws(GGUFError) {
            guard next == tensors.count else {
                throw GGUFError(.invalidTensor, "\(path): \(tensors.count - next) of \(tensors.count) declared tensors were not written")
            }
            guard fd >= 0 else { throw GGUFError(.io, "\(path) is already closed") }
            if fsync(fd) != 0 {
                let text = MappedFile.errnoText()
                abandon()
                throw GGUFError(.io, "cannot flush '\(path)': \(text)")
            }
            let rc = close(fd)
            fd = -1
            guard rc == 0 else { throw GGUFError(.io, "cannot close '\(path)': \(MappedFile.errnoText())") }
        }

        /// Closes and removes the file: nothing half-written is left behind.
        public func abandon() {
            if fd >= 0 { close(fd); fd = -1 }
            unlink(path)
        }

        private func writeBytes(_ bytes: [UInt8]) throws(GGUFError) {
            var failure: GGUFError?
            bytes.withUnsafeBytes { b in
                do throws(GGUFError) { try write(b) } catch { failure = error }
            }
            if let failure { throw failure }
        }

        private func write(_ buf: UnsafeRawBufferPointer) throws(GGUFError) {
            guard fd >= 0 else { throw GGUFError(.io, "\(path) is closed") }
            var done = 0
            while done < buf.count, let base = buf.baseAddress {
                let n = streamWrite(fd, base + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw GGUFError(.io, "cannot write '\(path)': \(MappedFile.errnoText())")
                }
                done += n
            }
            observer?(buf)
            bytesWritten += buf.count
            startWriteback()
        }

        /// How much is written between writeback starts.
        static let writebackChunk = 32 << 20
        private var writebackStarted = 0

        /// Asks the kernel to start writing what is written so far to disk, without waiting, so
        /// that the final fsync has little left to do and the disk works while the CPU quantizes.
        /// On Linux, POSIX_FADV_DONTNEED starts writeback of the range's dirty pages (and drops
        /// the clean ones: an export's output is not read back). A hint: fsync in ``finish()`` is
        /// the guarantee.
        private func startWriteback() {
            #if os(Linux)
            guard bytesWritten - writebackStarted >= Self.writebackChunk else { return }
            _ = posix_fadvise(fd, off_t(writebackStarted), off_t(bytesWritten - writebackStarted), POSIX_FADV_DONTNEED)
            writebackStarted = bytesWritten
            #endif
        }
    }
}

#if canImport(Darwin)
private func streamWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, buf, n) }
#elseif canImport(Musl)
private func streamWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Musl.write(fd, buf, n) }
#else
private func streamWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, buf, n) }
#endif
