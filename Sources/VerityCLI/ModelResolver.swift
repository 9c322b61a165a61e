import Dispatch
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
    /// a path is returned as it is.
    static func resolve(_ spec: String, revision: String? = nil) throws -> Resolved {
        guard isHubReference(spec) else { return Resolved(path: spec, source: nil) }
        let reference: HubModelReference
        do {
            reference = try HubModelReference(parsing: spec, revision: revision)
        } catch {
            throw CLIError(error.message)
        }
        let result = Blocking.run { () async -> Result<HubSnapshot, HubError> in
            let client = HubClient()
            let result: Result<HubSnapshot, HubError>
            do throws(HubError) { result = .success(try await client.pull(reference)) } catch { result = .failure(error) }
            await client.shutdown()
            return result
        }
        switch result {
        case .success(let snapshot):
            let tag = reference.tag.map { ":" + $0 } ?? ""
            return Resolved(path: snapshot.primaryPath, source: "hf:\(snapshot.repo)\(tag)@\(snapshot.commit)")
        case .failure(let error):
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

/// Runs async work to completion from synchronous code (a command's `run()`), on the cooperative
/// pool, waiting on a semaphore.
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            box.value = await body()
            done.signal()
        }
        done.wait()
        return box.value!
    }

    private final class Box<T>: @unchecked Sendable { var value: T? }
}
