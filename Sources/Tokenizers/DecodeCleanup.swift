/// llama.cpp's `clean_up_tokenization_spaces` post-processing of detokenized text, ported pass
/// for pass (it edits the buffer in place and later passes read what earlier ones wrote).
enum DecodeCleanup {
    private static let space = UInt8(ascii: " ")
    private static let quote = UInt8(ascii: "'")

    static func cleanUpTokenizationSpaces(_ text: inout [UInt8]) {
        guard !text.isEmpty else { return }
        // 1. " ?", " !", " .", " ," → drop the space.
        var total1 = text.count
        var total = 1
        var i = 1
        while i < total1 {
            let x = text[i]
            if text[i - 1] == space && (x == UInt8(ascii: "?") || x == UInt8(ascii: "!") || x == UInt8(ascii: ".") || x == UInt8(ascii: ",")) {
                total -= 1
            }
            text[total] = x
            total += 1
            i += 1
        }
        // 2. " ' " → "'".
        let total2 = total
        total = 1
        i = 1
        while i < total2 {
            let x = text[i]
            if x == quote && i + 1 < total2 && text[i - 1] == space && text[i + 1] == space {
                total -= 1
                i += 1
                text[i] = 0
            }
            text[total] = x
            total += 1
            i += 1
        }
        // 3. " 's", " 'm", " 're", " 've" → drop the space.
        let total3 = total
        total = 1
        i = 1
        while i < total3 {
            let x = text[i]
            if text[i - 1] == space && x == quote && i + 1 < total3 {
                let x1 = text[i + 1]
                if x1 == UInt8(ascii: "t") || x1 == UInt8(ascii: "d") {
                    // kept
                } else if x1 == UInt8(ascii: "s") || x1 == UInt8(ascii: "m") {
                    total -= 1
                } else if i + 2 < total3 {
                    let x2 = text[i + 2]
                    if (x1 == UInt8(ascii: "r") && x2 == UInt8(ascii: "e")) || (x1 == UInt8(ascii: "v") && x2 == UInt8(ascii: "e")) {
                        total -= 1
                    }
                }
            }
            text[total] = x
            total += 1
            i += 1
        }
        total1 = total
        text.removeSubrange(total1...)
    }
}
