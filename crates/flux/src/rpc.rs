//! RPCs: a blocking one for module load, and RPC futures whose responses
//! (one, or a stream) go to a Rust closure on the reactor.

use std::cell::RefCell;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;
use std::rc::Rc;
use std::time::Duration;

use super::callback::{owned_string, Callback};
use super::error::current_errno;
use super::lifecycle::CancelGuard;
use super::{strerror, sys, Error, Handle, Level};

type ResponseCallback = Callback<dyn FnMut(Result<String, Error>)>;

impl Handle {
    /// A blocking RPC, for use before the reactor runs (module load).
    pub fn rpc_wait(&self, topic: &str, payload: &str) -> Result<String, Error> {
        let f = self.send(topic, payload, false, sys::FLUX_NODEID_ANY)?;
        // SAFETY: f is a valid future; flux_rpc_get blocks for its response.
        let result = unsafe { future_result(f, topic) };
        // SAFETY: f was created above and is not used after this.
        unsafe { sys::flux_future_destroy(f) };
        result
    }

    /// A blocking RPC that gives up after `timeout`, for when the reactor
    /// no longer runs (module unload).
    pub fn rpc_wait_for(
        &self,
        topic: &str,
        payload: &str,
        timeout: std::time::Duration,
    ) -> Result<String, Error> {
        let f = self.send(topic, payload, false, sys::FLUX_NODEID_ANY)?;
        // SAFETY: f is a valid future; flux_future_wait_for blocks at most
        // `timeout` for its response.
        let result = if unsafe { sys::flux_future_wait_for(f, timeout.as_secs_f64()) } < 0 {
            Err(Error::last_os(topic))
        } else {
            // SAFETY: f is valid and its response has arrived.
            unsafe { future_result(f, topic) }
        };
        // SAFETY: f was created above and is not used after this.
        unsafe { sys::flux_future_destroy(f) };
        result
    }

    /// Sends an RPC and calls `on_response` from the reactor for its response,
    /// or for each response when `streaming`. An error response (ENODATA ends
    /// a stream normally) is passed as `Err` and is the last call.
    pub fn rpc(
        &self,
        topic: &str,
        payload: &str,
        streaming: bool,
        on_response: impl FnMut(Result<String, Error>) + 'static,
    ) -> Result<Rpc, Error> {
        let f = self.send(topic, payload, streaming, sys::FLUX_NODEID_ANY)?;
        // SAFETY: f is a new RPC future of ours.
        unsafe { self.then(f, topic, Response::Payload, None, on_response) }
    }

    /// Sends an RPC to the service on broker rank `rank` (not the nearest
    /// one) and calls `on_response` from the reactor with its one response,
    /// or with ETIMEDOUT if none has come `within` that time.
    pub fn rpc_to(
        &self,
        rank: u32,
        topic: &str,
        payload: &str,
        within: Option<Duration>,
        on_response: impl FnMut(Result<String, Error>) + 'static,
    ) -> Result<Rpc, Error> {
        let f = self.send(topic, payload, false, rank)?;
        // SAFETY: f is a new RPC future of ours.
        unsafe { self.then(f, topic, Response::Payload, within, on_response) }
    }

    /// Sends an RPC to the service on the broker above this one in the
    /// overlay (its parent) and calls `on_response` from the reactor with
    /// its one response, or with ETIMEDOUT if none has come `within` that
    /// time. Only for a service every broker has (`attr.get`): flux-core
    /// 0.88 routes a request that finds no service there back down towards
    /// its sender.
    pub fn rpc_upstream(
        &self,
        topic: &str,
        payload: &str,
        within: Option<Duration>,
        on_response: impl FnMut(Result<String, Error>) + 'static,
    ) -> Result<Rpc, Error> {
        let f = self.send(topic, payload, false, sys::FLUX_NODEID_UPSTREAM)?;
        // SAFETY: f is a new RPC future of ours.
        unsafe { self.then(f, topic, Response::Payload, within, on_response) }
    }

    /// Calls `on_response` from the reactor when future `f` is fulfilled
    /// (with ETIMEDOUT when it is not `within` that time):
    /// with the response's payload for an RPC, with "" for a future that
    /// carries none (a KVS commit). The returned [`Rpc`] owns `f`.
    ///
    /// # Safety
    /// `f` must be a valid future nobody else destroys or continues, and an
    /// RPC future where `response` is [`Response::Payload`].
    pub(super) unsafe fn then(
        &self,
        f: *mut sys::flux_future_t,
        topic: &str,
        response: Response,
        within: Option<Duration>,
        on_response: impl FnMut(Result<String, Error>) + 'static,
    ) -> Result<Rpc, Error> {
        let timeout = within.map_or(-1.0, |d| d.as_secs_f64());
        let callback: Rc<ResponseCallback> = Rc::new(Callback {
            handle: *self,
            topic: topic.to_string(),
            f: RefCell::new(on_response),
        });
        let arg = Box::into_raw(Box::new(callback));
        let continuation = match response {
            Response::Payload => rpc_continuation as unsafe extern "C" fn(_, _),
            Response::Fulfilled => fulfilled_continuation,
            Response::KvsValue => kvs_value_continuation,
        };
        // SAFETY: f is valid; arg stays valid until Rpc::drop, which destroys
        // the future (and so its continuation) before freeing arg.
        if unsafe { sys::flux_future_then(f, timeout, Some(continuation), arg.cast()) } < 0 {
            let err = Error::last_os("flux_future_then");
            // SAFETY: the continuation was not registered; both are ours.
            unsafe {
                sys::flux_future_destroy(f);
                drop(Box::from_raw(arg));
            }
            return Err(err);
        }
        Ok(Rpc {
            future: f,
            callback: arg,
        })
    }
}

