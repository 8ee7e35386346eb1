//! The operating-system call the module makes that is not libflux: the
//! process's CPU time. It needs `unsafe` (libc), so it lives here, beside
//! the rest of the crate's unsafe code.

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
