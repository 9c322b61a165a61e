import Foundation

/// A C2SP transparency log checkpoint body (`c2sp.org/tlog-checkpoint`):
///
/// ```
/// <origin>
/// <tree size, decimal, no leading zeros>
/// <base64 of the RFC 6962 root hash>
/// [extension lines]
/// ```
/// Each line ends in a newline. Parsing is strict: the same checkpoint always has the same text.
public struct Checkpoint: Sendable, Hashable {
    /// The log's identity, also the name of its signing key.
    public var origin: String
    /// The number of leaves in the tree.
    public var size: UInt64
    /// The RFC 6962 root hash at ``size`` (32 bytes).
    public var rootHash: Data
    /// Optional, opaque, non-empty extension lines.
    public var extensions: [String]

    /// Creates a checkpoint.
    public init(origin: String, size: UInt64, rootHash: Data, extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    /// The note text.
    /// - Throws: ``LedgerError/Code/invalidValue`` for an empty line, a newline inside a line, or
    ///   a root hash that is not 32 bytes.
    public func text() throws -> String {
        guard rootHash.count == RFC6962.hashSize else {
            throw LedgerError(.invalidValue, "checkpoint root hash must be 32 bytes")
        }
        let lines = [origin, String(size), rootHash.base64EncodedString()] + extensions
        guard lines.allSatisfy({ !$0.isEmpty && !$0.contains("\n") }) else {
            throw LedgerError(.invalidValue, "checkpoint lines must be non-empty single lines")
        }
        return lines.map { $0 + "\n" }.joined()
    }

    /// Parses a checkpoint body.
    /// - Throws: ``LedgerError/Code/malformed`` for anything that is not a canonical checkpoint.
    public init(text: String) throws {
        guard text.hasSuffix("\n") else { throw LedgerError(.malformed, "checkpoint does not end in a newline") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3, lines.allSatisfy({ !$0.isEmpty }) else {
            throw LedgerError(.malformed, "checkpoint needs origin, size and root hash lines, none empty")
        }
        guard let size = UInt64(lines[1]), String(size) == lines[1] else {
            throw LedgerError(.malformed, "checkpoint size \"\(lines[1])\" is not a canonical decimal")
        }
        guard let root = Data(base64Encoded: lines[2]), root.base64EncodedString() == lines[2], root.count == RFC6962.hashSize else {
            throw LedgerError(.malformed, "checkpoint root hash is not canonical base64 of 32 bytes")
        }
        self.init(origin: lines[0], size: size, rootHash: root, extensions: Array(lines[3...]))
    }
}
