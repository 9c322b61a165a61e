import CKernels

/// A persistent pool of compute threads (the caller counts as one). Matrix products split their
/// rows across it in chunks the threads claim; workers are created once, so an operation costs no
/// thread start.
/// Not reentrant: one model owns one pool and calls it from one thread at a time.
public final class ThreadPool: @unchecked Sendable {
    let handle: OpaquePointer

    /// Creates a pool of `threads` threads (at least 1) including the calling thread.
    public init(threads: Int) {
        guard let pool = ck_pool_create(Int32(max(1, min(threads, 256)))) else {
            fatalError("ThreadPool: out of memory creating \(threads) threads")
        }
        handle = pool
    }

    deinit { ck_pool_destroy(handle) }

    /// Number of threads taking part in each operation.
    public var size: Int { Int(ck_pool_size(handle)) }

    /// Calls `body(item, ith)` once for every item in `0..<count`, each on whichever thread claims
    /// it first (`ith` is that thread, 0 for the caller: use it to pick per-thread scratch), and
    /// returns when all are done. A thread the OS has not scheduled does not hold the others up:
    /// they take its share. Items must touch disjoint memory.
    public func forEach(_ count: Int, _ body: (_ item: Int, _ ith: Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { pointer in
                ck_pool_for(handle, count, { context, item, ith in
                    guard let context else { return }
                    context.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(item), Int(ith))
                }, UnsafeMutableRawPointer(pointer))
            }
        }
    }

    /// The number of threads that suits this machine: its online cores.
    public static var defaultThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

import Foundation
