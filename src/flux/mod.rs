//! The only place that calls libflux or uses `unsafe`.
//!
//! It gives the rest of the crate safe, single-threaded types: a [`Handle`]
//! (which is `!Send`, so it cannot reach the HTTP thread), RPC futures whose
//! continuations are Rust closures, timers and request handlers. Every
//! callback that C calls catches panics and logs them with flux_log: an
//! unwinding panic must never cross into the broker.

pub mod entry;
pub mod sys;

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::rc::Rc;

/// An error from libflux (or from this module, in the same shape): an errno
/// and, where Flux gave one, its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub errno: i32,
    pub message: String,
}

impl Error {
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        Error {
            errno,
            message: message.into(),
        }
    }

    fn last_os(context: &str) -> Self {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        Error::new(errno, format!("{context}: {}", strerror(errno)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

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

/// Lowers the calling thread's scheduling priority (Linux nice values are
/// per thread). Not libflux, but unsafe, so it lives here with the rest.
pub fn lower_current_thread_priority(nice: i32) -> std::io::Result<()> {
    // SAFETY: gettid and setpriority take and return plain integers.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn strerror(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string()
}

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

fn cstring(s: &str) -> Result<CString, Error> {
    CString::new(s)
        .map_err(|_| Error::new(libc::EINVAL, format!("string contains a NUL byte: {s:?}")))
}

/// Copies a C string that libflux owns, replacing invalid UTF-8.
///
/// # Safety
/// `s` must be NULL or point to a NUL-terminated string.
unsafe fn owned_string(s: *const c_char) -> Option<String> {
    if s.is_null() {
        None
    } else {
        Some(CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

fn set_errno(errno: i32) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = errno };
}

fn current_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The module's broker handle. Valid for the life of `mod_main`, owned by the
/// broker, and usable only on the reactor thread (`!Send` by construction).
#[derive(Clone, Copy)]
pub struct Handle {
    raw: NonNull<sys::flux_t>,
}

impl Handle {
    /// Runs `f`, logging a panic instead of letting it unwind into C.
    fn guarded(&self, what: &str, f: impl FnOnce()) {
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

    fn reactor(&self) -> *mut sys::flux_reactor_t {
        // SAFETY: valid handle; the reactor lives as long as the handle.
        unsafe { sys::flux_get_reactor(self.raw.as_ptr()) }
    }

    /// The reactor's cached time (seconds since the epoch).
    pub fn now(&self) -> f64 {
        // SAFETY: valid reactor.
        unsafe { sys::flux_reactor_now(self.reactor()) }
    }

    fn send(
        &self,
        topic: &str,
        payload: &str,
        streaming: bool,
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
                sys::FLUX_NODEID_ANY,
                flags,
            )
        };
        if f.is_null() {
            return Err(Error::last_os(topic));
        }
        Ok(f)
    }

    /// A blocking RPC, for use before the reactor runs (module load).
    pub fn rpc_wait(&self, topic: &str, payload: &str) -> Result<String, Error> {
        let f = self.send(topic, payload, false)?;
        // SAFETY: f is a valid future; flux_rpc_get blocks for its response.
        let result = unsafe { future_result(f, topic) };
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
        let f = self.send(topic, payload, streaming)?;
        let callback: Rc<ResponseCallback> = Rc::new(Callback {
            handle: *self,
            topic: topic.to_string(),
            f: RefCell::new(on_response),
        });
        let arg = Box::into_raw(Box::new(callback));
        // SAFETY: f is valid; arg stays valid until Rpc::drop, which destroys
        // the future (and so its continuation) before freeing arg.
        if unsafe { sys::flux_future_then(f, -1.0, Some(rpc_continuation), arg.cast()) } < 0 {
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

    /// A timer that calls `on_fire` after `after` seconds, then every `repeat`
    /// seconds (0: once). It starts stopped; see [`Timer::start`].
    pub fn timer(
        &self,
        after: f64,
        repeat: f64,
        on_fire: impl FnMut() + 'static,
    ) -> Result<Timer, Error> {
        let callback: Rc<TimerCallback> = Rc::new(Callback {
            handle: *self,
            topic: "timer".into(),
            f: RefCell::new(on_fire),
        });
        let arg = Box::into_raw(Box::new(callback));
        // SAFETY: valid reactor; arg outlives the watcher (Timer::drop).
        let w = unsafe {
            sys::flux_timer_watcher_create(
                self.reactor(),
                after,
                repeat,
                Some(timer_fired),
                arg.cast(),
            )
        };
        if w.is_null() {
            // SAFETY: arg is ours and was not handed over.
            unsafe { drop(Box::from_raw(arg)) };
            return Err(Error::last_os("flux_timer_watcher_create"));
        }
        Ok(Timer {
            watcher: w,
            callback: arg,
        })
    }

    /// Serves requests whose topic matches `topic_glob`, from any user when
    /// `any_user` (as `flux module stats` needs), else from the owner only.
    pub fn handle_requests(
        &self,
        topic_glob: &str,
        any_user: bool,
        on_request: impl FnMut(&Request<'_>) + 'static,
    ) -> Result<MsgHandler, Error> {
        let glob = cstring(topic_glob)?;
        let callback: Rc<RequestCallback> = Rc::new(Callback {
            handle: *self,
            topic: topic_glob.to_string(),
            f: RefCell::new(on_request),
        });
        let arg = Box::into_raw(Box::new(callback));
        let matcher = sys::flux_match {
            typemask: sys::FLUX_MSGTYPE_REQUEST,
            matchtag: sys::FLUX_MATCHTAG_NONE,
            topic_glob: glob.as_ptr(),
        };
        // SAFETY: valid handle; the topic glob is copied by libflux; arg
        // outlives the handler (MsgHandler::drop).
        let mh = unsafe {
            sys::flux_msg_handler_create(
                self.raw.as_ptr(),
                matcher,
                Some(request_received),
                arg.cast(),
            )
        };
        if mh.is_null() {
            // SAFETY: arg is ours and was not handed over.
            unsafe { drop(Box::from_raw(arg)) };
            return Err(Error::last_os("flux_msg_handler_create"));
        }
        // SAFETY: mh is valid.
        unsafe {
            if any_user {
                sys::flux_msg_handler_allow_rolemask(mh, sys::FLUX_ROLE_USER);
            }
            sys::flux_msg_handler_start(mh);
        }
        Ok(MsgHandler {
            handler: mh,
            callback: arg,
        })
    }
}

type ResponseCallback = Callback<dyn FnMut(Result<String, Error>)>;
type RequestCallback = Callback<dyn FnMut(&Request<'_>)>;
type TimerCallback = Callback<dyn FnMut()>;

/// A closure that C calls back, with what is needed to report its panics.
struct Callback<F: ?Sized> {
    handle: Handle,
    topic: String,
    f: RefCell<F>,
}

/// # Safety
/// `f` must be a valid future whose response has arrived or may block.
unsafe fn future_result(f: *mut sys::flux_future_t, topic: &str) -> Result<String, Error> {
    let mut s: *const c_char = ptr::null();
    if sys::flux_rpc_get(f, &mut s) < 0 {
        let errno = current_errno();
        let detail =
            owned_string(sys::flux_future_error_string(f)).unwrap_or_else(|| strerror(errno));
        return Err(Error::new(errno, format!("{topic}: {detail}")));
    }
    Ok(owned_string(s).unwrap_or_default())
}

unsafe extern "C" fn rpc_continuation(f: *mut sys::flux_future_t, arg: *mut c_void) {
    let _no_cancel = CancelGuard::new();
    // Keep the closure alive through the call, even if it drops its own Rpc.
    let callback = Rc::clone(&*(arg as *const Rc<ResponseCallback>));
    let result = future_result(f, &callback.topic);
    // Re-arm for the next streamed response before user code may destroy f.
    if result.is_ok() {
        sys::flux_future_reset(f);
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

unsafe extern "C" fn timer_fired(
    _r: *mut sys::flux_reactor_t,
    _w: *mut sys::flux_watcher_t,
    _revents: c_int,
    arg: *mut c_void,
) {
    let _no_cancel = CancelGuard::new();
    let callback = Rc::clone(&*(arg as *const Rc<TimerCallback>));
    callback.handle.guarded("timer", || {
        if let Ok(mut on_fire) = callback.f.try_borrow_mut() {
            on_fire();
        }
    });
}

unsafe extern "C" fn request_received(
    _h: *mut sys::flux_t,
    _mh: *mut sys::flux_msg_handler_t,
    msg: *const sys::flux_msg_t,
    arg: *mut c_void,
) {
    let _no_cancel = CancelGuard::new();
    let callback = Rc::clone(&*(arg as *const Rc<RequestCallback>));
    let request = Request {
        handle: callback.handle,
        msg,
        _borrow: std::marker::PhantomData,
    };
    callback.handle.guarded(&callback.topic, || {
        if let Ok(mut on_request) = callback.f.try_borrow_mut() {
            on_request(&request);
        }
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

/// A reactor timer. Dropping it stops and destroys the watcher.
pub struct Timer {
    watcher: *mut sys::flux_watcher_t,
    callback: *mut Rc<TimerCallback>,
}

impl Timer {
    pub fn start(&self) {
        // SAFETY: valid watcher.
        unsafe { sys::flux_watcher_start(self.watcher) }
    }

    pub fn stop(&self) {
        // SAFETY: valid watcher.
        unsafe { sys::flux_watcher_stop(self.watcher) }
    }

    /// Re-arms the timer to fire after `after` seconds, then every `repeat`.
    pub fn restart(&self, after: f64, repeat: f64) {
        // SAFETY: valid watcher; reset requires it stopped, then restart it.
        unsafe {
            sys::flux_watcher_stop(self.watcher);
            sys::flux_timer_watcher_reset(self.watcher, after, repeat);
            sys::flux_watcher_start(self.watcher);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: created together in Handle::timer, freed only here.
        unsafe {
            sys::flux_watcher_stop(self.watcher);
            sys::flux_watcher_destroy(self.watcher);
            drop(Box::from_raw(self.callback));
        }
    }
}

/// A registered request handler. Dropping it unregisters it.
pub struct MsgHandler {
    handler: *mut sys::flux_msg_handler_t,
    callback: *mut Rc<RequestCallback>,
}

impl Drop for MsgHandler {
    fn drop(&mut self) {
        // SAFETY: created together in Handle::handle_requests, freed only here.
        unsafe {
            sys::flux_msg_handler_destroy(self.handler);
            drop(Box::from_raw(self.callback));
        }
    }
}

/// A request being handled; valid only during the handler call.
pub struct Request<'a> {
    handle: Handle,
    msg: *const sys::flux_msg_t,
    _borrow: std::marker::PhantomData<&'a sys::flux_msg_t>,
}

impl Request<'_> {
    /// The request's JSON payload, if it has one.
    pub fn payload(&self) -> Result<Option<String>, Error> {
        let mut s: *const c_char = ptr::null();
        // SAFETY: msg is valid for the duration of the handler call.
        if unsafe { sys::flux_request_decode(self.msg, ptr::null_mut(), &mut s) } < 0 {
            return Err(Error::last_os("flux_request_decode"));
        }
        // SAFETY: s is NULL or points into msg.
        Ok(unsafe { owned_string(s) })
    }

    pub fn respond(&self, json: &str) {
        let body = CString::new(json).unwrap_or_default();
        // SAFETY: valid handle, message and string.
        if unsafe { sys::flux_respond(self.handle.raw.as_ptr(), self.msg, body.as_ptr()) } < 0 {
            self.handle.log(
                Level::Err,
                &format!("error responding: {}", Error::last_os("flux_respond")),
            );
        }
    }

    pub fn respond_error(&self, errno: i32, message: &str) {
        let text = CString::new(message.replace('\0', "")).unwrap_or_default();
        // SAFETY: valid handle, message and string.
        if unsafe {
            sys::flux_respond_error(self.handle.raw.as_ptr(), self.msg, errno, text.as_ptr())
        } < 0
        {
            self.handle.log(
                Level::Err,
                &format!("error responding: {}", Error::last_os("flux_respond_error")),
            );
        }
    }
}

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
struct CancelGuard {
    was_enabled: bool,
}

impl CancelGuard {
    fn new() -> CancelGuard {
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
            if let Some(arg) = owned_string(*argv.add(i)) {
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
    let Some(raw) = NonNull::new(h) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    let handle = Handle { raw };
    if start_module(handle, argc, argv, start) < 0 {
        return -1;
    }
    let reactor = handle.reactor();
    set_cancelable(true);
    // SAFETY: valid reactor, run on the module's own thread.
    let rc = sys::flux_reactor_run(reactor, 0);
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
