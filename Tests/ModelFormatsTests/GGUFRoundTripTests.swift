import Foundation
import Testing
import TestSupport
@testable import ModelFormats

@Suite("GGUF round trip")
struct GGUFRoundTripTests {
    @Test("writer → reader keeps every value type, nested arrays and tensors", arguments: [32, 64])
    func roundTrip(alignment: Int) throws {
        let w = try sampleWriter(alignment: alignment)
        let bytes = try w.serialize()
        let f = try GGUFFile(bytes: bytes)

        #expect(f.version == 3)
        #expect(f.alignment == alignment)
        var expectedKeys = sampleMetadata().map(\.0)
        if alignment != 32 { expectedKeys.append("general.alignment") }
        #expect(f.metadataKeys == expectedKeys)
        for (k, v) in sampleMetadata() {
            #expect(f.metadata[k] == v, "key \(k)")
        }
        if alignment != 32 {
            #expect(f.metadata["general.alignment"] == .uint32(UInt32(alignment)))
        }

        #expect(f.tensors.map(\.name) == w.tensors.map(\.name))
        #expect(f.dataOffset % alignment == 0)
        for (info, written) in zip(f.tensors, w.tensors) {
            #expect(info.dimensions == written.dimensions)
            #expect(info.type == written.type)
            #expect(info.byteCount == written.byteCount)
            #expect(info.elementCount == written.dimensions.reduce(1, *))
            #expect(info.offset % alignment == 0)
            let data = f.tensorData(info)
            #expect(data.count == info.byteCount)
            // The in-memory copy is page aligned, so absolute alignment holds too.
            #expect(Int(bitPattern: data.baseAddress) % alignment == 0)
        }
        // Data equals what was written.
        var rng = SplitMix64(seed: 1)
        let expected: [(String, Int)] = [("token_embd.weight", 48), ("blk.0.attn_q.weight", 72), ("blk.0.ffn.weight", 288),
                                         ("norm", 10), ("q8", 102), ("bf", 24), ("ids", 28)]
        for (name, n) in expected {
            let data = try #require(f.tensorData(named: name))
            #expect(Array(data) == randomBytes(n, &rng), "tensor \(name)")
        }
        #expect(f.tensor(named: "missing") == nil)
        #expect(f.tensorData(named: "missing") == nil)

        // Re-serializing what was read gives the same bytes.
        var w2 = GGUFWriter(alignment: alignment)
        for k in f.metadataKeys { w2.set(k, try #require(f.metadata[k])) }
        for t in f.tensors {
            try w2.addTensor(name: t.name, type: t.type, dimensions: t.dimensions, data: Array(f.tensorData(t)))
        }
        #expect(try w2.serialize() == bytes)
    }

    @Test("write(to:) then mmap via init(path:)")
    func fileRoundTrip() throws {
        let path = tempPath("roundtrip.gguf")
        defer { unlink(path) }
        let w = try sampleWriter(alignment: 64)
        try w.write(to: path)
        let f = try GGUFFile(path: path)
        let g = try GGUFFile(bytes: try w.serialize())
        #expect(f.metadataKeys == g.metadataKeys)
        #expect(f.tensors == g.tensors)
        #expect(f.fileSize == (try w.serialize()).count)
        for t in f.tensors {
            #expect(Array(f.tensorData(t)) == Array(g.tensorData(t)))
            #expect(Int(bitPattern: f.tensorData(t).baseAddress) % 64 == 0)
        }
        #expect(f.storage.path == path)
    }

    @Test("hand-built version 2 file")
    func version2() throws {
        var r = RawGGUF(version: 2, tensors: 2, kvs: 3)
        r.kvString("general.architecture", "llama")
        r.kvU32("llama.block_count", 2)
        r.kv("tokenizer.ggml.scores", GGUFValueType.array.rawValue) {
            $0.u32(GGUFValueType.float32.rawValue); $0.u64(2)
            $0.u32(Float(1.5).bitPattern); $0.u32(Float(-2).bitPattern)
        }
        r.tensorInfo("a", dims: [4], type: GGMLType.f32.rawValue, offset: 0)
        r.tensorInfo("b", dims: [32, 2], type: GGMLType.q8_0.rawValue, offset: 32)
        r.pad(to: 32)
        let dataStart = r.bytes.count
        r.raw((0 ..< 16).map { UInt8($0) })
        r.pad(to: 32)
        r.raw([UInt8](repeating: 7, count: 68))

        let f = try GGUFFile(bytes: r.bytes)
        #expect(f.version == 2)
        #expect(f.alignment == 32)
        #expect(f.dataOffset == dataStart)
        #expect(try f.string("general.architecture") == "llama")
        #expect(try f.int("llama.block_count") == 2)
        #expect(try f.floatArray("tokenizer.ggml.scores") == [1.5, -2])
        #expect(f.tensors.count == 2)
        let a = try #require(f.tensor(named: "a"))
        #expect(Array(f.tensorData(a)) == (0 ..< 16).map { UInt8($0) })
        let b = try #require(f.tensor(named: "b"))
        #expect(b.byteCount == 68 && b.elementCount == 64 && b.rowCount == 2 && b.rowBytes == 34)
        #expect(Array(f.tensorData(b)) == [UInt8](repeating: 7, count: 68))
    }

    @Test("a file with no tensors may end right after the metadata")
    func vocabOnlyNoPadding() throws {
        var r = RawGGUF(tensors: 0, kvs: 1)
        r.kvString("tokenizer.ggml.model", "gpt2")
        let f = try GGUFFile(bytes: r.bytes)
        #expect(f.tensors.isEmpty)
        #expect(try f.string("tokenizer.ggml.model") == "gpt2")
    }

    @Test("typed accessors convert and report missing keys and mismatches")
    func accessors() throws {
        let f = try GGUFFile(bytes: try sampleWriter().serialize())
        #expect(try f.int("test.u8") == 255)
        #expect(try f.int("test.i64") == Int.min)
        #expect(try f.int("test.u32") == 4_000_000_000)
        #expect(try f.float("test.f32") == 3.25)
        #expect(try f.float("test.f64") == -.infinity) // -1e300 does not fit in Float
        #expect(try f.float("test.i16") == -32768)
        #expect(try f.bool("test.bool_t"))
        #expect(try f.string("general.name") == "tiny ✓ 模型 🦙")
        #expect(try f.stringArray("test.arr.str") == ["a", "", "Ġhello", "<|im_end|>", "日本"])
        #expect(try f.intArray("test.arr.i32") == [-1, 2, -3])
        #expect(try f.intArray("test.arr.u16") == [1, 65535])
        #expect(try f.array("test.arr.nested").count == 4)
        #expect(try f.array("test.arr.nested").elementType == .array)
        #expect(try f.optionalString("nope") == nil)
        #expect(try f.optionalInt("nope") == nil)
        #expect(try f.optionalFloat("nope") == nil)
        #expect(try f.optionalBool("nope") == nil)
        #expect(try f.optionalArray("nope") == nil)
        #expect(try f.optionalStringArray("nope") == nil)
        #expect(try f.optionalInt("test.i8") == -128)
        #expect(f["test.u16"] == .uint16(65535))

        let missing = expectCode(.missingKey) { _ = try f.string("llama.nope") }
        #expect(missing?.message.contains("llama.nope") == true)
        let mismatch = expectCode(.typeMismatch) { _ = try f.int("general.name") }
        #expect(mismatch?.message.contains("general.name") == true)
        expectCode(.typeMismatch) { _ = try f.optionalString("test.u8") }
        expectCode(.typeMismatch) { _ = try f.bool("test.u8") }
        expectCode(.typeMismatch) { _ = try f.float("test.bool_t") }
        expectCode(.typeMismatch) { _ = try f.array("test.u8") }
        expectCode(.typeMismatch) { _ = try f.stringArray("test.arr.u8") }
        expectCode(.typeMismatch) { _ = try f.intArray("test.arr.f32") }
        expectCode(.outOfRange) { _ = try f.int("test.u64") }
        expectCode(.outOfRange) { _ = try f.intArray("test.arr.u64") }
    }

    @Test("writer keeps insertion order and replaces in place")
    func writerOrder() throws {
        var w = GGUFWriter()
        w.set("b", .uint8(1))
        w.set("a", "x")
        w.set("b", .uint8(2))
        w.set("c", .bool(true))
        w.remove("c")
        #expect(w.metadataKeys == ["b", "a"])
        let f = try GGUFFile(bytes: try w.serialize())
        #expect(f.metadataKeys == ["b", "a"])
        #expect(f.metadata["b"] == .uint8(2))
        #expect(f.alignment == 32)
        #expect(f.metadata["general.alignment"] == nil)
    }

    @Test("explicit general.alignment must match the writer's")
    func writerAlignmentKey() throws {
        var w = GGUFWriter(alignment: 128)
        w.set("general.alignment", .uint32(128))
        try w.addTensor(name: "t", type: .f32, dimensions: [1], data: [0, 0, 128, 63])
        let f = try GGUFFile(bytes: try w.serialize())
        #expect(f.alignment == 128)
        #expect(f.metadataKeys == ["general.alignment"])
        #expect(f.dataOffset % 128 == 0)
        w.set("general.alignment", .uint32(64))
        expectCode(.invalidAlignment) { _ = try w.serialize() }
    }
}
