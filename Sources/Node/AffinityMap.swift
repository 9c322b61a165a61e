/// Prefix affinity: which worker last served a conversation prefix (its affinity key), so the
/// next turn goes where that prefix's KV cache is warm.
///
/// Bounded like an LRU cache, with O(1) work per operation: keys live in two generations; a hit
/// in the older one moves the key to the newer; when the newer generation holds `capacity / 2`
/// keys, the older one is dropped and the newer becomes the older. So the map holds at most
/// `capacity` keys, and a key used within the last `capacity / 2` insertions is never dropped.
/// A key naming a worker that has left is harmless (routing uses it only if that worker
/// qualifies) and ages out like any other.
struct AffinityMap: Sendable {
    private let half: Int
    private var current: [String: WorkerID] = [:]
    private var previous: [String: WorkerID] = [:]

    init(capacity: Int) {
        half = max(1, capacity / 2)
    }

    var count: Int { current.count + previous.count }

    /// The worker that last served `key`, refreshing the key's place.
    mutating func worker(for key: String) -> WorkerID? {
        if let worker = current[key] { return worker }
        guard let worker = previous.removeValue(forKey: key) else { return nil }
        insert(key, worker)
        return worker
    }

    /// Records that `worker` served `key`.
    mutating func set(_ key: String, _ worker: WorkerID) {
        if current[key] != nil {
            current[key] = worker
            return
        }
        previous.removeValue(forKey: key)
        insert(key, worker)
    }

    private mutating func insert(_ key: String, _ worker: WorkerID) {
        if current.count >= half {
            previous = current
            current = [:]
            current.reserveCapacity(half)
        }
        current[key] = worker
    }
}
