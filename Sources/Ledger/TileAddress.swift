import Foundation

/// Where a resource of a tiled transparency log lives (C2SP `tlog-tiles`):
///
/// - a hash tile, `tile/<L>/<N>[.p/<W>]`: up to 256 consecutive Merkle tree hashes at height `8·L`
///   (level 0: leaf hashes), the `N`-th run of them;
/// - an entry bundle, `tile/entries/<N>[.p/<W>]`: the entries whose leaf hashes are level-0 tile `N`.
///
/// `N` is written in zero-padded 3-digit path elements, all but the last prefixed with `x`
/// (1234067 is `x001/x234/067`); `.p/<W>` marks a partial tile of `W` (1–255) hashes or entries.
/// Parsing is strict: every resource has exactly one spelling, the one ``path`` writes.
public struct TileAddress: Sendable, Hashable, CustomStringConvertible {
    /// Hashes (and entries) in a full tile.
    public static let width = 256
    /// The highest level the spec allows.
    public static let maxLevel = 63

    /// The tile's level (its hashes are at tree height `8·level`), or nil for an entry bundle.
    public var level: Int?
    /// The tile's index within its level.
    public var index: UInt64
    /// How many hashes (entries) it holds: 256 for a full tile, 1–255 for a partial one.
    public var width: Int

    /// A hash tile.
    public static func hashes(level: Int, index: UInt64, width: Int = TileAddress.width) -> TileAddress {
        TileAddress(level: level, index: index, width: width)
    }

    /// An entry bundle.
    public static func entries(index: UInt64, width: Int = TileAddress.width) -> TileAddress {
        TileAddress(level: nil, index: index, width: width)
    }

    /// Whether the tile is full (256 wide).
    public var isFull: Bool { width == Self.width }

    /// The path under the log's prefix, e.g. `tile/0/x001/x234/067.p/5`.
    public var path: String {
        let head = level.map { "tile/\($0)/" } ?? "tile/entries/"
        return head + Self.encode(index: index) + (isFull ? "" : ".p/\(width)")
    }

    public var description: String { path }

    /// `N` as 3-digit path elements: 1234067 → `x001/x234/067`, 5 → `005`.
    public static func encode(index: UInt64) -> String {
        var groups: [String] = []
        var n = index
        repeat {
            let group = String(n % 1000)
            groups.append(String(repeating: "0", count: 3 - group.count) + group)
            n /= 1000
        } while n > 0
        return groups.reversed().enumerated().map { $0 == groups.count - 1 ? $1 : "x" + $1 }.joined(separator: "/")
    }

    /// Parses a path under the log's prefix (`tile/...`).
    /// - Throws: ``LedgerError/Code/malformed`` for anything but the canonical spelling of a tile
    ///   or entry bundle: leading zeros, a missing or extra `x`, a width of 0 or 256, a level
    ///   above 63, an index beyond 64 bits.
    public init(path: String) throws {
        func bad(_ why: String) -> LedgerError { LedgerError(.malformed, "\"\(path.prefix(200))\" is not a tile path: \(why)") }
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts[0] == "tile" else { throw bad("it must be tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]") }
        var level: Int?
        if parts[1] != "entries" {
            guard let l = Self.canonicalDecimal(parts[1], max: UInt64(Self.maxLevel)) else { throw bad("the level must be 0-63 without leading zeros") }
            level = Int(l)
        }
        parts.removeFirst(2)
        var width = Self.width
        if let last = parts.last, parts.count >= 2, parts[parts.count - 2].hasSuffix(".p") {
            guard let w = Self.canonicalDecimal(last, max: UInt64(Self.width - 1)), w > 0 else {
                throw bad("a partial tile's width must be 1-255 without leading zeros")
            }
            width = Int(w)
            parts.removeLast()
            parts[parts.count - 1].removeLast(2)
        }
        guard parts.count <= 7 else { throw bad("the index has too many elements") }
        var index: UInt64 = 0
        for (i, element) in parts.enumerated() {
            var digits = Substring(element)
            if i < parts.count - 1 {
                guard digits.first == "x" else { throw bad("every index element but the last starts with x") }
                digits = digits.dropFirst()
            }
            guard digits.count == 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else {
                throw bad("index elements are three digits")
            }
            let (scaled, o1) = index.multipliedReportingOverflow(by: 1000)
            let (sum, o2) = scaled.addingReportingOverflow(value)
            guard !o1, !o2 else { throw bad("the index does not fit 64 bits") }
            index = sum
        }
        self.init(level: level, index: index, width: width)
        guard self.path == path else { throw bad("not the canonical spelling \(self.path)") }
    }

    private init(level: Int?, index: UInt64, width: Int) {
        self.level = level
        self.index = index
        self.width = width
    }

    private static func canonicalDecimal(_ text: String, max: UInt64) -> UInt64? {
        guard !text.isEmpty, text.count <= 20, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = UInt64(text), String(value) == text, value <= max else { return nil }
        return value
    }
}
