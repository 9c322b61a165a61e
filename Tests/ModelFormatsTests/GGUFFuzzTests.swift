import Testing
import TestSupport
@testable import ModelFormats

/// Randomly corrupted copies of a valid file must parse or throw `GGUFError` — never crash,
/// hang or over-allocate.
@Suite("GGUF fuzz")
struct GGUFFuzzTests {
    static let iterations = 12_000

    /// Values that make counts and lengths absurd.
    static let hugeValues: [UInt64] = [
        .max, 1 << 63, (1 << 63) - 1, (1 << 63) + 1, 1 << 62, 1 << 32, (1 << 32) - 1, 1 << 31,
        0x7FFF_FFFF_FFFF_FFF8, 1 << 40, 1 << 20, 65_536, 4096, 1000, 255, 33, 5, 4, 1, 0,
    ]

    /// Offsets of 8-byte fields in the header region that currently hold small counts or
    /// lengths (string lengths, array counts, tensor dims/offsets, header counts) — the
    /// fields most worth overwriting. A few false positives are harmless.
    static func countSites(_ bytes: [UInt8], headerEnd: Int) -> [Int] {
        var sites: [Int] = []
        var p = 0
        while p + 8 <= headerEnd {
            var v: UInt64 = 0
            for i in 0 ..< 8 { v |= UInt64(bytes[p + i]) << (8 * UInt64(i)) }
            if v > 0 && v < 100_000 { sites.append(p) }
            p += 1
        }
        return sites
    }

    /// Parses, and on success touches everything the file exposes.
    static func exercise(_ bytes: [UInt8]) -> Bool {
        do {
            let f = try GGUFFile(bytes: bytes)
            var sink = 0
            for key in f.metadataKeys {
                guard let v = f.metadata[key] else { Issue.record("key \(key) missing from metadata"); continue }
                sink &+= v.description.utf8.count
                _ = try? f.int(key)
                _ = try? f.float(key)
                _ = try? f.string(key)
                _ = try? f.stringArray(key)
                _ = try? f.floatArray(key)
            }
            for t in f.tensors {
                let d = f.tensorData(t)
                if d.count != t.byteCount { Issue.record("tensor \(t.name) size mismatch") }
                if let first = d.first, let last = d.last { sink &+= Int(first) &+ Int(last) }
                if f.tensor(named: t.name) != t { Issue.record("tensor lookup mismatch for \(t.name)") }
                if t.offset % f.alignment != 0 { Issue.record("unaligned offset accepted") }
            }
            _ = sink
            return true
        } catch {
            // Typed throws: only GGUFError can arrive here.
            _ = error.code
            return false
        }
    }

    @Test("12,000 corrupted files parse or throw GGUFError")
    func fuzz() throws {
        let original = try sampleWriter(alignment: 32, seed: 42).serialize()
        let headerEnd = try GGUFFile(bytes: original).dataOffset
        let sites = Self.countSites(original, headerEnd: headerEnd)
        #expect(sites.count > 20)
        #expect(Self.exercise(original))

        var rng = SplitMix64(seed: 0x5EED_6617)
        var parsed = 0
        var kinds = [Int](repeating: 0, count: 7)
        for _ in 0 ..< Self.iterations {
            var b = original
            let mutations = Int.random(in: 1 ... 4, using: &rng)
            for _ in 0 ..< mutations {
                // Mostly the header region, where the parser lives.
                func position(_ width: Int = 1) -> Int {
                    let limit = Bool.random(using: &rng) || Bool.random(using: &rng) ? min(headerEnd, b.count) : b.count
                    return limit > width ? Int.random(in: 0 ..< (limit - width + 1), using: &rng) : 0
                }
                let kind = Int.random(in: 0 ..< 7, using: &rng)
                kinds[kind] += 1
                switch kind {
                case 0: // flip bits in one byte
                    if !b.isEmpty { b[position()] ^= UInt8.random(in: 1 ... 255, using: &rng) }
                case 1: // random byte values in a short run
                    if !b.isEmpty {
                        let p = position()
                        for i in p ..< min(b.count, p + Int.random(in: 1 ... 8, using: &rng)) {
                            b[i] = UInt8.random(in: 0 ... 255, using: &rng)
                        }
                    }
                case 2: // truncate
                    b.removeLast(Int.random(in: 0 ... b.count, using: &rng))
                case 3: // insert random bytes
                    let p = b.isEmpty ? 0 : position()
                    b.insert(contentsOf: randomBytes(Int.random(in: 1 ... 16, using: &rng), &rng), at: p)
                case 4: // delete a run
                    if !b.isEmpty {
                        let p = position()
                        b.removeSubrange(p ..< min(b.count, p + Int.random(in: 1 ... 16, using: &rng)))
                    }
                case 5: // overwrite a known count/length field with a huge value
                    let p = sites.randomElement(using: &rng) ?? 0
                    Self.put(Self.hugeValues.randomElement(using: &rng) ?? 0, at: p, in: &b)
                default: // overwrite an arbitrary 8- or 4-byte field with a huge value
                    let v = Self.hugeValues.randomElement(using: &rng) ?? 0
                    if b.count >= 8 { Self.put(v, at: position(8), in: &b, width: Bool.random(using: &rng) ? 8 : 4) }
                }
            }
            if Self.exercise(b) { parsed += 1 }
        }
        // Sanity: every mutation kind ran and some inputs still parse (e.g. data-only flips).
        #expect(kinds.allSatisfy { $0 > 1000 })
        #expect(parsed > 100)
        #expect(parsed < Self.iterations)
    }

    @Test("every truncation of the file is handled")
    func everyPrefix() throws {
        let original = try sampleWriter(alignment: 64, seed: 7).serialize()
        let f = try GGUFFile(bytes: original)
        // Everything up to the end of the last tensor's bytes is required; the final padding is not.
        let required = f.tensors.map { f.dataOffset + $0.offset + $0.byteCount }.max() ?? 0
        for n in 0 ..< original.count {
            let ok = Self.exercise(Array(original.prefix(n)))
            #expect(ok == (n >= required), "prefix of \(n) bytes (required \(required))")
        }
        #expect(Self.exercise(original))
    }

    @Test("every single-byte value at every header position")
    func everyHeaderByte() throws {
        let original = try sampleWriter(seed: 3).serialize()
        let headerEnd = try GGUFFile(bytes: original).dataOffset
        var b = original
        for p in 0 ..< headerEnd {
            for v: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let saved = b[p]
                b[p] = v
                _ = Self.exercise(b)
                b[p] = saved
            }
        }
    }

    static func put(_ v: UInt64, at p: Int, in b: inout [UInt8], width: Int = 8) {
        for i in 0 ..< width where p + i < b.count {
            b[p + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))
        }
    }
}
