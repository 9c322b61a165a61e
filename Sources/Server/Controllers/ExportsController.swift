import Foundation
import HTTPTypes
import Hummingbird
import Node

/// Model exports through the API, as background jobs (see ``ExportJobs``):
/// - `POST /v1/exports` `{"model", "format", "type", "merge", "adapter", "split_max_size"}` (see
///   ``ExportRequest``): 202 with the job; 404 for a model or adapter not served, 403 for one the
///   key may not export, 400 naming a bad field, 429 when the queue is full;
/// - `GET /v1/exports`: the caller's jobs, newest first; `GET /v1/exports/{id}`: one, with its
///   status, progress, files (name, sha256, bytes), record id and receipt, or its error;
/// - `DELETE /v1/exports/{id}`: cancels a queued or running job, or deletes a finished one's
///   files (its ledger record stays);
/// - `GET /v1/exports/{id}/file` (an export of one file) and `GET /v1/exports/{id}/files/{name}`
///   (any file in the job's list; no other name is served): the bytes, streamed, with ranges and
///   the SHA-256 in `X-Content-SHA256` (see ``FileDownload``).
///
/// The operator's admin key may export any served model or adapter and sees every job; any other
/// key the `/v1` routes accept exports only what `serve --exportable` names, and sees only its own
/// jobs (another's is a 404, as is an unknown one).
struct ExportsController: Sendable {
    let jobs: ExportJobs
    let host: ModelHost
    let adminKeys: Set<String>
    let authenticator: Authenticator
    let limiter: RateLimiter

    /// Largest `POST /v1/exports` body.
    static let maxBodyBytes = 64 << 10

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("exports", use: create)
        group.get("exports", use: list)
        group.get("exports/{id}", use: show)
        group.delete("exports/{id}", use: remove)
        group.get("exports/{id}/file", use: downloadOnly)
        group.get("exports/{id}/files/{name}", use: download)
        // HEAD: the same headers (length, digest, ETag), no body: a client checks before it fetches.
        group.head("exports/{id}/file") { request, context in try await downloadOnly(request, context: context).createHeadResponse() }
        group.head("exports/{id}/files/{name}") { request, context in try await download(request, context: context).createHeadResponse() }
    }

    @Sendable func create(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let exporter = try identify(request)
        let data = try await RequestBody.read(request, limit: Self.maxBodyBytes)
        try JSONPrecheck.check(data)
        let json: JSON
        do { json = try JSON.parse(data) } catch { throw APIError.invalidJSON("\(error)") }
        let asked = try ExportRequest(json)
        let source = try ExportSource(asked, host: host)
        try source.authorize(exporter, format: asked.format, configuration: jobs.configuration, requested: asked.model)
        try source.check(asked)
        try jobs.checkRoom()

        let id = ExportJobs.newID()
        let folder = jobs.folder(id)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            throw APIError.server("The export's folder \(folder) cannot be made: \(error.localizedDescription)")
        }
        let prepared: (work: ExportJobs.Work, type: String)
        do {
            let threads = jobs.threads
            prepared = try await Self.offPool { () throws(APIError) in
                try source.prepare(asked, output: folder, threads: threads, sender: exporter.caller)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
        let record = ExportRecord(
            id: id, owner: exporter.owner, sender: exporter.caller.address, model: asked.model, base: source.base.id,
            adapter: source.adapter?.spec.name, merge: asked.merge, format: asked.format.rawValue, type: prepared.type, status: .queued,
            progress: nil, createdAt: ExportJobs.now())
        let body: JSON
        do { body = try jobs.submit(record, work: prepared.work) } catch {
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
        var response = Response.json(body, status: .accepted)
        response.headers[.location] = "/v1/exports/\(id)"
        return response
    }

    @Sendable func list(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let exporter = try identify(request)
        return .json(["object": "list", "data": .array(jobs.jobs(for: exporter)), "has_more": false])
    }

    @Sendable func show(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let exporter = try identify(request)
        let id = context.parameters.get("id") ?? ""
        guard let job = jobs.job(id, for: exporter) else { throw Self.notFound(id) }
        return .json(job)
    }

    @Sendable func remove(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let exporter = try identify(request)
        let id = context.parameters.get("id") ?? ""
        switch await jobs.remove(id, for: exporter) {
        case .notFound: throw Self.notFound(id)
        case .cancelled(let job): return .json(job)
        case .deleted: return .json(["id": .string(id), "object": "export", "deleted": true])
        }
    }

    @Sendable func downloadOnly(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let exporter = try identify(request)
        let id = context.parameters.get("id") ?? ""
        guard let only = jobs.onlyFile(id, for: exporter) else { throw Self.notFound(id) }
        guard let found = only else {
            throw APIError(status: .notFound, message: "The export \(id) has no single file (it is still running, failed, or wrote several: GET /v1/exports/\(id) lists them, each at its 'url').",
                           type: "invalid_request_error", param: nil, code: "export_file_not_found")
        }
        return try await FileDownload.response(path: found.path, name: found.file.name, sha256: found.file.sha256, bytes: found.file.bytes,
                                               request: request, context: context)
    }

    @Sendable func download(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let exporter = try identify(request)
        let id = context.parameters.get("id") ?? ""
        let raw = context.parameters.get("name") ?? ""
        guard jobs.job(id, for: exporter) != nil else { throw Self.notFound(id) }
        // The path arrives percent-encoded: the name is what it decodes to (a `%2F` is a slash, refused below).
        guard let name = raw.removingPercentEncoding else {
            throw APIError.invalidRequest("'\(raw)' is not a file name of an export.", param: "name", code: "invalid_file_name")
        }
        // Only names in the job's list are served; these never are, whatever the list says.
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.contains("\\") || name.contains("\0") || name.hasPrefix(".") {
            throw APIError.invalidRequest("'\(name)' is not a file name of an export.", param: "name", code: "invalid_file_name")
        }
        guard let found = jobs.file(id, named: name, for: exporter) else {
            throw APIError(status: .notFound, message: "The export \(id) has no file named '\(name)'; GET /v1/exports/\(id) lists its files.",
                           type: "invalid_request_error", param: "name", code: "export_file_not_found")
        }
        return try await FileDownload.response(path: found.path, name: found.file.name, sha256: found.file.sha256, bytes: found.file.bytes,
                                               request: request, context: context)
    }

    // MARK: -

    private func identify(_ request: Request) throws(APIError) -> Exporter {
        try Exporter.identify(request, adminKeys: adminKeys, authenticator: authenticator, limiter: limiter)
    }

    static func notFound(_ id: String) -> APIError {
        APIError(status: .notFound, message: "No export job '\(id)' for this key; GET /v1/exports lists yours.",
                 type: "invalid_request_error", param: "id", code: "export_not_found")
    }

    /// Runs blocking work (opening model files) on a dispatch queue, not the cooperative pool.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws(APIError) -> T) async throws(APIError) -> T {
        let result: Result<T, APIError> = await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                do throws(APIError) { continuation.resume(returning: .success(try body())) } catch { continuation.resume(returning: .failure(error)) }
            }
        }
        return try result.get()
    }
}
