import Foundation
import ModelFormats

/// What `verity export` writes.
public enum ExportFormat: String, Sendable, CaseIterable, Codable {
    /// One GGUF file (or a llama.cpp split set), quantized by llama.cpp's rules.
    case gguf
    /// A Hugging Face folder: config.json, tokenizer files, sharded safetensors.
    case safetensors
    /// The LoRA adapter alone: a PEFT folder or a GGUF LoRA file.
    case lora
}

/// Why an export failed. The message names the file, tensor or option at fault.
public struct ExportError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The source or adapter cannot be read or is not a model.
        case invalidSource
        /// An option is wrong (an unknown type, a format that does not fit the source).
        case invalidOption
        /// The model or a tensor cannot be written in the format asked for.
        case unsupported
        /// Writing the output failed (disk full, permissions).
        case io
        /// The export was cancelled.
        case cancelled
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Where an export stands, reported as it runs.
public struct ExportProgress: Sendable, Equatable {
    /// What is being done: "reading", "quantizing", "writing", "hashing", "done".
    public var stage: String
    /// Units done and the total for this stage (tensors, or bytes when hashing).
    public var done: Int
    public var total: Int
    /// The tensor or file being worked on, if any.
    public var item: String?

    public init(stage: String, done: Int, total: Int, item: String? = nil) {
        self.stage = stage
        self.done = done
        self.total = total
        self.item = item
    }
}

/// One file an export wrote.
public struct ExportedFile: Sendable, Equatable, Codable {
    /// The file's path.
    public var path: String
    /// `sha256:<64 lowercase hex>` of its bytes.
    public var sha256: String
    /// Its size in bytes.
    public var bytes: Int

    public init(path: String, sha256: String, bytes: Int) {
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
    }
}
