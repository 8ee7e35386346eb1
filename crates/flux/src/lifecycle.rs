//! The module's life on its thread: start it, run the reactor, tear it
//! down, and keep the broker's thread cancellation from unwinding through
//! Rust frames that own anything, or through libflux while it holds a lock.

use std::cell::RefCell;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use super::callback::{owned_string, panic_message};
use super::error::{current_errno, set_errno};
use super::{strerror, sys, Error, Handle, Level};

fn set_cancelable(enable: bool) -> bool {
    let state = if enable {
        sys::PTHREAD_CANCEL_ENABLE
    } else {
        sys::PTHREAD_CANCEL_DISABLE
    };
    let mut old = 0;
    // SAFETY: changes only this thread's cancelability state.
    unsafe { sys::pthread_setcancelstate(state, &mut old) };
    old == sys::PTHREAD_CANCEL_ENABLE
}

/// Defers thread cancellation while Rust code runs on the module thread:
/// a forced unwind through Rust frames that own values is undefined.
pub(super) struct CancelGuard {
    was_enabled: bool,
}

impl CancelGuard {
    pub(super) fn new() -> CancelGuard {
        CancelGuard {
            was_enabled: set_cancelable(false),
        }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.was_enabled {
            set_cancelable(true);
        }
    }
}

/// A running module. Dropping it is the orderly teardown (on the reactor
/// thread, with the handle still open).
pub trait ModuleInstance {
    /// Called instead of drop when the broker cancelled the module thread
    /// and has already closed the handle: stop every thread the module
    /// started, and touch no Flux object (leak them instead).
    fn abandon(self: Box<Self>);
}

/// Holds the running module while the reactor runs, so that no Rust frame
/// on the module thread owns anything then.
struct Slot(RefCell<Option<Box<dyn ModuleInstance>>>);

impl Drop for Slot {
    // Runs at thread exit. Only a cancelled thread still has a module here.
    fn drop(&mut self) {
        if let Some(module) = self.0.borrow_mut().take() {
            module.abandon();
        }
    }
}

thread_local! {
    static RUNNING: Slot = const { Slot(RefCell::new(None)) };
}

pub type ModuleStart = fn(Handle, Vec<String>) -> Result<Box<dyn ModuleInstance>, Error>;

/// Starts the module and parks it in the thread-local slot; 0, or -1 with
/// errno set after logging why.
///
/// # Safety
/// `argv` must hold `argc` NUL-terminated strings (or be NULL).
unsafe fn start_module(
    handle: Handle,
    argc: c_int,
    argv: *mut *mut c_char,
    start: ModuleStart,
) -> c_int {
    let mut args = Vec::new();
    if !argv.is_null() {
        for i in 0..usize::try_from(argc).unwrap_or(0) {
            // SAFETY: argv holds argc NUL-terminated strings (the caller's
            // promise); each is copied.
            if let Some(arg) = unsafe { owned_string(*argv.add(i)) } {
                args.push(arg);
            }
        }
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let module = start(handle, args)?;
        RUNNING.with(|slot| *slot.0.borrow_mut() = Some(module));
        Ok(())
    }));
    fail_with(handle, outcome)
}

/// Tears the module down in order after the reactor has stopped.
fn stop_module(handle: Handle, reactor_result: Result<(), Error>) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let module = RUNNING.with(|slot| slot.0.borrow_mut().take());
        drop(module);
        reactor_result
    }));
    fail_with(handle, outcome)
}

fn fail_with(handle: Handle, outcome: std::thread::Result<Result<(), Error>>) -> c_int {
    let err = match outcome {
        Ok(Ok(())) => return 0,
        Ok(Err(err)) => err,
        Err(payload) => Error::new(
            libc::EPROTO,
            format!("internal error (panic): {}", panic_message(&*payload)),
        ),
    };
    handle.log(Level::Err, &err.message);
    set_errno(if err.errno == 0 {
        libc::EINVAL
    } else {
        err.errno
    });
    -1
}

/// How often, in seconds, the module thread looks for a cancellation the
/// broker asked for: `flux module remove --cancel`, and an instance exiting
/// with the module still loaded, wait at most this long for the thread.
/// Each look wakes the idle module thread (BENCHMARKS.md, "Idle at the
/// largest size"), so it is not made shorter.
pub const CANCEL_POLL_PERIOD: f64 = 1.0;

