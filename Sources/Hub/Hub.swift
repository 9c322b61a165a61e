/// The Hugging Face hub client and huggingface_hub's cache layout.
///
/// - ``HubModelReference`` parses `org/name[:QUANT|:FILE]`.
/// - ``HubEnvironment`` reads HF_ENDPOINT, HF_TOKEN (or the token file), HF_HOME / HF_HUB_CACHE and
///   HF_HUB_OFFLINE as huggingface_hub does.
/// - ``HubClient`` resolves a revision, picks the files (``HubFileSelector``), downloads what the
///   cache lacks and returns a ``HubSnapshot``.
/// - ``HubCache`` is the on-disk layout shared with Python:
///   `models--ORG--NAME/{blobs/<etag>, snapshots/<commit>/<path> → ../../blobs/<etag>, refs/<revision>}`
///   and `.locks/models--ORG--NAME/<etag>.lock`.
public enum Hub {
    /// The `user-agent` sent to the hub.
    public static let userAgent = "verity/1.0; hub-client/1.0"
}
