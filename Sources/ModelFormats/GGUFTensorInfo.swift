/// The description of one tensor in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name, e.g. `"blk.0.attn_q.weight"`.
    public var name: String
    /// Shape in ggml order: `dimensions[0]` is the contiguous row length (ne0), then ne1, ….
    /// A PyTorch `[out, in]` weight appears here as `[in, out]`.
    public var dimensions: [Int]
    /// Element type.
    public var type: GGMLType
    /// Byte offset of the tensor's data, relative to the start of the data section.
    public var offset: Int
    /// Product of the dimensions.
    public var elementCount: Int
    /// Size of the data in bytes.
    public var byteCount: Int

    /// Creates a tensor description with explicit sizes (no validation).
    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int, elementCount: Int, byteCount: Int) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
        self.elementCount = elementCount
        self.byteCount = byteCount
    }

    /// Creates a tensor description, computing and validating ``elementCount`` and ``byteCount``.
    ///
    /// Throws `.invalidTensor` for 0 or more than 4 dimensions, a dimension <= 0, or a row
    /// length that is not a multiple of the type's block size; `.overflow` if a size overflows.
    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int) throws(GGUFError) {
        let (elements, bytes) = try GGUFTensorInfo.sizes(name: name, dimensions: dimensions, type: type)
        self.init(name: name, dimensions: dimensions, type: type, offset: offset, elementCount: elements, byteCount: bytes)
    }

    /// ggml's maximum number of dimensions.
    public static let maxDimensions = 4

    /// Number of elements in one row (`dimensions[0]`).
    public var rowLength: Int { dimensions.first ?? 1 }

    /// Number of rows (`elementCount / rowLength`).
    public var rowCount: Int {
        let r = rowLength
        return r > 0 ? elementCount / r : 0
    }

    /// Bytes in one row.
    public var rowBytes: Int {
        let rows = rowCount
        return rows > 0 ? byteCount / rows : 0
    }

    /// Validates a shape and returns (element count, byte count).
    static func sizes(name: String, dimensions: [Int], type: GGMLType) throws(GGUFError) -> (Int, Int) {
        guard (1 ... maxDimensions).contains(dimensions.count) else {
            throw GGUFError(.invalidTensor, "tensor '\(name)' has \(dimensions.count) dimensions; must be 1...\(maxDimensions)")
        }
        var elements = 1
        for (i, d) in dimensions.enumerated() {
            guard d > 0 else {
                throw GGUFError(.invalidTensor, "tensor '\(name)' dimension \(i) is \(d); must be > 0")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw GGUFError(.overflow, "tensor '\(name)' shape \(dimensions) has more than Int.max elements")
            }
            elements = product
        }
        let row: Int
        do {
            row = try type.rowBytes(dimensions[0])
        } catch {
            throw GGUFError(error.code, "tensor '\(name)': \(error.message)")
        }
        let (bytes, overflow) = row.multipliedReportingOverflow(by: elements / dimensions[0])
        guard !overflow else {
            throw GGUFError(.overflow, "tensor '\(name)' shape \(dimensions) of type \(type.name) overflows the byte count")
        }
        return (elements, bytes)
    }
}