/// # Safety
/// `f` must be a valid future whose response has arrived or may block.
unsafe fn future_result(f: *mut sys::flux_future_t, topic: &str) -> Result<String, Error> {
    // SAFETY: the caller's promise, with the getter of an RPC's payload.
    unsafe { string_result(f, topic, sys::flux_rpc_get) }
}

/// The string a future holds, read by `get` (`flux_rpc_get`,
/// `flux_kvs_lookup_get`), or its error.
///
/// # Safety
/// `f` must be a valid future of the kind `get` reads.
unsafe fn string_result(
    f: *mut sys::flux_future_t,
    topic: &str,
    get: unsafe extern "C" fn(*mut sys::flux_future_t, *mut *const c_char) -> c_int,
) -> Result<String, Error> {
    let mut s: *const c_char = ptr::null();
    // SAFETY: f is a valid future (the caller's promise); s is a valid out
    // pointer.
    if unsafe { get(f, &mut s) } < 0 {
        let errno = current_errno();
        // SAFETY: the error string is NULL or owned by f, copied at once.
        let detail = unsafe { owned_string(sys::flux_future_error_string(f)) }
            .unwrap_or_else(|| strerror(errno));
        return Err(Error::new(errno, format!("{topic}: {detail}")));
    }
    // SAFETY: s is NULL or the string owned by f, copied at once.
    Ok(unsafe { owned_string(s) }.unwrap_or_default())
}

/// What a future's continuation hands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Response {
    /// An RPC's response payload (`flux_rpc_get`).
    Payload,
    /// Only that the future was fulfilled (`flux_future_get`), as "".
    Fulfilled,
    /// A KVS lookup's value (`flux_kvs_lookup_get`).
    KvsValue,
}

/// # Safety
/// `f` must be a valid, fulfilled KVS lookup future.
unsafe fn kvs_value(f: *mut sys::flux_future_t, topic: &str) -> Result<String, Error> {
    // SAFETY: the caller's promise, with the getter of a lookup's value.
    unsafe { string_result(f, topic, sys::flux_kvs_lookup_get) }
}

unsafe extern "C" fn kvs_value_continuation(f: *mut sys::flux_future_t, arg: *mut c_void) {
    // SAFETY: as for rpc_continuation, with a KVS lookup future.
    unsafe { continue_with(f, arg, Response::KvsValue) }
}

/// # Safety
/// `f` must be a valid, fulfilled future.
unsafe fn fulfilled(f: *mut sys::flux_future_t, topic: &str) -> Result<String, Error> {
    // SAFETY: f is valid and fulfilled (the caller's promise); the result
    // pointer may be NULL when it is not wanted.
    if unsafe { sys::flux_future_get(f, ptr::null_mut()) } < 0 {
        let errno = current_errno();
        // SAFETY: the error string is NULL or owned by f, copied at once.
        let detail = unsafe { owned_string(sys::flux_future_error_string(f)) }
            .unwrap_or_else(|| strerror(errno));
        return Err(Error::new(errno, format!("{topic}: {detail}")));
    }
    Ok(String::new())
}

unsafe extern "C" fn fulfilled_continuation(f: *mut sys::flux_future_t, arg: *mut c_void) {
    // SAFETY: as for rpc_continuation, with a future whose result is read
    // by flux_future_get.
    unsafe { continue_with(f, arg, Response::Fulfilled) }
}

unsafe extern "C" fn rpc_continuation(f: *mut sys::flux_future_t, arg: *mut c_void) {
    // SAFETY: libflux calls this with the future and the argument
    // Handle::then registered.
    unsafe { continue_with(f, arg, Response::Payload) }
}

/// # Safety
/// `f` must be the fulfilled future and `arg` the argument Handle::then
/// registered with it.
unsafe fn continue_with(f: *mut sys::flux_future_t, arg: *mut c_void, response: Response) {
    let _no_cancel = CancelGuard::new();
    // Keep the closure alive through the call, even if it drops its own Rpc.
    // SAFETY: arg is the Rc<ResponseCallback> Handle::then boxed; it lives
    // until Rpc::drop destroys the future, so while this runs.
    let callback = Rc::clone(unsafe { &*(arg as *const Rc<ResponseCallback>) });
    let result = match response {
        // SAFETY: libflux calls this with the future whose response arrived.
        Response::Payload => unsafe { future_result(f, &callback.topic) },
        // SAFETY: the same future, fulfilled.
        Response::Fulfilled => unsafe { fulfilled(f, &callback.topic) },
        // SAFETY: the same future, a KVS lookup's.
        Response::KvsValue => unsafe { kvs_value(f, &callback.topic) },
    };
    // Re-arm for the next streamed response before user code may destroy f.
    if result.is_ok() {
        // SAFETY: f is valid until the closure below runs.
        unsafe { sys::flux_future_reset(f) };
    }
    callback
        .handle
        .guarded(&callback.topic, || match callback.f.try_borrow_mut() {
            Ok(mut on_response) => on_response(result),
            Err(_) => callback
                .handle
                .log(Level::Err, "RPC continuation re-entered; response dropped"),
        });
}

/// An RPC in flight. Dropping it destroys the future: no more responses.
pub struct Rpc {
    future: *mut sys::flux_future_t,
    callback: *mut Rc<ResponseCallback>,
}

impl Drop for Rpc {
    fn drop(&mut self) {
        // SAFETY: both were created together in Handle::rpc and are freed
        // only here; destroying the future first unregisters the callback.
        unsafe {
            sys::flux_future_destroy(self.future);
            drop(Box::from_raw(self.callback));
        }
    }
}
