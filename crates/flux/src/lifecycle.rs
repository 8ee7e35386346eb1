//! The module's life on its thread: start it, run the reactor, tear it
//! down, and keep the broker's thread cancellation from unwinding through
//! Rust frames that own anything.

use std::cell::RefCell;
use std::os::raw::{c_char, c_int};
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

/// The whole of `mod_main`: start the module, run the reactor until `flux
/// module remove` stops it, tear the module down. Any panic is contained and
/// becomes -1 with errno set, after its message is logged (`flux dmesg`).
///
/// While the reactor waits, the broker may cancel this thread (it does so
/// to modules still loaded when the instance exits). The only Rust frames
/// then on the stack are this one and `mod_main`, and neither owns anything,
/// so the forced unwind passes through them; the module itself sits in the
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
    // SAFETY: argv is as the broker passed it (the caller's promise).
    if unsafe { start_module(handle, argc, argv, start) } < 0 {
        return -1;
    }
    let reactor = handle.reactor();
    set_cancelable(true);
    // SAFETY: valid reactor, run on the module's own thread.
    let rc = unsafe { sys::flux_reactor_run(reactor, 0) };
    let run_errno = current_errno();
    set_cancelable(false);
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
