/// A byte string used as a dictionary key for token texts.
///
/// Swift `String` equality and hashing follow Unicode canonical equivalence (`"é"` equals
/// `"e\u{301}"`), and hashing a non-ASCII `String` normalizes it, which is slow. Vocabulary
/// look-ups must be exact byte comparisons, as in llama.cpp's `std::string` maps, so token
/// texts are keyed by their UTF-8 bytes instead.
struct ByteString: Hashable, Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    init<S: Sequence>(_ bytes: S) where S.Element == UInt8 { self.bytes = Array(bytes) }

    init(_ text: String) { self.bytes = Array(text.utf8) }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (a: ByteString, b: ByteString) -> Bool {
        a.bytes == b.bytes
    }
}
