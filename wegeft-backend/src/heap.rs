//! Keeps the memory a training step frees for the next step, instead of handing it back to the
//! kernel and faulting it in again.
//!
//! Every burn op allocates its output, and a step frees and reallocates the same tensor sizes
//! step after step. glibc serves allocations from 128 KiB up with `mmap` (the threshold adapts
//! only up to what was freed) and trims the heap's free top at 128 KiB, so each step faults its
//! activations in page by page; a page fault costs microseconds, more inside a VM. On the
//! project's 2-core VM this cost a ViT-S step 10 % and the frozen GELU half of its time
//! (BENCHMARKS.md). Tensors up to 32 MiB now come from the heap, which is trimmed only past
//! 1 GiB of free top.

/// Raises glibc's `mmap` and trim thresholds; a no-op elsewhere, or when the user tunes the
/// allocator through `GLIBC_TUNABLES` (theirs wins; other tunables, such as the CPU features
/// `bench --cpu-capability` masks, leave ours in place).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !std::env::var("GLIBC_TUNABLES").is_ok_and(|tunables| tunables.contains("glibc.malloc.")) {
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: mallopt only sets allocator parameters; it is called before the job allocates.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
