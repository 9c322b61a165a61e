/// The raw tokenizer description stored in a model file: token strings, token types, merges,
/// special token ids and flags, exactly as written under the `tokenizer.ggml.*` keys.
///
/// A `Vocabulary` is plain data and performs no validation; ``Tokenizer/init(vocabulary:)``
/// validates it and resolves defaults the way llama.cpp does. Optional fields are `nil` when the
/// key is absent from the file, so defaults (which depend on the model and pre-tokenizer) are
/// applied by the tokenizer, not here.
public struct Vocabulary: Sendable, Equatable {
    /// Token types (`tokenizer.ggml.token_type`), as numbered by llama.cpp's `llama_token_type`.
    public enum TokenType: Int32, Sendable, CaseIterable {
        case undefined = 0
        case normal = 1
        case unknown = 2
        case control = 3
        case userDefined = 4
        case unused = 5
        case byte = 6
    }

    /// `tokenizer.ggml.model`: `"gpt2"` (byte-level BPE), `"llama"` (SentencePiece), ….
    public var model: String
    /// `tokenizer.ggml.pre`: the pre-tokenizer name, or `nil` when absent (llama.cpp then uses `"default"`).
    public var preTokenizer: String?
    /// `tokenizer.ggml.tokens`: the text of every token, indexed by token id.
    public var tokens: [String]
    /// `tokenizer.ggml.token_type`: one raw ``TokenType`` value per token, or `nil` (all normal).
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.scores`: per-token scores (SentencePiece), or `nil`.
    public var scores: [Float]?
    /// `tokenizer.ggml.merges`: BPE merges, `"left right"`, highest priority first.
    public var merges: [String]

    /// `tokenizer.ggml.bos_token_id`.
    public var bosTokenID: Int?
    /// `tokenizer.ggml.eos_token_id`.
    public var eosTokenID: Int?
    /// `tokenizer.ggml.eot_token_id`.
    public var eotTokenID: Int?
    /// `tokenizer.ggml.eom_token_id`.
    public var eomTokenID: Int?
    /// `tokenizer.ggml.unknown_token_id`.
    public var unknownTokenID: Int?
    /// `tokenizer.ggml.seperator_token_id` (sic).
    public var separatorTokenID: Int?
    /// `tokenizer.ggml.padding_token_id`.
    public var paddingTokenID: Int?
    /// `tokenizer.ggml.mask_token_id`.
    public var maskTokenID: Int?
    /// `tokenizer.ggml.fim_pre_token_id` (or the deprecated `prefix_token_id`).
    public var fimPreTokenID: Int?
    /// `tokenizer.ggml.fim_suf_token_id` (or the deprecated `suffix_token_id`).
    public var fimSufTokenID: Int?
    /// `tokenizer.ggml.fim_mid_token_id` (or the deprecated `middle_token_id`).
    public var fimMidTokenID: Int?
    /// `tokenizer.ggml.fim_pad_token_id`.
    public var fimPadTokenID: Int?
    /// `tokenizer.ggml.fim_rep_token_id`.
    public var fimRepTokenID: Int?
    /// `tokenizer.ggml.fim_sep_token_id`.
    public var fimSepTokenID: Int?

    /// `tokenizer.ggml.add_bos_token`.
    public var addBOS: Bool?
    /// `tokenizer.ggml.add_eos_token`.
    public var addEOS: Bool?
    /// `tokenizer.ggml.add_space_prefix`: prefix a space to text at the start and after special
    /// tokens (SentencePiece; default true there), and drop one leading space when decoding.
    public var addSpacePrefix: Bool?
    /// `general.name`; llama.cpp keys a few per-token attributes on it (Phi-3).
    public var generalName: String?
    /// Normalize text to Unicode NFC before tokenizing (`tokenizer.hf.normalizer` = "NFC": a
    /// tokenizer.json with the NFC normalizer, as Qwen 2's; GGUF files from llama.cpp never do).
    public var normalizeNFC = false

    /// Creates a vocabulary. Only `model`, `tokens` and (for BPE) `merges` are required.
    public init(
        model: String,
        preTokenizer: String? = nil,
        tokens: [String],
        tokenTypes: [Int32]? = nil,
        scores: [Float]? = nil,
        merges: [String] = [],
        bosTokenID: Int? = nil,
        eosTokenID: Int? = nil,
        eotTokenID: Int? = nil,
        eomTokenID: Int? = nil,
        unknownTokenID: Int? = nil,
        separatorTokenID: Int? = nil,
        paddingTokenID: Int? = nil,
        maskTokenID: Int? = nil,
        fimPreTokenID: Int? = nil,
        fimSufTokenID: Int? = nil,
        fimMidTokenID: Int? = nil,
        fimPadTokenID: Int? = nil,
        fimRepTokenID: Int? = nil,
        fimSepTokenID: Int? = nil,
        addBOS: Bool? = nil,
        addEOS: Bool? = nil,
        addSpacePrefix: Bool? = nil,
        generalName: String? = nil
    ) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.scores = scores
        self.merges = merges
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.eotTokenID = eotTokenID
        self.eomTokenID = eomTokenID
        self.unknownTokenID = unknownTokenID
        self.separatorTokenID = separatorTokenID
        self.paddingTokenID = paddingTokenID
        self.maskTokenID = maskTokenID
        self.fimPreTokenID = fimPreTokenID
        self.fimSufTokenID = fimSufTokenID
        self.fimMidTokenID = fimMidTokenID
        self.fimPadTokenID = fimPadTokenID
        self.fimRepTokenID = fimRepTokenID
        self.fimSepTokenID = fimSepTokenID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.generalName = generalName
    }
}
