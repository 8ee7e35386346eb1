//! The operating-system calls the module makes that are not libflux: the
//! process's and the calling thread's CPU time. They need `unsafe` (libc),
//! so they live here, beside the rest of the crate's unsafe code.

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
