import Foundation

// Canonical encoding of a LedgerRecord: version 1 ("VLR1") and version 2 ("VLR2").
//
// Every record has exactly one encoding, and the decoder accepts only that encoding, so
// `encode(decode(b)) == b` for every accepted `b`. Notation: u8/u32/u64 are big-endian unsigned
// integers, i64 is two's-complement big-endian, f64 is the IEEE 754 binary64 bit pattern
// (big-endian, finite values only), str is u32 byte length + UTF-8 bytes, opt<T> is 0x00 for
// absent or 0x01 followed by T.
//
//   magic                  4 bytes  "VLR1" (0x56 0x4C 0x52 0x31) or "VLR2" (0x56 0x4C 0x52 0x32)
//   recordID               str
//   timestampMilliseconds  i64
//   gpu                    str
//   gpuProvider            str
//   gpuPricePerHourMicros  i64
//   currency               str
//   modelID                str
//   modelDigest            str
//   chatTemplateHash       opt<str>
//   parameters.temperature opt<f64>
//   parameters.topP        opt<f64>
//   parameters.topK        opt<i64>
//   parameters.maxTokens   opt<i64>
//   parameters.seed        opt<u64>
//   parameters.extra       u32 count, then count × (str key, str value), keys in strictly
//                          increasing order of their UTF-8 bytes
//   systemPrompt           opt<str>
//   prompt                 str
//   response               str
//   senderAddress          str
//   promptTokens           opt<u64>
//   completionTokens       opt<u64>
//   finishReason           str
//
// In "VLR1" nothing may follow finishReason. "VLR2" is "VLR1" with the fleet fields after it:
//
//   workerID               opt<str>        the serving worker's id (Base58Check text)
//   advertHash             opt<32 bytes>   SHA-256 of the worker's advert payload (no length prefix)
//   usageStatement         opt<bytes>      the usage statement's payload (u32 length + bytes)
//   usageSignature         opt<bytes>      its Ed25519 signature (u32 length + bytes)
//   costMicros             opt<i64>        the cost in millionths of the currency
//
// and nothing may follow costMicros. A record with none of the five fields is always "VLR1"
// (records `verity serve` writes are unchanged), so a "VLR2" encoding with all five absent is
// rejected: every record keeps exactly one encoding.

extension LedgerRecord {
    static let magic = Data("VLR1".utf8)
    static let magicV2 = Data("VLR2".utf8)

    /// The record's canonical bytes (format "VLR1", or "VLR2" when it has fleet fields; see the
    /// top of this file).
    /// - Throws: ``LedgerError/Code/invalidValue`` for a non-finite parameter, an oversized field,
    ///   or an advert hash that is not 32 bytes.
    public func canonicalBytes() throws -> Data {
        var w = ByteWriter()
        w.raw(hasFleetFields ? Self.magicV2 : Self.magic)
        try w.string(recordID, field: "recordID")
        w.i64(timestampMilliseconds)
        try w.string(gpu, field: "gpu")
        try w.string(gpuProvider, field: "gpuProvider")
        w.i64(gpuPricePerHourMicros)
        try w.string(currency, field: "currency")
        try w.string(modelID, field: "modelID")
        try w.string(modelDigest, field: "modelDigest")
        try w.optional(chatTemplateHash) { try $0.string($1, field: "chatTemplateHash") }
        try w.optional(parameters.temperature) { try $0.double($1, field: "temperature") }
        try w.optional(parameters.topP) { try $0.double($1, field: "topP") }
        w.optional(parameters.topK) { $0.i64($1) }
        w.optional(parameters.maxTokens) { $0.i64($1) }
        w.optional(parameters.seed) { $0.u64($1) }
        let extra = parameters.extra.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        w.u32(UInt32(extra.count))
        for (key, value) in extra {
            try w.string(key, field: "parameters.extra key")
            try w.string(value, field: "parameters.extra[\(key)]")
        }
        try w.optional(systemPrompt) { try $0.string($1, field: "systemPrompt") }
        try w.string(prompt, field: "prompt")
        try w.string(response, field: "response")
        try w.string(senderAddress, field: "senderAddress")
        w.optional(promptTokens) { $0.u64($1) }
        w.optional(completionTokens) { $0.u64($1) }
        try w.string(finishReason, field: "finishReason")
        if hasFleetFields {
            try w.optional(workerID) { try $0.string($1, field: "workerID") }
            try w.optional(advertHash) { w, hash in
                guard hash.count == 32 else { throw LedgerError(.invalidValue, "advertHash has \(hash.count) bytes, not 32") }
                w.raw(hash)
            }
            try w.optional(usageStatement) { try $0.blob($1, field: "usageStatement") }
            try w.optional(usageSignature) { try $0.blob($1, field: "usageSignature") }
            w.optional(costMicros) { $0.i64($1) }
        }
        return w.bytes
    }