/// The module thread's one cancellation point, called by a reactor timer:
/// the broker's cancellation, pending since it was asked, acts here.
///
/// Cancellation is otherwise disabled for the whole of the reactor's run,
/// waits included. libflux reads and writes the eventfd of the module's
/// message queues while it holds the queue's mutex (msg_deque.c); both are
/// cancellation points, so a thread cancelled there kept the mutex, and
/// the broker's cleanup of the thread (`flux_module_finalize`, an RPC over
/// the same queue) then waited for it forever, as did the broker's own
/// thread at its next message for the module: the whole instance hung. A
/// timer callback runs with no libflux lock held.
///
/// "C-unwind", and nothing on its frame owns anything: the forced unwind
/// of the cancellation passes through it.
unsafe extern "C-unwind" fn cancellation_point(
    _r: *mut sys::flux_reactor_t,
    _w: *mut sys::flux_watcher_t,
    _revents: c_int,
    _arg: *mut c_void,
) {
    set_cancelable(true);
    // SAFETY: no frame of ours between here and mod_main owns anything
    // (see run_module_main); a pending cancellation unwinds from here.
    unsafe { sys::pthread_testcancel() };
    set_cancelable(false);
}

/// The repeating timer that calls [`cancellation_point`], started; None
/// (errno set) if libflux could not make it.
fn start_cancellation_timer(reactor: *mut sys::flux_reactor_t) -> Option<*mut sys::flux_watcher_t> {
    type UnwindingWatcherFn = unsafe extern "C-unwind" fn(
        *mut sys::flux_reactor_t,
        *mut sys::flux_watcher_t,
        c_int,
        *mut c_void,
    );
    type WatcherFn = unsafe extern "C" fn(
        *mut sys::flux_reactor_t,
        *mut sys::flux_watcher_t,
        c_int,
        *mut c_void,
    );
    // SAFETY: the two function pointer types differ only in whether an
    // unwind may leave the function, which the C caller does not see.
    let callback =
        unsafe { std::mem::transmute::<UnwindingWatcherFn, WatcherFn>(cancellation_point) };
    // SAFETY: valid reactor; the callback takes no argument.
    let w = unsafe {
        sys::flux_timer_watcher_create(
            reactor,
            CANCEL_POLL_PERIOD,
            CANCEL_POLL_PERIOD,
            Some(callback),
            std::ptr::null_mut(),
        )
    };
    if w.is_null() {
        return None;
    }
    // SAFETY: the watcher was just created.
    unsafe { sys::flux_watcher_start(w) };
    Some(w)
}

/// The whole of `mod_main`: start the module, run the reactor until `flux
/// module remove` stops it, tear the module down. Any panic is contained and
/// becomes -1 with errno set, after its message is logged (`flux dmesg`).
///
/// The broker may cancel this thread (`flux module remove --cancel`, and
/// modules still loaded when the instance exits). Cancellation stays
/// disabled throughout, except in [`cancellation_point`], which a timer
/// calls every [`CANCEL_POLL_PERIOD`]. The only Rust frames then on the
/// stack are that one, this one and `mod_main`, and none owns anything, so
/// the forced unwind passes through them; the module itself sits in the
/// thread-local slot, whose destructor abandons it at thread exit.
///
/// # Safety
/// `h` and `argv` must be as the broker passes them to mod_main.
pub unsafe fn run_module_main(
    h: *mut sys::flux_t,
    argc: c_int,
    argv: *mut *mut c_char,
    start: ModuleStart,
) -> c_int {
    set_cancelable(false);
    super::os::release_heap_at_unload();
    let Some(raw) = NonNull::new(h) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    let handle = Handle { raw };
    let reactor = handle.reactor();
    let Some(cancellation_timer) = start_cancellation_timer(reactor) else {
        let errno = current_errno();
        handle.log(
            Level::Err,
            &format!("cannot create the cancellation timer: {}", strerror(errno)),
        );
        set_errno(errno);
        return -1;
    };
    // SAFETY: argv is as the broker passed it (the caller's promise).
    if unsafe { start_module(handle, argc, argv, start) } < 0 {
        let errno = current_errno();
        // SAFETY: the timer is ours and not used after this.
        unsafe { sys::flux_watcher_destroy(cancellation_timer) };
        set_errno(errno);
        return -1;
    }
    // SAFETY: valid reactor, run on the module's own thread.
    let rc = unsafe { sys::flux_reactor_run(reactor, 0) };
    let run_errno = current_errno();
    // SAFETY: the timer is ours and not used after this.
    unsafe { sys::flux_watcher_destroy(cancellation_timer) };
    let reactor_result = if rc < 0 {
        Err(Error::new(
            run_errno,
            format!("flux_reactor_run: {}", strerror(run_errno)),
        ))
    } else {
        Ok(())
    };
    stop_module(handle, reactor_result)
}
