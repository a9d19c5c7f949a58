//! How a process that trains or attacks the model should run: its thread pool and its
//! allocator.
//!
//! Three process-wide settings decide a good part of the CPU throughput of a training step
//! (measured with `cargo xtask bench model`):
//!
//! - **The calling thread joins the pool.** The kernels (gemm, depthwise, BatchNorm) split
//!   their work over rayon's pool. Called from `main`, every op blocks the main thread while
//!   the workers run and leaves a third thread competing with the workers for the cores
//!   between ops. [`run`] executes the whole command on a worker of the pool instead.
//! - **Freed memory is kept for reuse.** A training step allocates and frees the same large
//!   activation and gradient buffers every time. glibc's default returns large blocks to the
//!   kernel on free (mmap / trim), so every step pays page faults and the kernel's zeroing of
//!   fresh pages. [`run`] raises the mmap threshold to its maximum, turns trimming off and
//!   keeps every thread on the main heap (glibc's per-thread arenas live in 64 MiB heaps that
//!   are unmapped when they empty; the command itself runs on a pool thread). glibc only;
//!   elsewhere the allocator is left alone.
//! - **No third thread spins.** candle runs its element-wise ops on its own small pool whose
//!   workers spin 25,000 times after every op before sleeping; beside a rayon pool as large
//!   as the machine, that spinning takes a core away from the next kernel. [`run`] shortens
//!   the spin to 500 unless `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set.

/// Tunes the allocator (see the module documentation) and runs `f` on a worker of a rayon
/// pool with the default number of threads (`RAYON_NUM_THREADS` or the number of cores).
///
/// ```
/// let answer = dfr_model::runtime::run(|| {
///     // Everything here (and every parallel kernel it calls) runs in the pool.
///     rayon::current_thread_index().is_some()
/// });
/// assert!(answer);
/// ```
///
/// If the pool's threads cannot be started, `f` runs on the calling thread (with a warning).
/// Library users who do not call `run` keep the default pool, allocator and spin count.
pub fn run<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    keep_freed_memory();
    if std::env::var_os(SPIN_LIMIT_VAR).is_none() {
        // Read by candle when its pool starts (on the first element-wise op, after this).
        std::env::set_var(SPIN_LIMIT_VAR, SPIN_LIMIT.to_string());
    }
    match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(f),
        Err(e) => {
            tracing::warn!("could not start a thread pool ({e}); running on the calling thread");
            f()
        }
    }
}

/// Sizes candle's element-wise pool for `threads` threads (unless `CANDLE_NUM_THREADS` is
/// set): for several computations side by side, each on its own rayon pool of `threads`.
/// With one thread every element-wise op runs inline on its caller; otherwise callers share
/// one pool and queue for it. candle sizes that pool once, on its first element-wise op, so
/// this only takes effect before the process's first one (later, the ops stay correct and
/// merely queue).
///
/// ```
/// dfr_model::runtime::limit_elementwise_threads(1);
/// ```
pub fn limit_elementwise_threads(threads: usize) {
    if std::env::var_os(NUM_THREADS_VAR).is_none() {
        std::env::set_var(NUM_THREADS_VAR, threads.max(1).to_string());
    }
}

/// candle's variable for the size of its element-wise pool.
const NUM_THREADS_VAR: &str = "CANDLE_NUM_THREADS";

/// candle's variable for the spin count of its element-wise pool's idle workers.
const SPIN_LIMIT_VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// The spin count [`run`] sets (candle's default: 25,000).
const SPIN_LIMIT: u32 = 500;

/// Keeps freed blocks in the heap for reuse instead of returning them to the kernel.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // 32 MiB is glibc's largest mmap threshold on 64-bit targets (HEAP_MAX_SIZE / 2);
        // larger blocks still go to mmap. The pad makes the heap grow in large steps.
        // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            libc::mallopt(libc::M_TOP_PAD, 256 << 20);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
