//! The symbol the broker looks up: the only one the shared object exports.

use std::os::raw::{c_char, c_int};

use super::sys::flux_t;

/// The broker module entry point (RFC 5): called once, in the module's own
/// thread, with the module arguments. Returns 0, or -1 with errno set.
///
/// "C-unwind": a thread cancellation by the broker may unwind through it.
///
/// # Safety
/// Called by the Flux broker with its module handle and argument vector.
#[no_mangle]
pub unsafe extern "C-unwind" fn mod_main(
    h: *mut flux_t,
    argc: c_int,
    argv: *mut *mut c_char,
) -> c_int {
    // SAFETY: h and argv are as the broker passes them to mod_main.
    unsafe { super::run_module_main(h, argc, argv, crate::module::start) }
}
