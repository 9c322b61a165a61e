import Crypto
import Foundation

/// Base58 with the Bitcoin alphabet (the encoding Bitcoin and Solana use for keys and
/// addresses), and Base58Check (Bitcoin's checksummed form).
///
/// Each leading zero byte becomes a leading `1`; the rest is the big-endian number in base 58
/// with the alphabet `123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz` (no `0`, `O`,
/// `I`, `l`).
public enum Base58 {
    static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".utf8)
    static let indices: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    /// Encodes bytes as Base58.
    public static func encode<D: DataProtocol>(_ data: D) -> String {
        let bytes = [UInt8](data)
        let zeros = bytes.prefix { $0 == 0 }.count
        // Base-58 digits, least significant first.
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count * 138 / 100 + 1)
        for byte in bytes[zeros...] {
            var carry = Int(byte)
            for i in digits.indices {
                carry += Int(digits[i]) << 8
                digits[i] = UInt8(carry % 58)
                carry /= 58
            }
            while carry > 0 {
                digits.append(UInt8(carry % 58))
                carry /= 58
            }
        }
        let chars = [UInt8](repeating: alphabet[0], count: zeros) + digits.reversed().map { alphabet[Int($0)] }
        return String(decoding: chars, as: UTF8.self)
    }

    /// Decodes a Base58 string.
    /// - Throws: ``LedgerError/Code/malformed`` for a character outside the alphabet.
    public static func decode(_ string: String) throws -> Data {
        let chars = Array(string.utf8)
        let ones = chars.prefix { $0 == alphabet[0] }.count
        // Bytes, least significant first.
        var bytes: [UInt8] = []
        for (position, c) in chars.enumerated().dropFirst(ones) {
            guard c < 128, indices[Int(c)] >= 0 else {
                throw LedgerError(.malformed, "character \(position) of \"\(string)\" is not Base58")
            }
            var carry = Int(indices[Int(c)])
            for i in bytes.indices {
                carry += Int(bytes[i]) * 58
                bytes[i] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                bytes.append(UInt8(carry & 0xff))
                carry >>= 8
            }
        }
        return Data(repeating: 0, count: ones) + Data(bytes.reversed())
    }

    /// The Base58Check checksum: the first 4 bytes of SHA-256(SHA-256(payload)).
    public static func checksum<D: DataProtocol>(_ payload: D) -> Data {
        Data(SHA256.hash(data: Data(SHA256.hash(data: Data(payload)))).prefix(4))
    }

    /// Base58Check: Base58 of `payload ‖ checksum(payload)`.
    public static func encodeCheck<D: DataProtocol>(_ payload: D) -> String {
        encode(Data(payload) + checksum(payload))
    }

    /// Decodes Base58Check and verifies its checksum.
    /// - Returns: The payload without the checksum.
    /// - Throws: ``LedgerError/Code/malformed`` for bad characters or a string too short;
    ///   ``LedgerError/Code/invalidAddress`` for a checksum mismatch.
    public static func decodeCheck(_ string: String) throws -> Data {
        let data = try decode(string)
        guard data.count >= 4 else { throw LedgerError(.malformed, "\"\(string)\" is too short for Base58Check") }
        let payload = data.dropLast(4)
        guard checksum(payload) == data.suffix(4) else {
            throw LedgerError(.invalidAddress, "\"\(string)\" fails its Base58Check checksum")
        }
        return Data(payload)
    }
}
