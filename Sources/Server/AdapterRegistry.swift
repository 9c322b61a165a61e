import Engine
import Foundation
import Models

/// The LoRA adapters of one served base model, by name: loaded from the command line
/// (`--lora NAME=PATH`) or hot through the admin API. At most `maxResident` are held in memory;
/// the least recently used beyond that is dropped and read again from its path when next asked
/// for. A request holds its adapter's weights until it ends, so unloading or evicting an adapter
/// never disturbs a generation in progress; the memory goes with the last one.
final class AdapterRegistry: @unchecked Sendable {
    /// What the registry knows of one adapter.
    struct Entry: Sendable {
        var spec: AdapterSpec
        /// `sha256:<hex>` of the adapter's files (see ``ModelHost/digest(of:)``).
        var digest: String
        /// Bytes of its weights in memory when resident.
        var bytes: Int
        var resident: ModelAdapter?
        var lastUsed: Int
        var created: Int
    }

    let base: LoadedModel
    let maxResident: Int?
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var order: [String] = []   // names in load order
    private var clock = 0

    init(base: LoadedModel, maxResident: Int?) {
        self.base = base
        self.maxResident = maxResident
    }

    /// Loads `spec` (reading its files and checking it fits the base) and registers it; replaces
    /// nothing: a name in use is refused.
    @discardableResult
    func add(_ spec: AdapterSpec) throws -> Entry {
        try AdapterSpec.checkName(spec.name)
        let weights = try base.loadAdapter(path: spec.path, scale: spec.scale)
        let digest = try ModelHost.digest(of: spec.path)
        return try lock.withLock { () throws -> Entry in
            guard entries[spec.name] == nil else {
                throw EngineError(.invalidParameter, "an adapter named '\(spec.name)' is already loaded; unload it first")
            }
            clock += 1
            let entry = Entry(spec: spec, digest: digest, bytes: weights.byteCount, resident: weights, lastUsed: clock,
                              created: Int(Date().timeIntervalSince1970))
            entries[spec.name] = entry
            order.append(spec.name)
            evictBeyondCap(keeping: spec.name)
            return entry
        }
    }

    /// Forgets an adapter; requests using it finish first. Returns whether it was there.
    @discardableResult
    func remove(_ name: String) -> Entry? {
        lock.withLock {
            order.removeAll { $0 == name }
            return entries.removeValue(forKey: name)
        }
    }

    /// The entry for `name`, without loading it.
    func entry(_ name: String) -> Entry? { lock.withLock { entries[name] } }

    /// Every adapter, in load order.
    var all: [Entry] { lock.withLock { order.compactMap { entries[$0] } } }

    /// Bytes of adapter weights resident now.
    var residentBytes: Int { lock.withLock { entries.values.reduce(0) { $0 + ($1.resident == nil ? 0 : $1.bytes) } } }

    /// The weights of `name`, read again from its path if they were evicted; nil for an unknown name.
    func weights(_ name: String) throws -> ModelAdapter? {
        try lock.withLock { () throws -> ModelAdapter? in
            guard var entry = entries[name] else { return nil }
            clock += 1
            entry.lastUsed = clock
            if entry.resident == nil {
                entry.resident = try base.loadAdapter(path: entry.spec.path, scale: entry.spec.scale)
            }
            entries[name] = entry
            evictBeyondCap(keeping: name)
            return entry.resident
        }
    }

    /// Drops the least recently used resident adapters (never `keeping`) until `maxResident` are left.
    /// Called with the lock held.
    private func evictBeyondCap(keeping: String) {
        guard let cap = maxResident else { return }
        while entries.values.filter({ $0.resident != nil }).count > max(cap, 1) {
            guard let victim = entries.filter({ $0.value.resident != nil && $0.key != keeping })
                .min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key else { return }
            entries[victim]?.resident = nil
        }
    }
}
