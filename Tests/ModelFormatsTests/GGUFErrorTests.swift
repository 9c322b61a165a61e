import Foundation
import Testing
@testable import ModelFormats

/// One hand-made bad file per error code the reader (and writer) can produce.
@Suite("GGUF errors")
struct GGUFErrorTests {
    /// A valid one-tensor file, with hooks to corrupt pieces.
    static func file(
        version: UInt32 = 3,
        dims: [Int64] = [8],
        type: UInt32 = GGMLType.f32.rawValue,
        offset: UInt64 = 0,
        extraKV: ((inout RawGGUF) -> Void)? = nil,
        dataBytes: Int = 32
    ) -> [UInt8] {
        var r = RawGGUF(version: version, tensors: 1, kvs: extraKV == nil ? 1 : 2)
        r.kvString("general.architecture", "llama")
        extraKV?(&r)
        r.tensorInfo("t", dims: dims, type: type, offset: offset)
        r.pad(to: 32)
        r.zeros(dataBytes)
        return r.bytes
    }

    @Test func baseline() throws {
        let f = try GGUFFile(bytes: Self.file())
        #expect(f.tensors.first?.byteCount == 32)
    }

    @Test func badMagic() {
        var b = Self.file()
        b[3] = UInt8(ascii: "X")
        let e = expectCode(.badMagic) { _ = try GGUFFile(bytes: b) }
        #expect(e?.message.contains("GGUX") == true)
        expectCode(.badMagic) { _ = try GGUFFile(bytes: Array("PK\u{3}\u{4}hello".utf8)) }
    }

    @Test func unsupportedVersion() {
        expectCode(.unsupportedVersion) { _ = try GGUFFile(bytes: Self.file(version: 1)) }
        expectCode(.unsupportedVersion) { _ = try GGUFFile(bytes: Self.file(version: 0)) }
        expectCode(.unsupportedVersion) { _ = try GGUFFile(bytes: Self.file(version: 4)) }
        // A big-endian v3 file: the version bytes are 00 00 00 03.
        let e = expectCode(.unsupportedVersion) { _ = try GGUFFile(bytes: Self.file(version: 0x0300_0000)) }
        #expect(e?.message.contains("big-endian") == true)
    }

