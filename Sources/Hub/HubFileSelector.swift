import Foundation

/// Which files of a repo make the model, from the repo's file list.
///
/// GGUF repos, as llama-server's `-hf org/repo:QUANT` picks (llama.cpp `common_get_hf_file`):
/// - a tag ending in `.gguf` names a file (path inside the repo);
/// - another tag picks the GGUF files whose path contains it, case-insensitively (`Q4_K_M` matches
///   `model-Q4_K_M.gguf`, `model.q4_k_m.gguf` and `Q4_K_M/model-00001-of-00002.gguf`); a match bounded
///   by `-`, `.`, `_` or `/` on the left and `.`, `-` or `/` on the right wins over a bare substring, then
///   the first by path;
/// - no tag: ``defaultQuant`` (`Q4_K_M`), else any `Q4` file, else the first GGUF file by path.
/// - `mmproj` files (vision projectors) are never picked as the model;
/// - a split model (`name-00001-of-00003.gguf`) brings all its shards, in order.
///
/// Safetensors repos (no GGUF file and no tag): `config.json`, the weights (`model.safetensors`, or
/// `model.safetensors.index.json` and every shard it names), and those of ``safetensorsCompanions``
/// the repo has. PEFT adapter repos (LoRA): `adapter_config.json` and `adapter_model.safetensors`.
public enum HubFileSelector {
    /// The quant picked when no tag is given (llama.cpp's default).
    public static let defaultQuant = "Q4_K_M"

    /// Files downloaded with a safetensors checkpoint when the repo has them.
    public static let safetensorsCompanions = [
        "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "tokenizer.model", "chat_template.jinja", "vocab.json", "merges.txt",
    ]
    public static let safetensorsIndex = "model.safetensors.index.json"
    public static let safetensorsSingle = "model.safetensors"
    /// A PEFT adapter repo's files.
    public static let peftConfig = "adapter_config.json"
    public static let peftWeights = "adapter_model.safetensors"

    /// The files to fetch.
    public enum Plan: Sendable, Equatable {
        /// GGUF files in load order (shards 00001…N).
        case gguf([String])
        /// A transformers checkpoint: `files` now; with `index`, also the shards it names
        /// (``shards(fromIndex:)``), known only once the index is read.
        case safetensors(files: [String], index: String?)
    }

    /// The plan for `files` (paths relative to the repo root) and `tag`.
    /// - Throws: ``HubError/Code-swift.struct/noMatchingFile`` listing the files there are.
    public static func plan(files: [String], tag: String?, repo: String) throws(HubError) -> Plan {
        let ggufs = files.filter(isModelGGUF).sorted()
        if let tag {
            if tag.lowercased().hasSuffix(".gguf") {
                let named = files.first { $0 == tag } ?? files.first { $0.lowercased() == tag.lowercased() }
                guard let named else {
                    throw HubError(.noMatchingFile, "\(repo) has no file \(tag); \(listing(ggufs, or: files))")
                }
                return .gguf(try withShards(named, in: files, repo: repo))
            }
            guard let chosen = bestMatch(tag, in: ggufs) else {
                let what = ggufs.isEmpty ? "has no GGUF file (to use its safetensors checkpoint, leave out ':\(tag)')" : "has no GGUF file matching '\(tag)'"
                throw HubError(.noMatchingFile, "\(repo) \(what); \(listing(ggufs, or: files))")
            }
            return .gguf(try withShards(chosen, in: files, repo: repo))
        }
        if !ggufs.isEmpty {
            let chosen = bestMatch(defaultQuant, in: ggufs) ?? bestMatch("Q4", in: ggufs) ?? firstShardOrFile(ggufs)
            return .gguf(try withShards(chosen, in: files, repo: repo))
        }
        let present = Set(files)
        let weights: [String]
        let index: String?
        if present.contains(safetensorsIndex) {
            weights = [safetensorsIndex]
            index = safetensorsIndex
        } else if present.contains(safetensorsSingle) {
            weights = [safetensorsSingle]
            index = nil
        } else if present.contains(peftConfig) && present.contains(peftWeights) {
            // A PEFT LoRA adapter (what PEFT, TRL and Unsloth push): its config and weights.
            return .safetensors(files: [peftConfig, peftWeights], index: nil)
        } else {
            throw HubError(.noMatchingFile, "\(repo) has neither GGUF files nor a safetensors checkpoint (\(safetensorsSingle) or \(safetensorsIndex)); \(listing([], or: files))")
        }
        guard present.contains("config.json") else {
            throw HubError(.noMatchingFile, "\(repo) has safetensors weights but no config.json; \(listing([], or: files))")
        }
        return .safetensors(files: ["config.json"] + safetensorsCompanions.filter(present.contains) + weights, index: index)
    }

