/// An error from the kernel layer: an unsupported tensor type or a shape that does not fit.
public struct KernelError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        public static let unsupportedType = Code(name: "unsupportedType")
        public static let shapeMismatch = Code(name: "shapeMismatch")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
