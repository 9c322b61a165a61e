/// An exact-bytes map from token text to token id that can be queried with a byte slice of the
/// input without allocating a key, for the SentencePiece merge loop (which looks up every
/// candidate pair of adjacent symbols).
///
/// Open addressing with linear probing over FNV-1a hashes. When a text occurs more than once in
/// the vocabulary the last id wins, like llama.cpp's `token_to_id`.
struct TokenTextIndex: Sendable {
    /// All token texts, concatenated.
    private let text: [UInt8]
    /// `text` offsets; token `i` is `text[offsets[i]..<offsets[i + 1]]`.
    private let offsets: [Int]
    /// Slots holding a token id, or -1 when empty. The count is a power of two.
    private let slots: [Int32]
    private let mask: Int
    /// Length in bytes of the longest token text.
    let maxLength: Int

    /// Indexes `tokens` (already with empty texts replaced).
    init(tokens: [String]) {
        var text: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        var maxLength = 0
        for t in tokens {
            text.append(contentsOf: t.utf8)
            offsets.append(text.count)
            maxLength = max(maxLength, t.utf8.count)
        }
        var capacity = 16
        while capacity < tokens.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        text.withUnsafeBufferPointer { buf in
            for i in 0..<tokens.count {
                let range = offsets[i]..<offsets[i + 1]
                var slot = Self.hash(UnsafeBufferPointer(rebasing: buf[range])) & mask
                while true {
                    let existing = slots[slot]
                    if existing < 0 {
                        slots[slot] = Int32(truncatingIfNeeded: i)
                        break
                    }
                    let e = Int(existing)
                    if buf[offsets[e]..<offsets[e + 1]].elementsEqual(buf[range]) {
                        slots[slot] = Int32(truncatingIfNeeded: i)  // a repeated text: last id wins
                        break
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
        self.text = text
        self.offsets = offsets
        self.slots = slots
        self.mask = mask
        self.maxLength = maxLength
    }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3
        }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// The id of the token whose text is exactly `bytes`, if any.
    func id(of bytes: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard bytes.count <= maxLength else { return nil }
        var slot = Self.hash(bytes) & mask
        return text.withUnsafeBufferPointer { buf -> Int32? in
            while true {
                let id = slots[slot]
                if id < 0 { return nil }
                let i = Int(id)
                let lo = offsets[i]
                let hi = offsets[i + 1]
                if hi - lo == bytes.count && UnsafeBufferPointer(rebasing: buf[lo..<hi]).elementsEqual(bytes) {
                    return id
                }
                slot = (slot + 1) & mask
            }
        }
    }

    /// The id of the token whose text is exactly `bytes`, if any.
    func id(of bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBufferPointer { id(of: $0) }
    }
}
