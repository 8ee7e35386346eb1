//! What every callback from C shares: the closure with what is needed to
//! report its panics, and the string conversions at the boundary.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;

use super::{Error, Handle};

/// A closure that C calls back, with what is needed to report its panics.
pub(super) struct Callback<F: ?Sized> {
    pub(super) handle: Handle,
    pub(super) topic: String,
    pub(super) f: RefCell<F>,
}

pub(super) fn cstring(s: &str) -> Result<CString, Error> {
    CString::new(s)
        .map_err(|_| Error::new(libc::EINVAL, format!("string contains a NUL byte: {s:?}")))
}

/// Copies a C string that libflux owns, replacing invalid UTF-8.
///
/// # Safety
/// `s` must be NULL or point to a NUL-terminated string.
pub(super) unsafe fn owned_string(s: *const c_char) -> Option<String> {
    if s.is_null() {
        None
    } else {
        // SAFETY: the caller promises a NUL-terminated string; it is copied
        // before this returns.
        let text = unsafe { CStr::from_ptr(s) };
        // Every response comes through here, journal events included.
        // `to_str` checks UTF-8 a word at a time where it is ASCII; the
        // lossy path walks every byte, and was 5.7 % of the reactor
        // thread's instructions (BENCHMARKS.md, "Broker instructions per job").
        Some(match text.to_str() {
            Ok(valid) => valid.to_owned(),
            Err(_) => text.to_string_lossy().into_owned(),
        })
    }
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
