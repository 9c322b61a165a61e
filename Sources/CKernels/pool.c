// A persistent thread pool: workers wait on a generation counter (spinning briefly, then sleeping
// on a condition variable), so running a task costs no thread creation. Work is claimed item by
// item; the caller never waits for a worker that has not started (see ck_pool_for).
#include "ck_internal.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#else
#define CK_PAUSE() ((void)0)
#endif

// Spin this many pause iterations (tens of microseconds) before sleeping or yielding: long enough to
// catch the next operation of a forward pass, short enough not to starve other work on a busy machine.
#define CK_SPIN_ITERATIONS 4096

typedef struct {
    ck_item_fn fn;
    void *ctx;
    size_t n;
    _Atomic size_t next;
} ck_items;

struct ck_pool {
    int n_threads;
    pthread_t *threads;
    _Atomic unsigned generation;
    // The last generation whose items are all claimed: a worker arriving later must not touch it.
    _Atomic unsigned closed;
    // Workers inside the current generation; the caller returns only when none is.
    _Atomic int inside;
    _Atomic int stopping;
    ck_items *items;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

typedef struct { ck_pool *pool; int ith; } ck_worker_arg;

static void ck_items_claim(ck_items *it, int ith) {
    size_t i;
    while ((i = atomic_fetch_add_explicit(&it->next, 1, memory_order_relaxed)) < it->n) it->fn(it->ctx, i, ith);
}

static void *ck_worker_main(void *p) {
    ck_worker_arg arg = *(ck_worker_arg *)p;
    free(p);
    ck_pool *pool = arg.pool;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        unsigned gen;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&pool->stopping, memory_order_acquire)) {
            if (++spins < CK_SPIN_ITERATIONS) { CK_PAUSE(); continue; }
            pthread_mutex_lock(&pool->mutex);
            while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&pool->stopping, memory_order_acquire)) {
                pthread_cond_wait(&pool->wake, &pool->mutex);
            }
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load_explicit(&pool->stopping, memory_order_acquire)) break;
        seen = gen;
        // Enter, then check the generation is still open (both sequentially consistent, against
        // the caller's close-then-count): either the caller waits for us, or we skip. `closed`
        // holds the latest closed generation and only grows, so "still open" is closed < gen
        // (wrap-aware), not closed != gen: a worker descheduled between reading `generation` and
        // entering could otherwise wake after later generations had closed too, and claim from
        // `pool->items`, by then a dead stack slot of the caller's, incrementing whatever lived
        // there (seen as a corrupted KVCache in the caller's attention, about 1 full test run in 5).
        atomic_fetch_add(&pool->inside, 1);
        if ((int)(atomic_load(&pool->closed) - gen) < 0) ck_items_claim(pool->items, arg.ith);
        atomic_fetch_sub(&pool->inside, 1);
    }
    return NULL;
}

ck_pool *ck_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    ck_pool *pool = calloc(1, sizeof(ck_pool));
    if (!pool) return NULL;
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) { free(pool); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        ck_worker_arg *arg = malloc(sizeof(ck_worker_arg));
        if (!arg) { pool->n_threads = i; break; }
        arg->pool = pool;
        arg->ith = i;
        if (pthread_create(&pool->threads[i], NULL, ck_worker_main, arg) != 0) {
            free(arg);
            pool->n_threads = i;
            break;
        }
    }
    return pool;
}

void ck_pool_destroy(ck_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store_explicit(&pool->stopping, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->threads);
    free(pool);
}

int ck_pool_size(const ck_pool *pool) { return pool ? pool->n_threads : 1; }

void ck_pool_for(ck_pool *pool, size_t n_items, ck_item_fn fn, void *ctx) {
    ck_items it = { fn, ctx, n_items, 0 };
    if (!pool || pool->n_threads == 1 || n_items < 2) { ck_items_claim(&it, 0); return; }
    pool->items = &it;
    pthread_mutex_lock(&pool->mutex);
    const unsigned gen = atomic_fetch_add_explicit(&pool->generation, 1, memory_order_acq_rel) + 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    ck_items_claim(&it, 0);
    // Every item is claimed; close the generation, then wait only for workers inside it (they are
    // running: yield once spinning goes on long enough that one was probably descheduled).
    atomic_store(&pool->closed, gen);
    int spins = 0;
    while (atomic_load(&pool->inside) > 0) {
        if (++spins < CK_SPIN_ITERATIONS) CK_PAUSE(); else sched_yield();
    }
}
