//! The operating-system calls the module and the shell plugin make that
//! are not libflux: the process's, its children's and the calling
//! thread's CPU time, the system's units, and the heap's release at
//! unload. They need `unsafe` (libc, mimalloc), so they live here, beside
//! the rest of the crate's unsafe code.

extern "C" {
    /// src/mimalloc_release.c: `mi_option_enable(mi_option_destroy_on_exit)`.
    fn flux_prometheus_release_heap_at_unload();
}

/// Has the module's heap (mimalloc, the global allocator: see the module's src/lib.rs) give
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
/// Rust allocates; this crate hands libflux no ownership of Rust memory).
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

/// Asks the scheduler for a short time slice for the calling thread,
/// keeping its nice value and policy: Linux's EEVDF scheduler (6.12 and
/// later) then lets the thread preempt a running thread of longer slice
/// when it wakes, instead of waiting for that thread's slice to end. Its
/// share of the CPU is unchanged: that is the weight, which the nice value
/// sets. Kernels before 6.12 ignore the slice for `SCHED_OTHER`; the call
/// still succeeds there and changes nothing.
///
/// Returns the error of `sched_setattr` where the kernel refuses it (a
/// kernel without the call, or a policy other than `SCHED_OTHER`, which is
/// left as it is).
pub fn request_wakeup_slice(slice: std::time::Duration) -> std::io::Result<()> {
    // SAFETY: gettid takes no argument and cannot fail.
    let tid = unsafe { libc::gettid() };
    // SAFETY: sched_getscheduler reads the policy of the thread named.
    let policy = unsafe { libc::sched_getscheduler(tid) };
    if policy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if policy != libc::SCHED_OTHER {
        // A real-time or batch policy set by the administrator is kept.
        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
    }
    // sched_setattr sets the nice value too: the thread's own is passed
    // back, so that neither a nice set by the administrator nor the
    // broker's is changed. getpriority returns -1 both as a nice value and
    // on error, so errno tells the two apart.
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: getpriority reads the nice value of the thread named.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    let errno = std::io::Error::last_os_error();
    if nice == -1 && errno.raw_os_error() != Some(0) {
        return Err(errno);
    }
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: the kernel reads `size` bytes of the struct passed, which is
    // the struct's own size; libc has no wrapper for this call.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, tid, &attr as *const _, 0u32) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn slice_ns() -> Option<u64> {
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        sched
            .lines()
            .find(|l| l.starts_with("se.slice"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn the_thread_gets_the_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: gettid cannot fail; setpriority changes this
            // thread's nice value only (Linux: a TID names one thread).
            let tid = unsafe { libc::gettid() } as libc::id_t;
            // SAFETY: as above.
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 3) }, 0);
            request_wakeup_slice(Duration::from_micros(100)).expect("sched_setattr");
            // SAFETY: getpriority reads this thread's nice value.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }, 3);
            // Kernels with EEVDF (6.6 and later) show each thread's slice.
            if let Some(ns) = slice_ns() {
                assert_eq!(ns, 100_000);
            }
        })
        .join()
        .expect("the thread");
    }
}

/// What `getrusage` says of a process or of its children.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rusage {
    pub user_seconds: f64,
    pub system_seconds: f64,
    /// The largest resident set: of the process, or of the largest child.
    pub max_rss_bytes: u64,
}

fn rusage(who: libc::c_int) -> Option<Rusage> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: ru is a valid out pointer for one struct rusage.
    if unsafe { libc::getrusage(who, ru.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: getrusage succeeded and filled it.
    let ru = unsafe { ru.assume_init() };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Some(Rusage {
        user_seconds: secs(ru.ru_utime),
        system_seconds: secs(ru.ru_stime),
        max_rss_bytes: u64::try_from(ru.ru_maxrss).unwrap_or(0) * 1024,
    })
}

/// This process's children that have ended and were waited for, and
/// their own waited-for descendants (`RUSAGE_CHILDREN`).
pub fn children_rusage() -> Option<Rusage> {
    rusage(libc::RUSAGE_CHILDREN)
}

/// This process itself (`RUSAGE_SELF`).
pub fn self_rusage() -> Option<Rusage> {
    rusage(libc::RUSAGE_SELF)
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s CPU times.
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as f64
    } else {
        100.0
    }
}

/// The page size, the unit of `/proc/PID/stat`'s resident set.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}