    /// A `.gguf` file that is a model (not an `mmproj` vision projector).
    static func isModelGGUF(_ path: String) -> Bool {
        let lower = path.lowercased()
        let name = lower.split(separator: "/").last.map(String.init) ?? lower
        return lower.hasSuffix(".gguf") && !name.contains("mmproj")
    }

    /// The GGUF path that best matches `tag`, or nil.
    static func bestMatch(_ tag: String, in ggufs: [String]) -> String? {
        let needle = tag.lowercased()
        var bounded: [String] = []
        var loose: [String] = []
        for path in ggufs {
            let lower = path.lowercased()
            var found = false
            var isBounded = false
            var searchRange = lower.startIndex..<lower.endIndex
            while let range = lower.range(of: needle, range: searchRange) {
                found = true
                let before = range.lowerBound == lower.startIndex ? nil : lower[lower.index(before: range.lowerBound)]
                let after = range.upperBound == lower.endIndex ? nil : lower[range.upperBound]
                if (before == nil || "-._/".contains(before!)) && (after == nil || ".-/".contains(after!)) { isBounded = true }
                searchRange = lower.index(after: range.lowerBound)..<lower.endIndex
            }
            if isBounded { bounded.append(path) } else if found { loose.append(path) }
        }
        guard let pick = bounded.first ?? loose.first else { return nil }
        // A split model is named by its first shard.
        if let split = SplitName(pick) {
            return (bounded + loose).first { SplitName($0).map { $0.prefix == split.prefix && $0.index == 1 } ?? false } ?? pick
        }
        return pick
    }

    static func firstShardOrFile(_ ggufs: [String]) -> String {
        ggufs.first { SplitName($0).map { $0.index == 1 } ?? true } ?? ggufs[0]
    }

    /// `file` alone, or, for a shard of a split model, every shard 1…N in order.
    /// - Throws: noMatchingFile when a shard is missing from the repo.
    static func withShards(_ file: String, in files: [String], repo: String) throws(HubError) -> [String] {
        guard let split = SplitName(file) else { return [file] }
        let present = Set(files)
        let shards = (1...split.count).map { split.name(index: $0) }
        let missing = shards.filter { !present.contains($0) }
        guard missing.isEmpty else {
            throw HubError(.noMatchingFile, "\(repo) lacks shard\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) of the split model \(file)")
        }
        return shards
    }

    /// llama.cpp's split naming, `PREFIX-00001-of-00003.gguf` (`llama_split_path`: `%s-%05d-of-%05d.gguf`).
    struct SplitName: Equatable {
        var prefix: String
        var index: Int
        var count: Int

        init?(_ path: String) {
            guard path.lowercased().hasSuffix(".gguf") else { return nil }
            let stem = path.dropLast(5)
            let parts = stem.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count >= 4, parts[parts.count - 2].lowercased() == "of",
                  let index = Int(parts[parts.count - 3]), let count = Int(parts[parts.count - 1]),
                  parts[parts.count - 3].count == 5, parts[parts.count - 1].count == 5,
                  index >= 1, count >= 1, index <= count, count <= 99_999
            else { return nil }
            self.prefix = parts[..<(parts.count - 3)].joined(separator: "-")
            self.index = index
            self.count = count
            self.suffix = String(path.suffix(5))
        }

        private var suffix = ".gguf"

        func name(index: Int) -> String {
            prefix + "-" + String(format: "%05d", index) + "-of-" + String(format: "%05d", count) + suffix
        }
    }

    /// The shard files a `model.safetensors.index.json` names (its `weight_map` values), sorted.
    /// - Throws: server when the JSON is not an index or names a path outside the repo.
    public static func shards(fromIndex data: Data, repo: String, indexPath: String = safetensorsIndex) throws(HubError) -> [String] {
        guard let object = try? JSONSerialization.jsonObject(with: data), let root = object as? [String: Any],
              let map = root["weight_map"] as? [String: Any]
        else { throw HubError(.server, "\(repo)/\(indexPath) is not a safetensors index (no weight_map)") }
        var shards = Set<String>()
        for value in map.values {
            guard let name = value as? String, HubPath.isSafeRelative(name) else {
                throw HubError(.server, "\(repo)/\(indexPath) names a shard that is not a path inside the repo: \(value)")
            }
            let directory = (indexPath as NSString).deletingLastPathComponent
            shards.insert(directory.isEmpty ? name : directory + "/" + name)
        }
        guard !shards.isEmpty else { throw HubError(.server, "\(repo)/\(indexPath) names no shards") }
        return shards.sorted()
    }

    static func listing(_ preferred: [String], or all: [String]) -> String {
        let shown = preferred.isEmpty ? all.sorted() : preferred
        let what = preferred.isEmpty ? "files" : "GGUF files"
        guard !shown.isEmpty else { return "the repo has no files" }
        let limit = 50
        let list = shown.prefix(limit).joined(separator: ", ") + (shown.count > limit ? ", … (\(shown.count - limit) more)" : "")
        return "\(what) there: \(list)"
    }
}
