import Testing
import TestSupport
@testable import ModelFormats

/// Asserts that `body` throws a `GGUFError` with `code`, and returns it.
@discardableResult
func expectCode(
    _ code: GGUFError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> GGUFError? {
    do {
        try body()
        Issue.record("expected GGUFError.\(code), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as GGUFError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected GGUFError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Hand-assembles GGUF bytes, valid or not.
struct RawGGUF {
    var bytes: [UInt8] = []

    init() {}

    /// Magic, version, counts.
    init(version: UInt32 = 3, tensors: UInt64, kvs: UInt64, magic: [UInt8] = Array("GGUF".utf8)) {
        bytes = magic
        u32(version)
        u64(tensors)
        u64(kvs)
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func str(_ s: String) { rawString(Array(s.utf8)) }
    mutating func rawString(_ b: [UInt8]) { u64(UInt64(b.count)); raw(b) }

    /// key, type tag, then whatever `value` appends.
    mutating func kv(_ key: String, _ type: UInt32, _ value: (inout RawGGUF) -> Void) {
        str(key)
        u32(type)
        value(&self)
    }

    mutating func kvU32(_ key: String, _ v: UInt32) { kv(key, GGUFValueType.uint32.rawValue) { $0.u32(v) } }
    mutating func kvString(_ key: String, _ v: String) { kv(key, GGUFValueType.string.rawValue) { $0.str(v) } }

    mutating func tensorInfo(_ name: String, dims: [Int64], type: UInt32, offset: UInt64) {
        str(name)
        u32(UInt32(dims.count))
        for d in dims { i64(d) }
        u32(type)
        u64(offset)
    }

    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
}

func randomBytes(_ n: Int, _ rng: inout SplitMix64) -> [UInt8] { rng.bytes(n) }

/// Metadata exercising every value type, empty arrays and nested arrays.
func sampleMetadata() -> [(String, GGUFValue)] {
    [
        ("general.architecture", .string("llama")),
        ("general.name", .string("tiny ✓ 模型 🦙")),
        ("test.empty_string", .string("")),
        ("test.u8", .uint8(255)),
        ("test.i8", .int8(-128)),
        ("test.u16", .uint16(65535)),
        ("test.i16", .int16(-32768)),
        ("test.u32", .uint32(4_000_000_000)),
        ("test.i32", .int32(-2_000_000_000)),
        ("test.f32", .float32(3.25)),
        ("test.bool_t", .bool(true)),
        ("test.bool_f", .bool(false)),
        ("test.u64", .uint64(.max)),
        ("test.i64", .int64(.min)),
        ("test.f64", .float64(-1e300)),
        ("test.arr.u8", .array(.uint8([0, 1, 255]))),
        ("test.arr.i8", .array(.int8([-1, 0, 127]))),
        ("test.arr.u16", .array(.uint16([1, 65535]))),
        ("test.arr.i16", .array(.int16([-300, 300]))),
        ("test.arr.u32", .array(.uint32([7, 8, 9]))),
        ("test.arr.i32", .array(.int32([-1, 2, -3]))),
        ("test.arr.f32", .array(.float32([0.5, -0.25, .infinity]))),
        ("test.arr.bool", .array(.bool([true, false, true]))),
        ("test.arr.str", .array(.strings(["a", "", "Ġhello", "<|im_end|>", "日本"]))),
        ("test.arr.u64", .array(.uint64([0, .max]))),
        ("test.arr.i64", .array(.int64([.min, .max]))),
        ("test.arr.f64", .array(.float64([1.5, -2.5]))),
        ("test.arr.empty", .array(.float32([]))),
        ("test.arr.empty_str", .array(.strings([]))),
        ("test.arr.nested", .array(.arrays([.int32([1, 2]), .strings(["x", "y"]), .arrays([.uint8([9])]), .bool([])]))),
        ("test.arr.empty_nested", .array(.arrays([]))),
    ]
}

/// A small valid model file made by `GGUFWriter`.
func sampleWriter(alignment: Int = 32, seed: UInt64 = 1) throws -> GGUFWriter {
    var rng = SplitMix64(seed: seed)
    var w = GGUFWriter(alignment: alignment)
    for (k, v) in sampleMetadata() { w.set(k, v) }
    try w.addTensor(name: "token_embd.weight", type: .f32, dimensions: [4, 3], data: randomBytes(48, &rng))
    try w.addTensor(name: "blk.0.attn_q.weight", type: .q4_0, dimensions: [64, 2], data: randomBytes(2 * 2 * 18, &rng))
    try w.addTensor(name: "blk.0.ffn.weight", type: .q4_K, dimensions: [256, 1, 1, 2], data: randomBytes(2 * 144, &rng))
    try w.addTensor(name: "norm", type: .f16, dimensions: [5], data: randomBytes(10, &rng))
    try w.addTensor(name: "q8", type: .q8_0, dimensions: [32, 3], data: randomBytes(3 * 34, &rng))
    try w.addTensor(name: "bf", type: .bf16, dimensions: [3, 2, 2], data: randomBytes(24, &rng))
    try w.addTensor(name: "ids", type: .i32, dimensions: [7], data: randomBytes(28, &rng))
    return w
}

