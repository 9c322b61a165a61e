/// The model-specific half of a tokenizer: how plain text (already split on special tokens)
/// becomes token ids, and how a normal token turns back into bytes.
///
/// ``Tokenizer`` owns everything that is shared between tokenizer families — special-token
/// partitioning, BOS/EOS, end-of-generation, decoding of control and user-defined tokens — and
/// delegates the rest to a backend: byte-level BPE (``BPEBackend``) or SentencePiece
/// (``SentencePieceBackend``).
protocol TokenizerBackend: Sendable {
    /// Encodes one text fragment. `afterSpecial` is true for the first fragment and for fragments
    /// that directly follow a special token (SentencePiece's space-prefix rule needs it). A
    /// backend may stop early once `out` holds more than `limit` tokens.
    func encode(_ utf8: ArraySlice<UInt8>, afterSpecial: Bool, into out: inout [Int32], limit: Int)

    /// The output bytes of a normal or byte-type token, whose vocabulary text is `text`.
    func pieceBytes(text: String, attributes: TokenAttributes) -> [UInt8]

    /// Apply llama.cpp's `clean_up_tokenization_spaces` when decoding.
    var cleanSpaces: Bool { get }

    /// Default for adding BOS when `tokenizer.ggml.add_bos_token` is absent.
    var defaultAddBOS: Bool { get }

    /// Default BOS / EOS ids when the metadata has none.
    var defaultBOS: Int32? { get }
    var defaultEOS: Int32? { get }
    /// Default unknown-token id when the metadata has none.
    var defaultUnknown: Int32? { get }
    /// Default for `tokenizer.ggml.add_space_prefix` when the key is absent.
    var defaultAddSpacePrefix: Bool { get }

    /// The `tokenizer.ggml.pre` name in effect (`"default"` when absent).
    var preTokenizerName: String { get }

    /// The id of the token whose text is exactly `text`, if any.
    func tokenID(forText text: String) -> Int32?
}

extension TokenizerBackend {
    var defaultUnknown: Int32? { nil }
    var defaultAddSpacePrefix: Bool { false }
}

/// Byte-level BPE (`tokenizer.ggml.model = gpt2`): pre-tokenizer selected by
/// `tokenizer.ggml.pre`, then rank-ordered merges per word.
struct BPEBackend: TokenizerBackend {
    let preTokenizer: PreTokenizer
    let model: BPEModel

    init(vocabulary: Vocabulary, tokens: [String]) throws(TokenizerError) {
        preTokenizer = try PreTokenizer.named(vocabulary.preTokenizer)
        if vocabulary.merges.isEmpty {
            throw TokenizerError(.missingKey, "BPE vocabulary has no merges ('tokenizer.ggml.merges' is missing or empty)")
        }
        model = BPEModel(tokens: tokens, merges: vocabulary.merges, ignoreMerges: preTokenizer.ignoreMerges)
    }

    func encode(_ utf8: ArraySlice<UInt8>, afterSpecial: Bool, into out: inout [Int32], limit: Int) {
        let bytes = Array(utf8)
        var scratch = BPEModel.Scratch()
        // Words repeat a lot in natural text; memoize per call.
        var cache: [ArraySlice<UInt8>: [Int32]] = [:]
        var wordTokens: [Int32] = []
        for word in preTokenizer.split(bytes) {
            if out.count > limit { return }
            let slice = bytes[word]
            if slice.count == 1 {
                model.encodeWord(slice, into: &out, scratch: &scratch)
                continue
            }
            if let cached = cache[slice] {
                out.append(contentsOf: cached)
                continue
            }
            wordTokens.removeAll(keepingCapacity: true)
            model.encodeWord(slice, into: &wordTokens, scratch: &scratch)
            out.append(contentsOf: wordTokens)
            cache[slice] = wordTokens
        }
    }

    func pieceBytes(text: String, attributes: TokenAttributes) -> [UInt8] {
        if attributes.contains(.normal) {
            return ByteLevelEncoding.decodeLenient(text)
        }
        if attributes.contains(.byte) {
            // llama.cpp parses "<0xXX>" for byte tokens of BPE vocabularies.
            let u = Array(text.utf8)
            if u.count >= 5, let v = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                return [v]
            }
            return [0]
        }
        return []
    }

    var cleanSpaces: Bool { preTokenizer.cleanSpaces }
    var defaultAddBOS: Bool { preTokenizer.defaultAddBOS }
    /// llama.cpp's BPE defaults are 11 for both, except where the pre-tokenizer disables BOS.
    var defaultBOS: Int32? { preTokenizer.disablesBOS ? nil : 11 }
    var defaultEOS: Int32? { 11 }
    var preTokenizerName: String { preTokenizer.name }

    func tokenID(forText text: String) -> Int32? {
        model.tokenID(forText: text)
    }
}
