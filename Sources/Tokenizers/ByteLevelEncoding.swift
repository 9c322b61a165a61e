/// GPT-2's reversible byte-to-character mapping used by byte-level BPE vocabularies.
///
/// Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) map to themselves; the remaining 68 bytes
/// map, in order, to U+0100…U+0143 (so a space is `Ġ` U+0120 and a newline is `Ċ` U+010A).
enum ByteLevelEncoding {
    /// The code point each byte is written as in vocabulary strings.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// Inverse of ``byteToScalar``, indexed by code point (0…0x143); -1 where no byte maps.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for b in 0..<256 {
            table[Int(byteToScalar[b])] = Int16(b)
        }
        return table
    }()

    /// The UTF-8 bytes of the character that stands for each byte.
    static let encodedUTF8: [[UInt8]] = (0..<256).map { b in
        utf8(of: byteToScalar[b])
    }

    /// The byte a code point stands for, or `nil` when it is not one of the 256 mapped characters.
    @inline(__always)
    static func byte(for scalar: UInt32) -> UInt8? {
        guard scalar < 0x144 else { return nil }
        let b = scalarToByte[Int(scalar)]
        return b < 0 ? nil : UInt8(b)
    }

    /// Byte-level encodes raw bytes into the vocabulary's string form.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        for b in bytes {
            out.append(contentsOf: encodedUTF8[Int(b)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// llama.cpp's `llama_decode_text`: like ``decode(_:)``, but an unmapped character becomes
    /// `[UNK_BYTE_0x<hex of its UTF-8>` followed by the whole token text and `]`.
    static func decodeLenient(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let b = byte(for: scalar.value) {
                out.append(b)
            } else {
                out.append(contentsOf: Array("[UNK_BYTE_0x".utf8))
                for u in utf8(of: scalar.value) {
                    out.append(contentsOf: Array(hex2(u).utf8))
                }
                out.append(contentsOf: Array(text.utf8))
                out.append(UInt8(ascii: "]"))
            }
        }
        return out
    }

    private static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(b >> 4)], digits[Int(b & 15)]], as: UTF8.self)
    }

    /// UTF-8 encoding of a code point (no validation beyond range).
    static func utf8(of cp: UInt32) -> [UInt8] {
        switch cp {
        case 0..<0x80:
            return [UInt8(cp)]
        case 0x80..<0x800:
            return [UInt8(0xC0 | (cp >> 6)), UInt8(0x80 | (cp & 0x3F))]
        case 0x800..<0x10000:
            return [UInt8(0xE0 | (cp >> 12)), UInt8(0x80 | ((cp >> 6) & 0x3F)), UInt8(0x80 | (cp & 0x3F))]
        default:
            return [UInt8(0xF0 | ((cp >> 18) & 0x07)), UInt8(0x80 | ((cp >> 12) & 0x3F)),
                    UInt8(0x80 | ((cp >> 6) & 0x3F)), UInt8(0x80 | (cp & 0x3F))]
        }
    }
}
