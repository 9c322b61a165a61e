/// A model in the cache, ready to load.
public struct HubSnapshot: Sendable, Equatable {
    /// What to load from ``HubSnapshot/directory``.
    public enum Kind: Sendable, Equatable {
        /// GGUF files, absolute paths inside the snapshot; a split model's shards in order 00001…N.
        case gguf(files: [String])
        /// A transformers folder: config.json, tokenizer files and safetensors weights.
        case safetensors
    }

    /// `org/name`.
    public var repo: String
    /// The 40-hex commit the revision resolved to.
    public var commit: String
    /// `<cache>/models--ORG--NAME/snapshots/<commit>`.
    public var directory: String
    public var kind: Kind

    public init(repo: String, commit: String, directory: String, kind: Kind) {
        self.repo = repo
        self.commit = commit
        self.directory = directory
        self.kind = kind
    }

    /// What a user loads: the first GGUF file, or the snapshot folder.
    public var primaryPath: String {
        if case .gguf(let files) = kind, let first = files.first { return first }
        return directory
    }
}
