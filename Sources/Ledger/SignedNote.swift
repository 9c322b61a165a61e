import Foundation

/// A C2SP signed note (`c2sp.org/signed-note`): a text and one or more signature lines.
///
/// ```
/// <text, ending in a newline>
/// <blank line>
/// — <key name> <base64(4-byte big-endian key id ‖ signature)>
/// ```
/// The text is separated from the signatures by the last blank line. Notes are UTF-8 with no
/// control characters but newline. Parsing here is strict: base64 must be canonical, and at
/// most 16 signatures are read.
public struct SignedNote: Sendable, Hashable {
    /// One signature line.
    public struct Signature: Sendable, Hashable {
        /// The key name.
        public var name: String
        /// The 32-bit key id.
        public var keyID: UInt32
        /// The signature bytes (64 for Ed25519).
        public var signature: Data

        /// Creates a signature line.
        public init(name: String, keyID: UInt32, signature: Data) {
            self.name = name
            self.keyID = keyID
            self.signature = signature
        }
    }

    /// The most signatures a note may carry when parsed.
    public static let maxSignatures = 16

    /// The signed text, including its final newline.
    public var text: String
    /// The signatures, in order.
    public var signatures: [Signature]

    /// Creates a note from its parts.
    public init(text: String, signatures: [Signature]) {
        self.text = text
        self.signatures = signatures
    }

    /// The note in its wire format.
    public var formatted: String {
        var out = text + "\n"
        for s in signatures {
            var blob = Data()
            withUnsafeBytes(of: s.keyID.bigEndian) { blob.append(contentsOf: $0) }
            blob.append(s.signature)
            out += "\u{2014} \(s.name) \(blob.base64EncodedString())\n"
        }
        return out
    }

    /// Parses a note in its wire format.
    /// - Throws: ``LedgerError/Code/malformed`` for anything that is not a well-formed note.
    public init(parsing bytes: Data) throws {
        guard let note = String(validating: bytes, as: UTF8.self) else {
            throw LedgerError(.malformed, "signed note is not valid UTF-8")
        }
        try self.init(parsing: note)
    }

    /// Parses a note in its wire format.
    /// - Throws: ``LedgerError/Code/malformed`` for anything that is not a well-formed note.
    public init(parsing note: String) throws {
        let bytes = Array(note.utf8)
        guard !bytes.contains(where: { $0 < 0x20 && $0 != 0x0A }) else {
            throw LedgerError(.malformed, "signed note contains a control character")
        }
        // The last "\n\n" splits text (keeping its newline) from signatures.
        guard let split = bytes.indices.dropLast().last(where: { bytes[$0] == 0x0A && bytes[$0 + 1] == 0x0A }) else {
            throw LedgerError(.malformed, "signed note has no blank line before its signatures")
        }
        let text = String(decoding: bytes[...split], as: UTF8.self)
        let sigBytes = bytes[(split + 2)...]
        guard !sigBytes.isEmpty, sigBytes.last == 0x0A else {
            throw LedgerError(.malformed, "signed note has no signature lines, or they do not end in a newline")
        }
        var signatures: [Signature] = []
        for line in sigBytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false) {
            guard signatures.count < Self.maxSignatures else {
                throw LedgerError(.malformed, "signed note has more than \(Self.maxSignatures) signatures")
            }
            let line = String(decoding: line, as: UTF8.self)
            let prefix = "\u{2014} "
            guard line.hasPrefix(prefix) else { throw LedgerError(.malformed, "signature line does not start with an em dash") }
            let fields = line.dropFirst(prefix.count).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2 else { throw LedgerError(.malformed, "signature line is not \"— name signature\"") }
            let name = String(fields[0])
            do { try NoteVerifier.checkName(name) } catch {
                throw LedgerError(.malformed, "signature line has an invalid key name", cause: error)
            }
            guard let blob = Data(base64Encoded: String(fields[1])), blob.base64EncodedString() == fields[1], blob.count > 4 else {
                throw LedgerError(.malformed, "signature of \(name) is not canonical base64 of a key id and signature")
            }
            let keyID = blob.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            signatures.append(Signature(name: name, keyID: keyID, signature: Data(blob.dropFirst(4))))
        }
        self.init(text: text, signatures: signatures)
    }

    /// Checks that a text can be signed: non-empty, ending in a newline, no control characters
    /// but newline.
    static func checkText(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.last == 0x0A, !bytes.contains(where: { $0 < 0x20 && $0 != 0x0A }) else {
            throw LedgerError(.invalidValue, "a note text must end in a newline and hold no control characters")
        }
    }
}