    /// Decodes a record from its canonical bytes.
    /// - Parameter bytes: Bytes produced by ``canonicalBytes()``.
    /// - Throws: ``LedgerError/Code/malformed`` for anything but a canonical "VLR1" or "VLR2" encoding.
    public init(canonicalBytes bytes: Data) throws {
        var r = ByteReader(bytes, what: "record")
        let magic = try r.raw(4)
        guard magic == Self.magic || magic == Self.magicV2 else { throw r.fail("not a VLR1 or VLR2 record") }
        let recordID = try r.string(field: "recordID")
        let timestamp = try r.i64()
        let gpu = try r.string(field: "gpu")
        let provider = try r.string(field: "gpuProvider")
        let price = try r.i64()
        let currency = try r.string(field: "currency")
        let modelID = try r.string(field: "modelID")
        let modelDigest = try r.string(field: "modelDigest")
        let templateHash = try r.optional(field: "chatTemplateHash") { try $0.string(field: "chatTemplateHash") }
        let temperature = try r.optional(field: "temperature") { try $0.double(field: "temperature") }
        let topP = try r.optional(field: "topP") { try $0.double(field: "topP") }
        let topK = try r.optional(field: "topK") { try $0.i64() }
        let maxTokens = try r.optional(field: "maxTokens") { try $0.i64() }
        let seed = try r.optional(field: "seed") { try $0.u64() }
        var extra: [String: String] = [:]
        var previousKey: [UInt8]?
        for _ in 0..<(try r.u32()) {
            let key = try r.string(field: "parameters.extra key")
            let keyBytes = Array(key.utf8)
            if let previousKey, !previousKey.lexicographicallyPrecedes(keyBytes) {
                throw r.fail("parameters.extra keys are not in strictly increasing order")
            }
            previousKey = keyBytes
            extra[key] = try r.string(field: "parameters.extra value")
        }
        let systemPrompt = try r.optional(field: "systemPrompt") { try $0.string(field: "systemPrompt") }
        let prompt = try r.string(field: "prompt")
        let response = try r.string(field: "response")
        let sender = try r.string(field: "senderAddress")
        let promptTokens = try r.optional(field: "promptTokens") { try $0.u64() }
        let completionTokens = try r.optional(field: "completionTokens") { try $0.u64() }
        let finishReason = try r.string(field: "finishReason")
        var workerID: String?, advertHash: Data?, usageStatement: Data?, usageSignature: Data?, costMicros: Int64?
        if magic == Self.magicV2 {
            workerID = try r.optional(field: "workerID") { try $0.string(field: "workerID") }
            advertHash = try r.optional(field: "advertHash") { try $0.raw(32) }
            usageStatement = try r.optional(field: "usageStatement") { try $0.blob() }
            usageSignature = try r.optional(field: "usageSignature") { try $0.blob() }
            costMicros = try r.optional(field: "costMicros") { try $0.i64() }
            guard workerID != nil || advertHash != nil || usageStatement != nil || usageSignature != nil || costMicros != nil else {
                throw r.fail("a VLR2 record without fleet fields (it must be encoded as VLR1)")
            }
        }
        try r.expectEnd()
        self.init(
            recordID: recordID, timestampMilliseconds: timestamp, gpu: gpu, gpuProvider: provider,
            gpuPricePerHourMicros: price, currency: currency, modelID: modelID, modelDigest: modelDigest,
            chatTemplateHash: templateHash,
            parameters: ModelParameters(temperature: temperature, topP: topP, topK: topK, maxTokens: maxTokens, seed: seed, extra: extra),
            systemPrompt: systemPrompt, prompt: prompt, response: response, senderAddress: sender,
            promptTokens: promptTokens, completionTokens: completionTokens, finishReason: finishReason,
            workerID: workerID, advertHash: advertHash, usageStatement: usageStatement, usageSignature: usageSignature,
            costMicros: costMicros
        )
    }
}
