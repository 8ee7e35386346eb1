//! The operating-system calls the module makes that are not libflux: the
//! process's and the calling thread's CPU time, and the heap's release at
//! unload. They need `unsafe` (libc, mimalloc), so they live here, beside
//! the rest of the crate's unsafe code.

extern "C" {
    /// src/flux/mimalloc_release.c: `mi_option_enable(mi_option_destroy_on_exit)`.
    fn flux_prometheus_release_heap_at_unload();
}

/// Has the module's heap (mimalloc, the global allocator: see lib.rs) give
/// all its memory back to the system when the broker unloads the module.
///
/// mimalloc, linked into the module, is shut down by its destructor at
/// `dlclose`. By default it then keeps the address space it reserved (an
/// arena of 1 GiB) and frees only what the unloading thread allocated: each
/// load and unload of the module would leave both behind in the broker.
/// Releasing everything at that point is safe here, where it is not for a
/// process's own allocator: no code outside the module's allocates from
/// this heap, the module's threads have all ended by then, and nothing the
/// module allocated is freed by libflux or the broker (Rust frees what
/// Rust allocates; src/flux hands libflux no ownership of Rust memory).
pub fn release_heap_at_unload() {
    // SAFETY: sets one of mimalloc's options (no argument, no state of
    // ours); mimalloc reads it at its destructor.
    unsafe { flux_prometheus_release_heap_at_unload() }
}

/// CPU seconds (user + system) this process has used, to the microsecond.
/// The prometheus crate's process collector truncates to whole seconds,
/// which reads 0 for a broker that has been mostly idle.
pub fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given, or fails and leaves it.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: it returned 0, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// CPU seconds the calling thread has used. A publish's wall time on a
/// busy two-core machine includes the time the thread waited for a core;
/// its CPU time is what it cost.
pub fn thread_cpu_seconds() -> Option<f64> {
    let mut now = std::mem::MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: clock_gettime fills the struct it is given, or fails and
    // leaves it.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, now.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: it returned 0, so the struct is initialised.
    let now = unsafe { now.assume_init() };
    Some(now.tv_sec as f64 + now.tv_nsec as f64 / 1e9)
}
