//! The module's broker handle: logging, attributes, identity and the
//! reactor clock. RPCs, timers and request handlers are made from it in
//! their own files.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use super::callback::{cstring, owned_string, panic_message};
use super::{sys, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Err,
    Warning,
    Info,
    Debug,
}

impl Level {
    fn raw(self) -> c_int {
        match self {
            Level::Err => sys::LOG_ERR,
            Level::Warning => sys::LOG_WARNING,
            Level::Info => sys::LOG_INFO,
            Level::Debug => sys::LOG_DEBUG,
        }
    }
}

thread_local! {
    /// Requests this module has sent, by service (a topic up to its first
    /// dot), for [`Handle::requests_sent_to`]. Thread-local because only
    /// the reactor thread sends, and each loaded module has its own.
    static SENT: RefCell<Vec<(String, u64)>> = const { RefCell::new(Vec::new()) };
}

/// The module's broker handle. Valid for the life of `mod_main`, owned by the
/// broker, and usable only on the reactor thread (`!Send` by construction).
#[derive(Clone, Copy)]
pub struct Handle {
    pub(super) raw: NonNull<sys::flux_t>,
}

impl Handle {
    /// Runs `f`, logging a panic instead of letting it unwind into C.
    pub(super) fn guarded(&self, what: &str, f: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            self.log(
                Level::Err,
                &format!("panic in {what}: {}", panic_message(&*payload)),
            );
        }
    }

    pub fn log(&self, level: Level, msg: &str) {
        let text = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: valid handle; the format string is a literal "%s" and its
        // one argument a NUL-terminated string that outlives the call.
        unsafe {
            sys::flux_log(
                self.raw.as_ptr(),
                level.raw(),
                c"%s".as_ptr(),
                text.as_ptr(),
            );
        }
    }

    /// A broker attribute, or None where it is not set.
    pub fn attr(&self, name: &str) -> Option<String> {
        let name = cstring(name).ok()?;
        // SAFETY: valid handle and name; the result is owned by the handle's
        // attribute cache and copied at once.
        unsafe { owned_string(sys::flux_attr_get(self.raw.as_ptr(), name.as_ptr())) }
    }

    /// The module's name: `--name`, or the file name up to its first dot.
    pub fn module_name(&self) -> Option<String> {
        // SAFETY: valid handle; "flux::name" is a NUL-terminated string the
        // module loader stores for the life of the handle.
        unsafe { owned_string(sys::flux_aux_get(self.raw.as_ptr(), c"flux::name".as_ptr()).cast()) }
    }

    pub fn rank(&self) -> Result<u32, Error> {
        let mut rank = 0u32;
        // SAFETY: valid handle, valid out pointer.
        if unsafe { sys::flux_get_rank(self.raw.as_ptr(), &mut rank) } < 0 {
            return Err(Error::last_os("flux_get_rank"));
        }
        Ok(rank)
    }

    pub fn size(&self) -> Result<u32, Error> {
        let mut size = 0u32;
        // SAFETY: valid handle, valid out pointer.
        if unsafe { sys::flux_get_size(self.raw.as_ptr(), &mut size) } < 0 {
            return Err(Error::last_os("flux_get_size"));
        }
        Ok(size)
    }

    pub(super) fn reactor(&self) -> *mut sys::flux_reactor_t {
        // SAFETY: valid handle; the reactor lives as long as the handle.
        unsafe { sys::flux_get_reactor(self.raw.as_ptr()) }
    }

    /// The reactor's cached time (seconds since the epoch).
    pub fn now(&self) -> f64 {
        // SAFETY: valid reactor.
        unsafe { sys::flux_reactor_now(self.reactor()) }
    }

    /// Sends a request; the future is the caller's to destroy.
    pub(super) fn send(
        &self,
        topic: &str,
        payload: &str,
        streaming: bool,
        nodeid: u32,
    ) -> Result<*mut sys::flux_future_t, Error> {
        let topic_c = cstring(topic)?;
        let payload_c = cstring(payload)?;
        let flags = if streaming {
            sys::FLUX_RPC_STREAMING
        } else {
            0
        };
        // SAFETY: valid handle and strings; flux_rpc copies them.
        let f = unsafe {
            sys::flux_rpc(
                self.raw.as_ptr(),
                topic_c.as_ptr(),
                payload_c.as_ptr(),
                nodeid,
                flags,
            )
        };
        if f.is_null() {
            return Err(Error::last_os(topic));
        }
        count_sent(topic);
        Ok(f)
    }

    /// Requests sent so far to `service` by this module: to tell them from
    /// other clients' in the service's own message counters (its
    /// `stats-get`), which count every request it has received.
    pub fn requests_sent_to(&self, service: &str) -> u64 {
        SENT.with_borrow(|sent| {
            sent.iter()
                .find(|(name, _)| name == service)
                .map_or(0, |(_, n)| *n)
        })
    }
}

fn count_sent(topic: &str) {
    let service = topic.split('.').next().unwrap_or(topic);
    SENT.with_borrow_mut(
        |sent| match sent.iter_mut().find(|(name, _)| name == service) {
            Some((_, n)) => *n += 1,
            None => sent.push((service.to_string(), 1)),
        },
    );
}
