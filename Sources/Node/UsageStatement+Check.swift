import Crypto
import Foundation
import Ledger

extension UsageStatement {
    /// What the gateway knows about a request, which the worker's statement must agree with.
    public struct Expected: Sendable {
        /// The gateway's request id.
        public var requestID: String
        /// The candidate the request went to: its worker, advert (hash, GPU, provider, price,
        /// currency) and model entry (id, digest).
        public var candidate: Candidate
        /// The request body the gateway sent the worker, if it kept it (its SHA-256 is checked).
        public var requestBody: Data?
        /// The text the worker streamed back, if the gateway collected it (its SHA-256 is checked).
        public var responseText: String?

        public init(requestID: String, candidate: Candidate, requestBody: Data? = nil, responseText: String? = nil) {
            self.requestID = requestID
            self.candidate = candidate
            self.requestBody = requestBody
            self.responseText = responseText
        }
    }
}

extension Verified where Payload == UsageStatement {
    /// Checks that the statement accounts for this request on this worker: the request id, the
    /// worker, the advert hash, the model id and digest, the GPU, provider, price and currency of
    /// the advert, and the prompt and response hashes when the bodies are given.
    /// - Throws: ``FleetError/Code/usageMismatch`` naming the first field that differs.
    public func check(_ expected: UsageStatement.Expected) throws(FleetError) {
        let s = payload, c = expected.candidate, advert = c.advert
        func require(_ ok: Bool, _ field: String, _ got: @autoclosure () -> String, _ want: @autoclosure () -> String) throws(FleetError) {
            guard ok else {
                throw FleetError(.usageMismatch, "the usage statement of worker \(s.worker) for \(expected.requestID) says \(field) "
                                 + "\(got()), expected \(want())")
            }
        }
        try require(s.requestID == expected.requestID, "request_id", s.requestID, expected.requestID)
        try require(s.worker == c.worker, "worker", s.worker.description, c.worker.description)
        try require(s.advertHash == c.advertHash, "advert_sha256", s.advertHash.base64EncodedString(), c.advertHash.base64EncodedString())
        try require(s.modelID == c.model.id, "model", s.modelID, c.model.id)
        try require(s.modelDigest == c.model.digest, "model_digest", s.modelDigest ?? "none", c.model.digest ?? "none")
        try require(s.gpu == advert.hardware.gpu, "gpu", s.gpu, advert.hardware.gpu)
        try require(s.provider == advert.provider, "provider", s.provider, advert.provider)
        try require(s.pricePerHourMicros == advert.pricePerHourMicros, "price_per_hour_micros",
                    String(s.pricePerHourMicros), String(advert.pricePerHourMicros))
        try require(s.currency == advert.currency, "currency", s.currency, advert.currency)
        if let body = expected.requestBody {
            let hash = Data(SHA256.hash(data: body))
            try require(s.promptSHA256 == hash, "prompt_sha256", s.promptSHA256.base64EncodedString(), hash.base64EncodedString())
        }
        if let text = expected.responseText {
            let hash = Data(SHA256.hash(data: Data(text.utf8)))
            try require(s.responseSHA256 == hash, "response_sha256", s.responseSHA256.base64EncodedString(), hash.base64EncodedString())
        }
    }
}

extension LedgerRecord {
    /// Names in the record the worker that served it, from its checked usage statement: the GPU,
    /// provider, price and currency, the prompt and completion token counts, the worker id, the
    /// advert hash, the statement itself (payload and signature) and the cost. The record is then
    /// encoded as "VLR2".
    public mutating func attach(_ usage: VerifiedUsageStatement) {
        let s = usage.payload
        gpu = s.gpu
        gpuProvider = s.provider
        gpuPricePerHourMicros = s.pricePerHourMicros
        currency = s.currency
        promptTokens = UInt64(s.promptTokens)
        completionTokens = UInt64(s.completionTokens)
        workerID = s.worker.description
        advertHash = s.advertHash
        usageStatement = usage.document.payload
        usageSignature = usage.document.signature
        costMicros = s.costMicros
    }

    /// Whether the record's usage statement verifies offline: its signature under the record's
    /// worker id, its payload a valid usage statement by that worker for this record's id.
    /// - Throws: ``FleetError`` saying what fails (``FleetError/Code/notFound`` if the record has
    ///   no statement).
    public func verifyUsageStatement() throws(FleetError) -> VerifiedUsageStatement {
        guard let workerID, let usageStatement, let usageSignature else {
            throw FleetError(.notFound, "record \(recordID) carries no usage statement")
        }
        let worker = try WorkerID(workerID)
        let verified = try UsageStatement.verify(SignedDocument(payload: usageStatement, signature: usageSignature, worker: worker))
        guard verified.payload.requestID == recordID else {
            throw FleetError(.usageMismatch, "the usage statement in record \(recordID) is for request \(verified.payload.requestID)")
        }
        if let advertHash, advertHash != verified.payload.advertHash {
            throw FleetError(.usageMismatch, "the usage statement in record \(recordID) names another advert than the record")
        }
        return verified
    }
}
