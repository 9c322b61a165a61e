import Crypto
import Foundation
import NIOSSL
import Node
import SwiftASN1
import Synchronization
import X509

/// A worker's TLS identity: a self-signed P-256 certificate for its endpoint, made on first use
/// and kept with its key in the data directory (`worker-tls.pem`, owner-only), renewed when it is
/// within 30 days of its end. The worker's advert carries the certificate and the SHA-256 of its
/// SubjectPublicKeyInfo; the advert's signature binds them to the worker key, so a gateway trusts
/// that one certificate for that worker and nothing else (no CA, no host name).
struct WorkerTLSIdentity: Sendable {
    /// The certificate, DER.
    let certificateDER: [UInt8]
    /// Its private key, PEM.
    let privateKeyPEM: String
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (DER).
    let spkiSHA256: Data

    static let fileName = "worker-tls.pem"
    static let lifetime: TimeInterval = 365 * 86_400
    static let renewBefore: TimeInterval = 30 * 86_400

    /// The identity in `directory`, made (or renewed) if there is none or it ends within 30 days.
    /// - Parameters:
    ///   - workerID: The certificate's common name.
    ///   - hosts: Names and addresses put in its subject alternative names (informative: gateways
    ///     pin the certificate, not a name).
    static func loadOrCreate(in directory: DataDirectory, workerID: WorkerID, hosts: [String], now: Date = Date()) throws -> WorkerTLSIdentity {
        let path = directory.path + "/" + fileName
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            do {
                let (identity, notAfter) = try parse(text)
                if notAfter.timeIntervalSince(now) > renewBefore { return identity }
            } catch {
                throw TLSIdentityError("\(path) is not a worker TLS identity (\(error)); move it away to make a new one")
            }
        }
        let key = P256.Signing.PrivateKey()
        let certificate = try makeCertificate(key: key, workerID: workerID, hosts: hosts, now: now)
        let text = key.pemRepresentation + "\n" + (try certificate.serializeAsPEM().pemString) + "\n"
        try directory.create()
        let temporary = path + ".new"
        unlink(temporary)
        try DataDirectory.writeSecret(Data(text.utf8), to: temporary)
        guard rename(temporary, path) == 0 else {
            throw TLSIdentityError("cannot move \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
        return try parse(text).identity
    }

    /// A self-signed certificate for the worker's endpoint.
    static func makeCertificate(key: P256.Signing.PrivateKey, workerID: WorkerID, hosts: [String], now: Date) throws -> Certificate {
        // The worker id (51 characters) fits a common name's 64.
        let name = try DistinguishedName {
            OrganizationName("verity worker")
            CommonName(workerID.description)
        }
        var alternatives: [GeneralName] = []
        for host in Set(hosts) where !host.isEmpty {
            if let address = IPAddress(host) { alternatives.append(.ipAddress(ASN1OctetString(contentBytes: address.bytes[...]))) } else {
                alternatives.append(.dnsName(host))
            }
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
            try ExtendedKeyUsage([.serverAuth])
            if !alternatives.isEmpty { SubjectAlternativeNames(alternatives) }
        }
        let privateKey = Certificate.PrivateKey(key)
        return try Certificate(version: .v3, serialNumber: .init(), publicKey: privateKey.publicKey,
                               notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(lifetime),
                               issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                               issuerPrivateKey: privateKey)
    }

    /// The identity in a PEM file's text, and when its certificate ends.
    static func parse(_ text: String) throws -> (identity: WorkerTLSIdentity, notAfter: Date) {
        let documents = try PEMDocument.parseMultiple(pemString: text)
        guard let keyDocument = documents.first(where: { $0.discriminator == "PRIVATE KEY" || $0.discriminator == "EC PRIVATE KEY" }),
              let certificateDocument = documents.first(where: { $0.discriminator == "CERTIFICATE" }) else {
            throw TLSIdentityError("it needs a PRIVATE KEY and a CERTIFICATE block")
        }
        let certificate = try Certificate(pemDocument: certificateDocument)
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyDocument.pemString)
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw TLSIdentityError("its key is not the certificate's")
        }
        let der = certificateDocument.derBytes
        return (WorkerTLSIdentity(certificateDER: der, privateKeyPEM: keyDocument.pemString, spkiSHA256: try Self.spkiSHA256(der: der)),
                certificate.notValidAfter)
    }

    /// SHA-256 of a DER certificate's SubjectPublicKeyInfo.
    static func spkiSHA256(der: [UInt8]) throws -> Data {
        let spki = try NIOSSLCertificate(bytes: der, format: .der).extractPublicKey().toSPKIBytes()
        return Data(SHA256.hash(data: spki))
    }

    /// The server side of the worker's listener.
    func serverConfiguration() throws -> TLSConfiguration {
        let certificate = try NIOSSLCertificate(bytes: certificateDER, format: .der)
        let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }
}

/// The client side of a gateway's connections to pinned workers: for each advert that carries a
/// certificate, a configuration that trusts exactly that certificate (made once per advert).
final class PinnedWorkerTLS: Sendable {
    private let cache = Mutex<[Data: TLSConfiguration]>([:])

    /// The TLS configuration for a job to this advert's endpoint: pinned to its certificate if it
    /// has one, else nil (the client's default: system roots and the host name, for `https`).
    func configuration(for advert: Advert, hash: Data) throws -> TLSConfiguration? {
        guard let der = advert.tlsCertificate else { return nil }
        if let held = cache.withLock({ $0[hash] }) { return held }
        let configuration = try Self.pinned(der: Array(der))
        cache.withLock { cache in
            if cache.count >= 4096 { cache.removeAll() }
            cache[hash] = configuration
        }
        return configuration
    }

    static func pinned(der: [UInt8]) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([try NIOSSLCertificate(bytes: der, format: .der)])
        // The certificate itself is the pin, bound to the worker key by the signed advert; the
        // endpoint's name is whatever the provider's network calls it.
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// Checks that an advert's pin is the SHA-256 of its certificate's key (the advert is refused
    /// otherwise), and that the certificate parses.
    static func check(_ advert: Advert) throws(FleetError) {
        guard let der = advert.tlsCertificate, let pin = advert.tlsSPKISHA256 else { return }
        let actual: Data
        do { actual = try WorkerTLSIdentity.spkiSHA256(der: Array(der)) } catch {
            throw FleetError(.malformed, "tls_certificate of worker \(advert.worker) is not a DER certificate", cause: error)
        }
        guard actual == pin else {
            throw FleetError(.malformed, "tls_spki_sha256 of worker \(advert.worker) is not the SHA-256 of its certificate's key")
        }
    }
}

struct TLSIdentityError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// An IPv4 or IPv6 address's bytes, for a certificate's subject alternative name.
private struct IPAddress {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }
}
