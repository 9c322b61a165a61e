/// Unicode classification of one code point, with the same buckets as llama.cpp's
/// `unicode_cpt_flags`: one general-category bucket (`\p{N}`, `\p{L}`, `\p{Z}`, `\p{M}`,
/// `\p{P}`, `\p{S}`, `\p{C}` or unassigned) plus the `White_Space` property.
///
/// Categories come from Swift's `Unicode.Scalar.Properties.generalCategory`. llama.cpp's tables
/// were generated from Unicode 15.1, so code points first assigned in Unicode 16 or later are
/// classified as unassigned here as well; with that rule the two classifications agree on all
/// 1,114,112 code points (checked against `unicode-data.cpp`).
struct CodepointFlags: OptionSet, Sendable {
    let rawValue: UInt16

    static let undefined = CodepointFlags(rawValue: 0x0001)
    static let number = CodepointFlags(rawValue: 0x0002)
    static let letter = CodepointFlags(rawValue: 0x0004)
    static let separator = CodepointFlags(rawValue: 0x0008)
    static let mark = CodepointFlags(rawValue: 0x0010)
    static let punctuation = CodepointFlags(rawValue: 0x0020)
    static let symbol = CodepointFlags(rawValue: 0x0040)
    static let control = CodepointFlags(rawValue: 0x0080)
    static let whitespace = CodepointFlags(rawValue: 0x0100)

    /// Flags used for positions outside the text (llama.cpp's empty `unicode_cpt_flags{}`).
    static let outOfRange = CodepointFlags([])

    @inline(__always) var isNumber: Bool { rawValue & 0x0002 != 0 }
    @inline(__always) var isLetter: Bool { rawValue & 0x0004 != 0 }
    @inline(__always) var isMark: Bool { rawValue & 0x0010 != 0 }
    @inline(__always) var isPunctuation: Bool { rawValue & 0x0020 != 0 }
    @inline(__always) var isWhitespace: Bool { rawValue & 0x0100 != 0 }
    /// `true` for every real code point (all have a category bucket), `false` out of range.
    @inline(__always) var isDefined: Bool { rawValue != 0 }

    /// The flags of code point `cp`.
    @inline(__always)
    static func of(_ cp: UInt32) -> CodepointFlags {
        if cp < 0x10000 {
            return CodepointFlags(rawValue: CodepointTable.bmp[Int(cp)])
        }
        return CodepointFlags(rawValue: CodepointTable.compute(cp))
    }
}

/// Lazily built classification table for the Basic Multilingual Plane; supplementary-plane code
/// points (emoji, rare scripts) are classified on demand.
enum CodepointTable {
    /// Flags for U+0000…U+FFFF, built once per process (~64 K property look-ups).
    static let bmp: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 0x10000)
        for cp in 0..<0x10000 {
            table[cp] = compute(UInt32(cp))
        }
        return table
    }()

    /// The `White_Space` code points, exactly llama.cpp's `unicode_set_whitespace`.
    static func isWhitespace(_ cp: UInt32) -> Bool {
        switch cp {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Computes the flags of one code point from the standard library's Unicode data.
    static func compute(_ cp: UInt32) -> UInt16 {
        let ws: UInt16 = isWhitespace(cp) ? CodepointFlags.whitespace.rawValue : 0
        guard let scalar = Unicode.Scalar(cp) else {
            // Surrogate code points: category Cs.
            return (cp < 0x110000 ? CodepointFlags.control.rawValue : CodepointFlags.undefined.rawValue) | ws
        }
        let props = scalar.properties
        if let age = props.age, age.major >= 16 {
            return CodepointFlags.undefined.rawValue | ws
        }
        let category: CodepointFlags
        switch props.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            category = .letter
        case .nonspacingMark, .spacingMark, .enclosingMark:
            category = .mark
        case .decimalNumber, .letterNumber, .otherNumber:
            category = .number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            category = .punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            category = .symbol
        case .spaceSeparator, .lineSeparator, .paragraphSeparator:
            category = .separator
        case .control, .format, .privateUse, .surrogate:
            category = .control
        case .unassigned:
            category = .undefined
        @unknown default:
            category = .undefined
        }
        return category.rawValue | ws
    }
}
