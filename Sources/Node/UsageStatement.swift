import Foundation

/// What a worker states, signed, about one answer it computed: for which request, with which
/// model, over which prompt, producing which response, in how long, on what hardware and at what
/// price. The gateway checks it (``Verified/check(_:)``) and seals it, payload and signature, in
/// the request's ledger record, where anyone holding the record can verify it offline against the
/// worker id.
///
/// JSON (signed as a ``SignedDocument``; `type` is `"verity.usage.v1"`; hashes are base64 of the
/// 32-byte SHA-256):
/// ```
/// {"type": "verity.usage.v1", "request_id": "chatcmpl-…", "worker": "<WorkerID>",
///  "advert_sha256": "<base64>", "model": "llama-3.2-1b", "model_digest": "sha256:<hex>",  (digest optional)
///  "adapter_digest": "sha256:<hex>",  (optional)
///  "prompt_sha256": "<base64>", "response_sha256": "<base64>",
///  "prompt_tokens": 42, "completion_tokens": 17, "started_ms": 1767225600000, "finished_ms": 1767225601250,
///  "gpu": "NVIDIA H100 80GB HBM3", "provider": "lambda", "price_per_hour_micros": 2490000, "currency": "USD"}
/// ```
///
/// - `prompt_sha256` is the SHA-256 of the request body exactly as the worker received it from
///   the gateway (so the gateway, which sent those bytes, can check it);
/// - `response_sha256` is the SHA-256 of the UTF-8 text the worker generated (for a chat
///   completion, the assistant message's content; for a completion, the choice's text).
public struct UsageStatement: SignedPayload, Hashable {
    public static let documentType = "verity.usage.v1"

    /// The gateway's request id, which is also the ledger record's id.
    public var requestID: String
    /// The worker that computed the answer.
    public var worker: WorkerID
    /// SHA-256 of the payload of the worker's advert in force when it answered.
    public var advertHash: Data
    /// The model's id and the digest of its weights (nil for an `upstream:` model).
    public var modelID: String
    public var modelDigest: String?
    /// The digest of the LoRA adapter applied, if any.
    public var adapterDigest: String?
    /// SHA-256 of the request body the worker received, and of the text it generated.
    public var promptSHA256: Data
    public var responseSHA256: Data
    /// Token counts.
    public var promptTokens: Int
    public var completionTokens: Int
    /// When the worker started and finished the request, in ms since the Unix epoch.
    public var startedMilliseconds: Int64
    public var finishedMilliseconds: Int64
    /// The GPU (or CPU) that computed it, its provider, and its price per hour in millionths of
    /// ``currency``.
    public var gpu: String
    public var provider: String
    public var pricePerHourMicros: Int64
    public var currency: String

    /// Creates a statement; see the properties.
    public init(requestID: String, worker: WorkerID, advertHash: Data, modelID: String, modelDigest: String?,
                adapterDigest: String? = nil, promptSHA256: Data, responseSHA256: Data, promptTokens: Int,
                completionTokens: Int, startedMilliseconds: Int64, finishedMilliseconds: Int64, gpu: String,
                provider: String, pricePerHourMicros: Int64, currency: String) {
        self.requestID = requestID
        self.worker = worker
        self.advertHash = advertHash
        self.modelID = modelID
        self.modelDigest = modelDigest
        self.adapterDigest = adapterDigest
        self.promptSHA256 = promptSHA256
        self.responseSHA256 = responseSHA256
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.startedMilliseconds = startedMilliseconds
        self.finishedMilliseconds = finishedMilliseconds
        self.gpu = gpu
        self.provider = provider
        self.pricePerHourMicros = pricePerHourMicros
        self.currency = currency
    }

    enum CodingKeys: String, CodingKey {
        case worker, gpu, provider, currency
        case requestID = "request_id"
        case advertHash = "advert_sha256"
        case modelID = "model"
        case modelDigest = "model_digest"
        case adapterDigest = "adapter_digest"
        case promptSHA256 = "prompt_sha256"
        case responseSHA256 = "response_sha256"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case startedMilliseconds = "started_ms"
        case finishedMilliseconds = "finished_ms"
        case pricePerHourMicros = "price_per_hour_micros"
    }

    /// What the answer cost: the price per hour times the time from start to finish, in
    /// millionths of ``currency``, rounded to the nearest (halves up). (For a statement that does
    /// not validate, the price and duration are first clamped to their valid ranges.)
    public var costMicros: Int64 {
        let duration = min(max(0, finishedMilliseconds.subtractingReportingOverflow(startedMilliseconds).partialValue), Self.maxDuration)
        let price = min(max(0, pricePerHourMicros), Self.maxPrice)
        let product = price.multipliedFullWidth(by: duration)
        let (quotient, remainder) = Int64(3_600_000).dividingFullWidth(product)
        return remainder >= 1_800_000 ? quotient + 1 : quotient
    }

    /// Checks each field's shape and range: ids and names as text, digests as `sha256:<hex>`,
    /// hashes of 32 bytes, counts not negative, finish within a week after start, a price in range and a
    /// three-letter currency.
    /// - Throws: ``FleetError/Code/malformed`` naming the field.
    public func validate() throws(FleetError) {
        try FieldCheck.text(requestID, "request_id")
        try FieldCheck.sha256(advertHash, "advert_sha256")
        try FieldCheck.text(modelID, "model")
        if let modelDigest { try FieldCheck.digest(modelDigest, "model_digest") }
        if let adapterDigest { try FieldCheck.digest(adapterDigest, "adapter_digest") }
        try FieldCheck.sha256(promptSHA256, "prompt_sha256")
        try FieldCheck.sha256(responseSHA256, "response_sha256")
        try FieldCheck.range(promptTokens, "prompt_tokens", 0...Int(Int32.max))
        try FieldCheck.range(completionTokens, "completion_tokens", 0...Int(Int32.max))
        try FieldCheck.range(startedMilliseconds, "started_ms", 0...Int64.max)
        guard finishedMilliseconds >= startedMilliseconds, finishedMilliseconds - startedMilliseconds <= Self.maxDuration else {
            throw FleetError(.malformed, "finished_ms \(finishedMilliseconds) is not within a week after started_ms \(startedMilliseconds)")
        }
        try FieldCheck.text(gpu, "gpu")
        try FieldCheck.text(provider, "provider", max: 128)
        try FieldCheck.range(pricePerHourMicros, "price_per_hour_micros", 0...Self.maxPrice)
        try FieldCheck.currency(currency)
    }

    /// The longest an answer may take (a week), and the highest price (10⁶ currency units an hour).
    static let maxDuration: Int64 = 7 * 86_400_000
    static let maxPrice: Int64 = 1_000_000_000_000
}
