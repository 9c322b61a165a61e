import Foundation

extension Advert {
    /// The model sources an advert may name: `file:`, `hf:` and `upstream:` (digest optional only
    /// for the last).
    public static let sourceSchemes: Set<String> = ["file", "hf", "upstream"]
    /// The largest TLS certificate an advert may carry.
    public static let maxCertificateBytes = 16 << 10

    /// Checks every field's shape and range (see ``SignedPayload/validate()``): an `http(s)`
    /// endpoint with a host; a 32-byte pin with its certificate
    /// (and an `https` endpoint); 1 to 4096 models with distinct ids, each with a known
    /// source scheme, a `sha256:` digest (optional for `upstream:`), a positive context length and
    /// distinct adapter ids; counts and prices within range; a three-letter currency; an expiry
    /// after the issue time.
    /// - Throws: ``FleetError/Code/malformed`` naming the field.
    public func validate() throws(FleetError) {
        try FieldCheck.text(endpoint, "endpoint", max: 2048)
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty else {
            throw FleetError(.malformed, "endpoint \"\(endpoint.prefix(120))\" is not an http(s) URL with a host")
        }
        if let pin = tlsSPKISHA256 { try FieldCheck.sha256(pin, "tls_spki_sha256") }
        if tlsSPKISHA256 != nil || tlsCertificate != nil {
            guard tlsSPKISHA256 != nil, let certificate = tlsCertificate else {
                throw FleetError(.malformed, "tls_spki_sha256 and tls_certificate come together (the gateway pins the certificate)")
            }
            guard scheme == "https" else { throw FleetError(.malformed, "a pinned TLS certificate needs an https endpoint") }
            guard (1...Self.maxCertificateBytes).contains(certificate.count) else {
                throw FleetError(.malformed, "tls_certificate has \(certificate.count) bytes, not 1...\(Self.maxCertificateBytes)")
            }
        }
        guard (1...4096).contains(models.count) else {
            throw FleetError(.malformed, "models has \(models.count) entries, not 1...4096")
        }
        var ids = Set<String>()
        for (i, model) in models.enumerated() {
            try Self.validate(model, "models[\(i)]")
            guard ids.insert(model.id).inserted else { throw FleetError(.malformed, "models[\(i)]: model \(model.id) is listed twice") }
        }
        try FieldCheck.text(hardware.gpu, "hardware.gpu")
        try FieldCheck.range(hardware.gpuCount, "hardware.gpu_count", 0...4096)
        try FieldCheck.range(hardware.gpuMemoryMiB, "hardware.gpu_memory_mib", 0...(1 << 24))
        try FieldCheck.text(hardware.cpu, "hardware.cpu")
        try FieldCheck.text(provider, "provider", max: 128)
        try FieldCheck.range(pricePerHourMicros, "price_per_hour_micros", 0...UsageStatement.maxPrice)
        try FieldCheck.currency(currency)
        try FieldCheck.text(region, "region", max: 128)
        try FieldCheck.range(capacity, "capacity", 1...1_000_000)
        try FieldCheck.text(version, "version", max: 128)
        try FieldCheck.range(issuedMilliseconds, "issued_ms", 0...Int64.max)
        guard expiresMilliseconds > issuedMilliseconds else {
            throw FleetError(.malformed, "expires_ms \(expiresMilliseconds) is not after issued_ms \(issuedMilliseconds)")
        }
    }

    private static func validate(_ model: Model, _ field: String) throws(FleetError) {
        try FieldCheck.text(model.id, "\(field).id")
        try FieldCheck.text(model.source, "\(field).source", max: 1024)
        let scheme = model.source.prefix { $0 != ":" }
        guard scheme.count < model.source.count - 1, sourceSchemes.contains(String(scheme)) else {
            throw FleetError(.malformed, "\(field).source \"\(model.source.prefix(120))\" is not file:NAME, hf:ORG/NAME@COMMIT or upstream:NAME")
        }
        if let digest = model.digest {
            try FieldCheck.digest(digest, "\(field).digest")
        } else if scheme != "upstream" {
            throw FleetError(.malformed, "\(field) (\(model.id)) has no digest; only an upstream: model may omit it")
        }
        try FieldCheck.range(model.contextLength, "\(field).context_length", 1...(1 << 24))
        guard model.adapters.count <= 1024 else { throw FleetError(.malformed, "\(field).adapters has over 1024 entries") }
        for (i, adapter) in model.adapters.enumerated() { try FieldCheck.text(adapter, "\(field).adapters[\(i)]") }
        guard Set(model.adapters).count == model.adapters.count else {
            throw FleetError(.malformed, "\(field).adapters lists an adapter twice")
        }
    }

    /// Verifies a signed advert (``SignedPayload/verify(_:)``) and that it stands at `now`.
    /// - Parameters:
    ///   - document: The signed advert.
    ///   - now: The verifier's clock, in ms since the Unix epoch.
    ///   - maxClockSkew: How far in the future `issued_ms` may be (the worker's clock may run ahead).
    /// - Throws: As ``SignedPayload/verify(_:)``; ``FleetError/Code/expired`` if `expires_ms` is
    ///   not after `now`; ``FleetError/Code/notYetValid`` if `issued_ms` is more than
    ///   `maxClockSkew` after `now`.
    public static func verify(_ document: SignedDocument, now: Int64, maxClockSkew: Duration = .seconds(60)) throws(FleetError) -> VerifiedAdvert {
        let verified = try verify(document)
        let advert = verified.payload
        guard advert.expiresMilliseconds > now else {
            throw FleetError(.expired, "the advert of worker \(advert.worker) expired at \(advert.expiresMilliseconds) ms, "
                             + "\(now - advert.expiresMilliseconds) ms ago")
        }
        guard advert.issuedMilliseconds <= now + maxClockSkew.milliseconds else {
            throw FleetError(.notYetValid, "the advert of worker \(advert.worker) is issued \(advert.issuedMilliseconds - now) ms "
                             + "in the future (allowed skew \(maxClockSkew.milliseconds) ms): check the worker's clock")
        }
        return verified
    }
}

extension Duration {
    /// The duration in whole milliseconds (rounded down).
    public var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
