import CKernels

/// A persistent pool of compute threads (the caller counts as one). Matrix products split their
/// rows across it; workers are created once, so an operation costs no thread start.
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

    /// Runs `body(ith, nth)` on every thread of the pool (the caller is `ith == 0`) and returns
    /// when all have finished. `body` must split its work by `ith` and touch disjoint memory.
    public func run(_ body: (_ ith: Int, _ nth: Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { pointer in
                ck_pool_run(handle, { context, ith, nth in
                    guard let context else { return }
                    context.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(ith), Int(nth))
                }, UnsafeMutableRawPointer(pointer))
            }
        }
    }

    /// The number of threads that suits this machine: its online cores.
    public static var defaultThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

import Foundation
