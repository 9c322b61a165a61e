import Ledger

/// Who sent a request: an account, when its API key is bound to one (`verity keys create`), or
/// nobody in particular (a `--api-key` key, or a server without authentication). Records of
/// anonymous requests name the sender ``anonymousAddress`` and are sealed to the operator.
public enum Caller: Sendable {
    case anonymous
    case account(AccountRegistry.RegisteredAccount)

    /// The sender address recorded for requests without an account.
    public static let anonymousAddress = "anonymous"

    /// The sender address to record.
    public var address: String {
        switch self {
        case .anonymous: Self.anonymousAddress
        case .account(let account): account.address.description
        }
    }
}
