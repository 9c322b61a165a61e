import Engine
import Foundation
import Hub
import ModelFormats

/// What a `--model` argument names: a GGUF file or a Hugging Face folder on disk, or
/// `hf:ORG/NAME[:QUANT|:FILE]`, pulled from the hub into its shared cache (or found there offline).
enum ModelResolver {
    struct Resolved {
        var path: String
        /// `hf:org/name[:tag]@commit` for a hub model, else nil.
        var source: String?
    }

    static func isHubReference(_ spec: String) -> Bool { spec.hasPrefix("hf:") }

    /// Resolves a hub reference (downloading what is missing, with a progress bar on a terminal);
    /// a path is returned as it is. Async all the way: blocking a thread of the cooperative pool
    /// while the download awaits on it would hang a one-core machine.
    static func resolve(_ spec: String, revision: String? = nil) async throws -> Resolved {
        guard isHubReference(spec) else { return Resolved(path: spec, source: nil) }
        let reference: HubModelReference
        do {
            reference = try HubModelReference(parsing: spec, revision: revision)
        } catch {
            throw CLIError(error.message)
        }
        let client = HubClient()
        do throws(HubError) {
            let snapshot = try await client.pull(reference)
            await client.shutdown()
            let tag = reference.tag.map { ":" + $0 } ?? ""
            return Resolved(path: snapshot.primaryPath, source: "hf:\(snapshot.repo)\(tag)@\(snapshot.commit)")
        } catch {
            await client.shutdown()
            throw CLIError(error.message)
        }
    }

    /// `--quantize` parsed, or a usage error listing the choices.
    static func quantizeType(_ name: String?) throws -> GGMLType? {
        guard let name else { return nil }
        guard let type = ModelLoadOptions.quantizeType(named: name) else {
            throw CLIError("--quantize \(name) is not a type Verity can quantize to (choices: q8_0, q6_k, q5_k, q4_k, q3_k, q2_k, q5_0, q5_1, q4_0, q4_1, iq4_nl, f16, bf16)")
        }
        return type
    }
}
