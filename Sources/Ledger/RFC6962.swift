import Crypto
import Foundation

/// RFC 6962 §2.1 Merkle hashing with SHA-256, as used by Certificate Transparency and every
/// C2SP transparency log.
///
/// - leaf hash: `SHA-256(0x00 ‖ leaf bytes)`
/// - interior node hash: `SHA-256(0x01 ‖ left ‖ right)`
/// - the hash of the empty tree: `SHA-256()` (`e3b0c442…b855`)
///
/// The distinct prefixes keep a leaf from ever being read as an interior node (second-preimage
/// resistance).
public enum RFC6962 {
    /// The size in bytes of every hash in the tree.
    public static let hashSize = 32

    /// The root hash of the empty tree, `SHA-256()` of no bytes.
    public static let emptyRoot = Data(SHA256.hash(data: Data()))

    /// Hashes a leaf: `SHA-256(0x00 ‖ bytes)`.
    /// - Parameter bytes: The leaf's canonical bytes.
    /// - Returns: The 32-byte leaf hash.
    public static func leafHash<D: DataProtocol>(_ bytes: D) -> Data {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: bytes)
        return Data(hasher.finalize())
    }

    /// Hashes an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
    /// - Parameters:
    ///   - left: The left child's hash.
    ///   - right: The right child's hash.
    /// - Returns: The 32-byte node hash.
    public static func nodeHash(_ left: Data, _ right: Data) -> Data {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Data(hasher.finalize())
    }
}
