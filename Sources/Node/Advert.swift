import Foundation

/// What a worker offers a gateway, signed with its key: where it listens, which models it
/// serves (with their digests), on what hardware, from which provider, at what price, and for
/// how long the offer stands. A worker re-sends its advert before it expires, and whenever
/// anything in it changes; the gateway keeps the newest one per worker.
///
/// JSON (signed as a ``SignedDocument``; `type` is `"verity.advert.v1"`):
/// ```
/// {"type": "verity.advert.v1", "worker": "<WorkerID>", "endpoint": "https://gpu1.example:8443",
///  "tls_spki_sha256": "<base64 SHA-256 of the TLS certificate's SubjectPublicKeyInfo DER>",  (optional)
///  "tls_certificate": "<base64 DER of that certificate, self-signed>",  (with tls_spki_sha256)
///  "models": [{"id": "llama-3.2-1b", "source": "hf:org/name@commit", "digest": "sha256:<hex>",  (digest optional)
///              "context_length": 8192, "adapters": ["sql-lora"]}],
///  "hardware": {"gpu": "NVIDIA H100 80GB HBM3", "gpu_count": 8, "gpu_memory_mib": 81559, "cpu": "AMD EPYC 9654"},
///  "provider": "lambda", "price_per_hour_micros": 2490000, "currency": "USD", "region": "us-east",
///  "capacity": 64, "version": "verity 0.9.0", "issued_ms": 1767225600000, "expires_ms": 1767225900000}
/// ```
public struct Advert: SignedPayload, Hashable {
    /// One model the worker serves.
    public struct Model: Sendable, Hashable, Codable {
        /// The id requests name it by (`model` in the OpenAI API).
        public var id: String
        /// Where its weights came from: `file:NAME`, `hf:ORG/NAME@COMMIT`, or `upstream:NAME` for
        /// a model served by an external engine behind the worker.
        public var source: String
        /// The digest of its weights, `sha256:<64 lowercase hex>`. Only an `upstream:` model may
        /// have none (the worker cannot see the external engine's weights); the gateway then
        /// matches it by id alone, and says so in ``Candidate/matchedByIDOnly`` and the listing.
        public var digest: String?
        /// Its context length in tokens.
        public var contextLength: Int
        /// The ids of the LoRA adapters it serves with this model.
        public var adapters: [String]

        public init(id: String, source: String, digest: String?, contextLength: Int, adapters: [String] = []) {
            self.id = id
            self.source = source
            self.digest = digest
            self.contextLength = contextLength
            self.adapters = adapters
        }

        enum CodingKeys: String, CodingKey {
            case id, source, digest, adapters
            case contextLength = "context_length"
        }
    }

    /// The machine behind the worker.
    public struct Hardware: Sendable, Hashable, Codable {
        /// The GPU's name (`nvidia-smi`'s), or "none".
        public var gpu: String
        /// How many GPUs serve (0 for a CPU worker).
        public var gpuCount: Int
        /// Memory per GPU in MiB (0 for a CPU worker).
        public var gpuMemoryMiB: Int
        /// The CPU's model name.
        public var cpu: String

        public init(gpu: String, gpuCount: Int, gpuMemoryMiB: Int, cpu: String) {
            self.gpu = gpu
            self.gpuCount = gpuCount
            self.gpuMemoryMiB = gpuMemoryMiB
            self.cpu = cpu
        }

        enum CodingKeys: String, CodingKey {
            case gpu, cpu
            case gpuCount = "gpu_count"
            case gpuMemoryMiB = "gpu_memory_mib"
        }
    }

    public static let documentType = "verity.advert.v1"

    /// The worker (its key).
    public var worker: WorkerID
    /// The base URL gateways send requests to (`http` or `https`, with a host).
    public var endpoint: String
    /// SHA-256 of the DER SubjectPublicKeyInfo of the endpoint's TLS certificate, to pin it.
    public var tlsSPKISHA256: Data?
    /// The endpoint's self-signed TLS certificate (DER), which the gateway trusts for this worker
    /// and nothing else: the advert's signature binds it to the worker key. Present exactly when
    /// ``tlsSPKISHA256`` is.
    public var tlsCertificate: Data?
    /// The models served.
    public var models: [Model]
    public var hardware: Hardware
    /// Who rents the machine out.
    public var provider: String
    /// Price per hour, in millionths of ``currency``.
    public var pricePerHourMicros: Int64
    /// ISO 4217 code of the price's currency.
    public var currency: String
    /// Where the machine is, in the provider's words ("us-east", "eu-west-2", …).
    public var region: String
    /// How many sequences it runs at once.
    public var capacity: Int
    /// The worker's software and version.
    public var version: String
    /// When the advert was made, and until when it stands, in ms since the Unix epoch.
    public var issuedMilliseconds: Int64
    public var expiresMilliseconds: Int64

    /// Creates an advert; see the properties.
    public init(worker: WorkerID, endpoint: String, tlsSPKISHA256: Data? = nil, tlsCertificate: Data? = nil, models: [Model], hardware: Hardware,
                provider: String, pricePerHourMicros: Int64, currency: String = "USD", region: String, capacity: Int,
                version: String, issuedMilliseconds: Int64, expiresMilliseconds: Int64) {
        self.worker = worker
        self.endpoint = endpoint
        self.tlsSPKISHA256 = tlsSPKISHA256
        self.tlsCertificate = tlsCertificate
        self.models = models
        self.hardware = hardware
        self.provider = provider
        self.pricePerHourMicros = pricePerHourMicros
        self.currency = currency
        self.region = region
        self.capacity = capacity
        self.version = version
        self.issuedMilliseconds = issuedMilliseconds
        self.expiresMilliseconds = expiresMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case worker, endpoint, models, hardware, provider, currency, region, capacity, version
        case tlsSPKISHA256 = "tls_spki_sha256"
        case tlsCertificate = "tls_certificate"
        case pricePerHourMicros = "price_per_hour_micros"
        case issuedMilliseconds = "issued_ms"
        case expiresMilliseconds = "expires_ms"
    }

    /// The model with this id, if the advert lists it.
    public func model(_ id: String) -> Model? { models.first { $0.id == id } }
}