    @Test func truncated() throws {
        let good = try sampleWriter().serialize()
        expectCode(.truncated) { _ = try GGUFFile(bytes: []) }
        expectCode(.truncated) { _ = try GGUFFile(bytes: [0x47, 0x47, 0x55]) }
        expectCode(.truncated) { _ = try GGUFFile(bytes: Array(good.prefix(200))) }
        // Tensor data cut short (the last tensor, 28 bytes, is followed by 4 padding bytes
        // that are not required).
        expectCode(.truncated) { _ = try GGUFFile(bytes: Array(good.dropLast(5))) }
        #expect(throws: Never.self) { _ = try GGUFFile(bytes: Array(good.dropLast(4))) }
        // An array whose count exceeds what remains: fails before allocating.
        let e = expectCode(.truncated) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in
                r.kv("huge", GGUFValueType.array.rawValue) { $0.u32(GGUFValueType.float32.rawValue); $0.u64(1 << 40) }
            }))
        }
        #expect(e?.message.contains("huge") == true)
        // Header claiming 2^40 metadata entries.
        var r = RawGGUF(tensors: 0, kvs: 1 << 40)
        r.kvString("a", "b")
        expectCode(.truncated) { _ = try GGUFFile(bytes: r.bytes) }
        // A string array with 2^60 elements.
        expectCode(.truncated) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in
                r.kv("tokens", GGUFValueType.array.rawValue) { $0.u32(GGUFValueType.string.rawValue); $0.u64(1 << 60) }
            }))
        }
        // Tensor offset pointing past the end of the file.
        expectCode(.truncated) { _ = try GGUFFile(bytes: Self.file(offset: 1 << 20)) }
    }

    @Test func unknownValueType() {
        expectCode(.unknownValueType) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in r.kv("bad", 13) { $0.u32(0) } }))
        }
        expectCode(.unknownValueType) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in
                r.kv("bad", GGUFValueType.array.rawValue) { $0.u32(0xFFFF_FFFF); $0.u64(0) }
            }))
        }
    }

    @Test func unknownTensorType() {
        expectCode(.unknownTensorType) { _ = try GGUFFile(bytes: Self.file(type: 4)) } // retired Q4_2
        expectCode(.unknownTensorType) { _ = try GGUFFile(bytes: Self.file(type: 1000)) }
    }

    @Test func outOfRange() {
        // A string length of 2^63: does not even fit in Int.
        var r = RawGGUF(tensors: 0, kvs: 1)
        r.u64(1 << 63)
        r.raw(Array("key".utf8))
        r.zeros(32)
        expectCode(.outOfRange) { _ = try GGUFFile(bytes: r.bytes) }
        // Tensor count of 2^63 + 1.
        expectCode(.outOfRange) { _ = try GGUFFile(bytes: RawGGUF(tensors: (1 << 63) + 1, kvs: 0).bytes) }
        // Array count of UInt64.max.
        expectCode(.outOfRange) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in
                r.kv("x", GGUFValueType.array.rawValue) { $0.u32(GGUFValueType.uint8.rawValue); $0.u64(.max) }
            }))
        }
        // Arrays nested deeper than the parser allows.
        expectCode(.outOfRange) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in
                r.kv("deep", GGUFValueType.array.rawValue) { r in
                    for _ in 0 ..< 100 { r.u32(GGUFValueType.array.rawValue); r.u64(1) }
                    r.u32(GGUFValueType.uint8.rawValue); r.u64(0)
                }
            }))
        }
    }

    @Test func overflow() {
        // 2^32 × 2^32 elements overflows Int64.
        expectCode(.overflow) { _ = try GGUFFile(bytes: Self.file(dims: [1 << 32, 1 << 32])) }
        // Elements fit but bytes (× 8) do not.
        expectCode(.overflow) { _ = try GGUFFile(bytes: Self.file(dims: [1 << 61], type: GGMLType.f64.rawValue)) }
        // Offset + size overflows.
        expectCode(.overflow) { _ = try GGUFFile(bytes: Self.file(offset: UInt64(Int.max) - 31)) }
    }

    @Test func invalidString() {
        // Invalid UTF-8 key.
        var r = RawGGUF(tensors: 0, kvs: 1)
        r.rawString([0x61, 0xFF, 0x62])
        r.u32(GGUFValueType.uint8.rawValue)
        r.u8(0)
        expectCode(.invalidString) { _ = try GGUFFile(bytes: r.bytes) }
        // Invalid UTF-8 value (a lone continuation byte) inside a string array.
        expectCode(.invalidString) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in
                r.kv("tokenizer.ggml.tokens", GGUFValueType.array.rawValue) {
                    $0.u32(GGUFValueType.string.rawValue); $0.u64(2); $0.str("ok"); $0.rawString([0x80])
                }
            }))
        }
        // Truncated multi-byte sequence / overlong encoding in a string value.
        expectCode(.invalidString) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in
                r.kv("s", GGUFValueType.string.rawValue) { $0.rawString([0xC0, 0xAF]) }
            }))
        }
        // Empty key.
        expectCode(.invalidString) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in r.kv("", GGUFValueType.uint8.rawValue) { $0.u8(1) } }))
        }
        // Invalid tensor name.
        var t = RawGGUF(tensors: 1, kvs: 0)
        t.rawString([0xED, 0xA0, 0x80]) // UTF-16 surrogate encoded in UTF-8
        t.u32(1); t.i64(1); t.u32(0); t.u64(0)
        t.pad(to: 32); t.zeros(32)
        expectCode(.invalidString) { _ = try GGUFFile(bytes: t.bytes) }
        // Writer: empty tensor name.
        var w = GGUFWriter()
        expectCode(.invalidString) { try w.addTensor(name: "", type: .f32, dimensions: [1], data: [0, 0, 0, 0]) }
    }

    @Test func duplicateKey() {
        let e = expectCode(.duplicateKey) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in r.kvString("general.architecture", "gpt2") }))
        }
        #expect(e?.message.contains("general.architecture") == true)
    }

    @Test func duplicateTensor() {
        var r = RawGGUF(tensors: 2, kvs: 0)
        r.tensorInfo("w", dims: [8], type: 0, offset: 0)
        r.tensorInfo("w", dims: [8], type: 0, offset: 32)
        r.pad(to: 32)
        r.zeros(64)
        expectCode(.duplicateTensor) { _ = try GGUFFile(bytes: r.bytes) }
        var w = GGUFWriter()
        #expect(throws: Never.self) { try w.addTensor(name: "x", type: .f32, dimensions: [1], data: [0, 0, 0, 0]) }
        expectCode(.duplicateTensor) { try w.addTensor(name: "x", type: .f32, dimensions: [1], data: [0, 0, 0, 0]) }
    }

    @Test func invalidAlignment() {
        for bad: UInt32 in [0, 3, 48] {
            expectCode(.invalidAlignment) {
                _ = try GGUFFile(bytes: Self.file(extraKV: { r in r.kvU32("general.alignment", bad) }))
            }
        }
        expectCode(.invalidAlignment) {
            _ = try GGUFFile(bytes: Self.file(extraKV: { r in r.kvString("general.alignment", "32") }))
        }
        // Tensor offset not a multiple of the alignment.
        expectCode(.invalidAlignment) { _ = try GGUFFile(bytes: Self.file(offset: 4, dataBytes: 64)) }
        // Writer with a bad alignment.
        expectCode(.invalidAlignment) { _ = try GGUFWriter(alignment: 24).serialize() }
        expectCode(.invalidAlignment) { _ = try GGUFWriter(alignment: 0).serialize() }
        expectCode(.invalidAlignment) { _ = try GGUFWriter(alignment: 1 << 40).serialize() }
    }

    @Test func alignmentOtherIntegerTypesAccepted() throws {
        let f = try GGUFFile(bytes: Self.file(extraKV: { r in
            r.kv("general.alignment", GGUFValueType.uint64.rawValue) { $0.u64(16) }
        }))
        #expect(f.alignment == 16)
    }

    @Test func invalidTensor() {
        expectCode(.invalidTensor) { _ = try GGUFFile(bytes: Self.file(dims: [])) }
        expectCode(.invalidTensor) { _ = try GGUFFile(bytes: Self.file(dims: [1, 1, 1, 1, 8])) }
        expectCode(.invalidTensor) { _ = try GGUFFile(bytes: Self.file(dims: [8, 0])) }
        expectCode(.invalidTensor) { _ = try GGUFFile(bytes: Self.file(dims: [-8])) }
        // Row of 33 elements for a 32-element block type.
        let e = expectCode(.invalidTensor) { _ = try GGUFFile(bytes: Self.file(dims: [33], type: GGMLType.q4_0.rawValue)) }
        #expect(e?.message.contains("'t'") == true)
        // n_dims of 2^32 - 1 is rejected before reading any dimension.
        var r = RawGGUF(tensors: 1, kvs: 0)
        r.str("t"); r.u32(.max); r.zeros(64)
        expectCode(.invalidTensor) { _ = try GGUFFile(bytes: r.bytes) }
        // Writer: wrong data size, bad shapes.
        var w = GGUFWriter()
        expectCode(.invalidTensor) { try w.addTensor(name: "a", type: .f32, dimensions: [2], data: [0, 0, 0, 0]) }
        expectCode(.invalidTensor) { try w.addTensor(name: "b", type: .q4_K, dimensions: [100], data: []) }
        expectCode(.invalidTensor) { try w.addTensor(name: "c", type: .f32, dimensions: [], data: []) }
        expectCode(.invalidTensor) { try w.addTensor(name: "d", type: .f32, dimensions: [1, 1, 1, 1, 1], data: [0, 0, 0, 0]) }
    }

    @Test func io() {
        expectCode(.io) { _ = try GGUFFile(path: "/nonexistent/dir/model.gguf") }
        expectCode(.io) { _ = try GGUFFile(path: "/tmp") }
        expectCode(.io) { try GGUFWriter().write(to: "/nonexistent/dir/out.gguf") }
    }

    @Test func emptyFileOnDisk() {
        let path = tempPath("empty.gguf")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        defer { unlink(path) }
        expectCode(.truncated) { _ = try GGUFFile(path: path) }
    }

    @Test func unsupportedWriterVersion() {
        var w = GGUFWriter()
        w.version = 1
        expectCode(.unsupportedVersion) { _ = try w.serialize() }
    }

    @Test func errorDescription() {
        let e = GGUFError(.io, "boom", cause: GGUFError(.truncated, "inner"))
        #expect(e.description.contains("io"))
        #expect(e.description.contains("boom"))
        #expect(e.description.contains("inner"))
        #expect(GGUFError.Code.missingKey.description == "missingKey")
    }
}
