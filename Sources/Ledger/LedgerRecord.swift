import Foundation

/// The private payload of one interaction: everything the ledger promises to record.
///
/// A record is never stored in clear: ``RecordEnvelope/seal(_:to:nodeID:)`` encrypts its
/// canonical encoding (``canonicalBytes()``, see `LedgerRecord+Encoding.swift`) for the sender
/// and, optionally, an auditor.
public struct LedgerRecord: Sendable, Hashable, Codable {
    /// The record id; the server uses the request id. Also public in the envelope.
    public var recordID: String
    /// When the interaction happened, in milliseconds since 1970-01-01T00:00:00Z.
    public var timestampMilliseconds: Int64
    /// The GPU that served the request (for example "NVIDIA H100 80GB HBM3"), or the CPU model.
    public var gpu: String
    /// Who rents out the GPU (for example "lambda"), or "none".
    public var gpuProvider: String
    /// The GPU's price per hour in millionths of ``currency`` (1.99 USD/h is `1_990_000`).
    public var gpuPricePerHourMicros: Int64
    /// ISO 4217 code of the price's currency, normally "USD".
    public var currency: String
    /// The model's id as the API names it.
    public var modelID: String
    /// The digest of the model file, as `sha256:<64 lowercase hex>`.
    public var modelDigest: String
    /// The hash of the chat template applied, if any (`sha256:<hex>`).
    public var chatTemplateHash: String?
    /// The sampling parameters.
    public var parameters: ModelParameters
    /// The system prompt (prompt instructions), if any.
    public var systemPrompt: String?
    /// The prompt: the user's text, or the conversation as the server serialised it.
    public var prompt: String
    /// The model's response text, as far as it was generated.
    public var response: String
    /// The sender's account address (``AccountAddress``).
    public var senderAddress: String
    /// Tokens in the prompt, if counted.
    public var promptTokens: UInt64?
    /// Tokens generated, if counted.
    public var completionTokens: UInt64?
    /// Why generation ended: "stop", "length", "cancelled", …
    public var finishReason: String

    // Set when a fleet worker served the answer (a record with any of these is encoded as
    // "VLR2"; one with none, as `verity serve` writes, stays "VLR1").

    /// The worker that served the answer: its worker id (Base58Check of its Ed25519 key).
    public var workerID: String?
    /// SHA-256 of the payload of the worker's signed advert in force when it answered (32 bytes).
    public var advertHash: Data?
    /// The worker's signed usage statement: the payload's JSON bytes exactly as signed…
    public var usageStatement: Data?
    /// …and its Ed25519 signature by ``workerID``'s key (64 bytes), verifiable offline.
    public var usageSignature: Data?
    /// What the answer cost, in millionths of ``currency`` (price per hour × duration).
    public var costMicros: Int64?

    /// Creates a record. See the properties for the meaning of each field.
    public init(
        recordID: String, timestampMilliseconds: Int64, gpu: String, gpuProvider: String,
        gpuPricePerHourMicros: Int64, currency: String = "USD", modelID: String, modelDigest: String,
        chatTemplateHash: String? = nil, parameters: ModelParameters, systemPrompt: String? = nil,
        prompt: String, response: String, senderAddress: String, promptTokens: UInt64? = nil,
        completionTokens: UInt64? = nil, finishReason: String, workerID: String? = nil, advertHash: Data? = nil,
        usageStatement: Data? = nil, usageSignature: Data? = nil, costMicros: Int64? = nil
    ) {
        self.recordID = recordID
        self.timestampMilliseconds = timestampMilliseconds
        self.gpu = gpu
        self.gpuProvider = gpuProvider
        self.gpuPricePerHourMicros = gpuPricePerHourMicros
        self.currency = currency
        self.modelID = modelID
        self.modelDigest = modelDigest
        self.chatTemplateHash = chatTemplateHash
        self.parameters = parameters
        self.systemPrompt = systemPrompt
        self.prompt = prompt
        self.response = response
        self.senderAddress = senderAddress
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.finishReason = finishReason
        self.workerID = workerID
        self.advertHash = advertHash
        self.usageStatement = usageStatement
        self.usageSignature = usageSignature
        self.costMicros = costMicros
    }

    /// Whether the record has any of the fleet fields (worker, advert hash, usage statement,
    /// cost), and so is encoded as "VLR2".
    public var hasFleetFields: Bool {
        workerID != nil || advertHash != nil || usageStatement != nil || usageSignature != nil || costMicros != nil
    }

    /// The time of the interaction as a `Date`.
    public var date: Date { Date(timeIntervalSince1970: Double(timestampMilliseconds) / 1000) }
}
