import Kernels
import ModelFormats

/// Reads a model's tensors from a GGUF file by name, checking type and shape, and its
/// hyperparameters from `ARCH.*` metadata keys. Views into the mapped file: nothing is copied
/// except the small float vectors (norm weights) the model needs as `[Float]`.
struct WeightLoader {
    let file: GGUFFile
    let architecture: String

    /// `ARCH.key` as an integer.
    func int(_ key: String) throws(ModelError) -> Int {
        do { return try file.int("\(architecture).\(key)") } catch { throw .format(error) }
    }

    func int(_ key: String, default value: Int) throws(ModelError) -> Int {
        do { return try file.optionalInt("\(architecture).\(key)") ?? value } catch { throw .format(error) }
    }

    func float(_ key: String, default value: Float) throws(ModelError) -> Float {
        do { return try file.optionalFloat("\(architecture).\(key)") ?? value } catch { throw .format(error) }
    }

    func optionalString(_ key: String) throws(ModelError) -> String? {
        do { return try file.optionalString("\(architecture).\(key)") } catch { throw .format(error) }
    }

    func has(_ name: String) -> Bool { file.tensor(named: name) != nil }

    func info(_ name: String, shape: [Int]) throws(ModelError) -> GGUFTensorInfo {
        guard let info = file.tensor(named: name) else {
            throw ModelError(.missingTensor, "model file has no tensor '\(name)'")
        }
        guard info.dimensions == shape else {
            throw ModelError(.shapeMismatch, "tensor '\(name)' has shape \(info.dimensions), expected \(shape)")
        }
        return info
    }

    /// A 2-D weight `[columns, rows]` (ggml order) as a matrix of `rows` rows.
    func matrix(_ name: String, columns: Int, rows: Int) throws(ModelError) -> QuantizedMatrix {
        let info = try info(name, shape: [columns, rows])
        guard Kernels.supports(info.type) else {
            throw ModelError(.unsupportedTensorType,
                             "tensor '\(name)' has type \(info.type.name), which Verity cannot run yet (supported: \(Kernels.supportedTypeNames))")
        }
        do {
            return try QuantizedMatrix(type: info.type, bytes: file.tensorData(info), rows: rows, columns: columns)
        } catch {
            throw ModelError(.shapeMismatch, "tensor '\(name)': \(error.message)")
        }
    }

    /// A 1-D tensor of `count` elements, dequantized to floats.
    func vector(_ name: String, count: Int) throws(ModelError) -> [Float] {
        let info = try info(name, shape: [count])
        guard Kernels.supports(info.type) else {
            throw ModelError(.unsupportedTensorType, "tensor '\(name)' has type \(info.type.name), which Verity cannot run yet (supported: \(Kernels.supportedTypeNames))")
        }
        let bytes = file.tensorData(info)
        guard let base = bytes.baseAddress else { throw ModelError(.shapeMismatch, "tensor '\(name)' is empty") }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            Kernels.dequantize(info.type, base, into: buffer.baseAddress!, count: count)
            initialized = count
        }
    }
}
