import Foundation
@testable import Ledger

extension Data {
    /// Decodes lowercase or uppercase hex; traps on bad input (test vectors only).
    init(hex: String) {
        var bytes: [UInt8] = []
        var chars = hex.makeIterator()
        while let hi = chars.next(), let lo = chars.next() {
            bytes.append(UInt8(String([hi, lo]), radix: 16)!)
        }
        self.init(bytes)
    }

    var hex: String { map { String(format: "%02x", $0) }.joined() }

    /// A copy with bit `mask` of byte `index` flipped.
    func flipping(_ index: Int, mask: UInt8 = 0x01) -> Data {
        var copy = self
        copy[copy.startIndex + index] ^= mask
        return copy
    }
}

enum Fixtures {
    /// A record with every field set (the "full" vector of Fixtures/make_vectors.py).
    static let fullRecord = LedgerRecord(
        recordID: "req-0001", timestampMilliseconds: 1_767_225_600_123, gpu: "NVIDIA H200", gpuProvider: "lambda",
        gpuPricePerHourMicros: 3_490_000, currency: "USD", modelID: "llama-3.2-1b-instruct",
        modelDigest: "sha256:" + String(repeating: "ab", count: 32),
        chatTemplateHash: "sha256:" + String(repeating: "cd", count: 32),
        parameters: ModelParameters(temperature: 0.7, topP: 0.95, topK: 40, maxTokens: 256, seed: 42,
                                    extra: ["stop": "\n\n", "min_p": "0.05"]),
        systemPrompt: "You are terse.", prompt: "Héllo, wörld?", response: "Hi.", senderAddress: "SENDER",
        promptTokens: 12, completionTokens: 3, finishReason: "stop"
    )

    /// A record with every optional field absent (the "minimal" vector).
    static let minimalRecord = LedgerRecord(
        recordID: "r", timestampMilliseconds: 0, gpu: "cpu", gpuProvider: "none", gpuPricePerHourMicros: 0,
        modelID: "m", modelDigest: "sha256:00", parameters: ModelParameters(), prompt: "", response: "",
        senderAddress: "S", finishReason: "cancelled"
    )

    /// A record with a given id and prompt, for log tests.
    static func record(_ id: String, prompt: String = "hello", sender: Account) -> LedgerRecord {
        LedgerRecord(
            recordID: id, timestampMilliseconds: 1_767_225_600_000, gpu: "cpu", gpuProvider: "none",
            gpuPricePerHourMicros: 0, modelID: "m", modelDigest: "sha256:00",
            parameters: ModelParameters(temperature: 0.2), systemPrompt: "sys", prompt: prompt,
            response: "resp", senderAddress: sender.address.description, finishReason: "stop"
        )
    }
}
