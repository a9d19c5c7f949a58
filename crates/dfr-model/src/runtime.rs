//! How a process that trains or attacks the model should run: its thread pool and its
//! allocator.
//!
//! Two process-wide settings decide a good part of the CPU throughput of a training step
//! (measured with `cargo xtask bench model`, see ARCHITECTURE.md):
//!
//! - **The calling thread joins the pool.** The kernels (gemm, depthwise, BatchNorm) split
//!   their work over rayon's pool. Called from `main`, every op blocks the main thread while
//!   the workers run and leaves a third thread competing with the workers for the cores
//!   between ops. [`run`] executes the whole command on a worker of the pool instead.
//! - **Freed memory is kept for reuse.** A training step allocates and frees the same large
//!   activation and gradient buffers every time. glibc's default returns large blocks to the
//!   kernel on free (mmap / trim), so every step pays page faults and the kernel's zeroing of
//!   fresh pages. [`run`] raises the mmap threshold to its maximum and turns trimming off
//!   (glibc only; elsewhere the allocator is left alone).

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
/// # Panics
/// Only if the operating system refuses to start the pool's threads.
pub fn run<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    keep_freed_memory();
    match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(f),
        Err(e) => {
            tracing::warn!("could not start a thread pool ({e}); running on the calling thread");
            f()
        }
    }
}

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
        }
    }
}
