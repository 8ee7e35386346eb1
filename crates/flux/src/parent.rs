//! A connection to the parent instance (`parent-uri`), for a module in a
//! nested instance to write its job's memo there.

use std::ptr::NonNull;
use std::time::Duration;

use super::callback::cstring;
use super::{sys, Error, Handle};

/// A handle on the parent instance, driven by the module's own reactor so
/// that its RPCs' answers arrive like any other. Closed when dropped.
pub struct Parent {
    handle: Handle,
}

impl Parent {
    /// Connects to `uri` (the broker's `parent-uri` attribute) and attaches
    /// the connection to `module`'s reactor.
    pub fn open(module: &Handle, uri: &str) -> Result<Parent, Error> {
        let c_uri = cstring(uri)?;
        // SAFETY: c_uri is a NUL-terminated string that outlives the call;
        // flux_open returns NULL (errno set) or a handle we now own.
        let raw = unsafe { sys::flux_open(c_uri.as_ptr(), 0) };
        let raw = NonNull::new(raw).ok_or_else(|| Error::last_os(&format!("flux_open {uri}")))?;
        let parent = Parent {
            handle: Handle { raw },
        };
        // SAFETY: both handles are valid; the module's reactor outlives the
        // parent handle, which Module drops before its reactor stops.
        let rc = unsafe {
            sys::flux_set_reactor(raw.as_ptr(), sys::flux_get_reactor(module.raw.as_ptr()))
        };
        if rc < 0 {
            return Err(Error::last_os("flux_set_reactor"));
        }
        Ok(parent)
    }

    /// The parent's handle, for RPCs on the module's reactor.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// An RPC that waits at most `timeout` for its answer: for the last
    /// word at unload, when the reactor no longer runs.
    pub fn rpc_wait_for(
        &self,
        topic: &str,
        payload: &str,
        timeout: Duration,
    ) -> Result<String, Error> {
        self.handle.rpc_wait_for(topic, payload, timeout)
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by Parent::open and is closed only
        // here; every RPC made on it is dropped before (its owner holds it
        // alongside this Parent and drops them first).
        unsafe { sys::flux_close(self.handle.raw.as_ptr()) };
    }
}
