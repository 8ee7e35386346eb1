//! The job shell's plugin interface (`flux-shell-plugins(7)`): the entry
//! point ([`shell_plugin_init!`]), callbacks on the shell's topics
//! (`shell.init`, `shell.start`, `task.exit`, `shell.finish`,
//! `shell.exit`...), and what a plugin may ask of its shell: its handle,
//! its job and rank information, options, completion references, a
//! service of its own between the job's shells, and its log.
//!
//! A plugin lives in the `flux-shell` process, which calls every callback
//! on its one thread; the `flux_shell_*` functions are the shell
//! executable's. Closures handed to the shell are freed by the shell (its
//! aux containers) when it destroys the plugin, so nothing is leaked.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use super::callback::{cstring, owned_string, panic_message};
use super::msg_handler::Request;
use super::rpc::Response;
use super::{sys, Error, Handle, Rpc};

/// What [`shell_plugin_init!`] calls: registers the plugin's callbacks.
pub type ShellPluginInit = fn(&Plugin) -> Result<(), Error>;

/// Defines `int flux_plugin_init(flux_plugin_t *p)`, the symbol the job
/// shell looks up in a plugin's shared object, around `init`, a
/// [`ShellPluginInit`]. It returns 0, or -1 with errno set (the shell then
/// fails the job). A macro, as `module_main!`, so that only the crate that
/// asks exports the symbol.
#[macro_export]
macro_rules! shell_plugin_init {
    ($init:path) => {
        /// The job shell plugin entry point (`flux-shell-plugins(7)`).
        ///
        /// # Safety
        /// Called by the job shell with the plugin being loaded.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub unsafe extern "C" fn flux_plugin_init(
            p: *mut $crate::sys::flux_plugin_t,
        ) -> ::std::os::raw::c_int {
            let init: $crate::ShellPluginInit = $init;
            // SAFETY: p is the plugin the shell is loading.
            unsafe { $crate::run_shell_plugin_init(p, init) }
        }
    };
}

/// The plugin's name, as its log lines name it ("the component").
static NAME: OnceLock<CString> = OnceLock::new();

fn component() -> *const c_char {
    NAME.get().map_or(c"plugin".as_ptr(), |n| n.as_ptr())
}

/// Runs `init` for [`shell_plugin_init!`].
///
/// # Safety
/// `p` must be the plugin the shell is loading.
pub unsafe fn run_shell_plugin_init(p: *mut sys::flux_plugin_t, init: ShellPluginInit) -> c_int {
    let Some(raw) = NonNull::new(p) else {
        return -1;
    };
    let plugin = Plugin { raw };
    let outcome = catch_unwind(AssertUnwindSafe(|| init(&plugin))).unwrap_or_else(|payload| {
        Err(Error::new(
            libc::EINVAL,
            format!("panic in flux_plugin_init: {}", panic_message(&*payload)),
        ))
    });
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            shell_log(sys::FLUX_SHELL_ERROR, &e.message);
            // SAFETY: errno is thread-local.
            unsafe { *libc::__errno_location() = e.errno };
            -1
        }
    }
}

/// The plugin being loaded, in its init function.
pub struct Plugin {
    raw: NonNull<sys::flux_plugin_t>,
}

type TopicCallback = RefCell<Box<dyn FnMut(&Shell, &str) -> Result<(), Error>>>;

impl Plugin {
    /// Names the plugin (`-o verbose` logs and errors carry it).
    pub fn set_name(&self, name: &str) -> Result<(), Error> {
        let cname = cstring(name)?;
        // SAFETY: valid plugin; the name is copied.
        if unsafe { sys::flux_plugin_set_name(self.raw.as_ptr(), cname.as_ptr()) } < 0 {
            return Err(Error::last_os("flux_plugin_set_name"));
        }
        let _ = NAME.set(cname);
        Ok(())
    }

    /// The job shell loading the plugin: its job, options and handle can
    /// be read from the plugin's init function on.
    pub fn shell(&self) -> Option<Shell> {
        // SAFETY: valid plugin; the shell sets itself on the plugin before
        // loading it, and outlives it.
        NonNull::new(unsafe { sys::flux_plugin_get_shell(self.raw.as_ptr()) })
            .map(|raw| Shell { raw })
    }

    /// Calls `f` with the shell and the topic each time the shell calls
    /// topics matching `topic` (a glob: `shell.init`, `task.*`). An error
    /// it returns makes the shell's call fail, which in `shell.init` fails
    /// the job: return `Ok` for anything the job can do without.
    pub fn on(
        &self,
        topic: &str,
        f: impl FnMut(&Shell, &str) -> Result<(), Error> + 'static,
    ) -> Result<(), Error> {
        let ctopic = cstring(topic)?;
        let callback: Box<TopicCallback> = Box::new(RefCell::new(Box::new(f)));
        let arg = Box::into_raw(callback);
        let key = aux_key("topic", topic);
        // SAFETY: valid plugin; the plugin frees arg with free_topic when
        // it is destroyed, after its last callback.
        let kept = unsafe {
            sys::flux_plugin_aux_set(
                self.raw.as_ptr(),
                key.as_ptr(),
                arg.cast(),
                Some(free_topic),
            )
        };
        if kept < 0 {
            // SAFETY: arg was not handed over.
            unsafe { drop(Box::from_raw(arg)) };
            return Err(Error::last_os("flux_plugin_aux_set"));
        }
        // SAFETY: valid plugin; the topic is copied; arg lives as long as
        // the plugin (above).
        if unsafe {
            sys::flux_plugin_add_handler(
                self.raw.as_ptr(),
                ctopic.as_ptr(),
                Some(topic_called),
                arg.cast(),
            )
        } < 0
        {
            return Err(Error::last_os("flux_plugin_add_handler"));
        }
        Ok(())
    }
}

/// A key no other aux item of the plugin or shell has.
fn aux_key(kind: &str, name: &str) -> CString {
    thread_local!(static NEXT: Cell<u64> = const { Cell::new(0) });
    let n = NEXT.with(|next| {
        let n = next.get();
        next.set(n + 1);
        n
    });
    CString::new(format!("flux-rs::{kind}::{}::{n}", name.replace('\0', ""))).unwrap_or_default()
}

unsafe extern "C" fn free_topic(arg: *mut c_void) {
    // SAFETY: arg is the Box<TopicCallback> Plugin::on made; the plugin
    // frees it once.
    drop(unsafe { Box::from_raw(arg.cast::<TopicCallback>()) });
}

unsafe extern "C" fn topic_called(
    p: *mut sys::flux_plugin_t,
    topic: *const c_char,
    _args: *mut sys::flux_plugin_arg_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: p is the plugin the shell calls; the shell it belongs to
    // outlives the call.
    let Some(raw) = NonNull::new(unsafe { sys::flux_plugin_get_shell(p) }) else {
        return -1;
    };
    let shell = Shell { raw };
    // SAFETY: topic is the NUL-terminated topic being called.
    let topic = unsafe { owned_string(topic) }.unwrap_or_default();
    // SAFETY: data is the TopicCallback Plugin::on registered, alive until
    // the plugin is destroyed.
    let callback = unsafe { &*(data as *const TopicCallback) };
    let outcome = catch_unwind(AssertUnwindSafe(|| match callback.try_borrow_mut() {
        Ok(mut f) => f(&shell, &topic),
        Err(_) => Err(Error::new(
            libc::EDEADLK,
            format!("{topic}: callback re-entered"),
        )),
    }))
    .unwrap_or_else(|payload| {
        Err(Error::new(
            libc::EINVAL,
            format!("panic in {topic}: {}", panic_message(&*payload)),
        ))
    });
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            shell_log(sys::FLUX_SHELL_ERROR, &format!("{topic}: {}", e.message));
            -1
        }
    }
}

/// Shell log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellLevel {
    Error,
    Warn,
    Notice,
    Debug,
}

fn shell_log(level: c_int, msg: &str) {
    let text = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: the component and text are NUL-terminated; the format is a
    // literal "%s" matching one string argument.
    unsafe {
        sys::flux_shell_log(
            component(),
            level,
            c"".as_ptr(),
            0,
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// The job shell a plugin runs in; valid during its callbacks.
#[derive(Clone, Copy)]
pub struct Shell {
    raw: NonNull<sys::flux_shell_t>,
}

type RequestCallback = RefCell<Box<dyn FnMut(&ShellRequest<'_>)>>;

impl Shell {
    /// The shell's broker handle (its KVS namespace is the job's).
    pub fn handle(&self) -> Result<Handle, Error> {
        // SAFETY: valid shell; the handle lives as long as the shell.
        let raw = unsafe { sys::flux_shell_get_flux(self.raw.as_ptr()) };
        NonNull::new(raw)
            .map(|raw| Handle { raw })
            .ok_or_else(|| Error::new(libc::EINVAL, "the shell has no flux handle"))
    }

    /// The shell's information, as JSON (`jobid`, `rank`, `size`,
    /// `ntasks`, `options`...).
    pub fn info(&self) -> Result<String, Error> {
        let mut json: *mut c_char = ptr::null_mut();
        // SAFETY: valid shell; json receives a string we must free.
        if unsafe { sys::flux_shell_get_info(self.raw.as_ptr(), &mut json) } < 0 {
            return Err(Error::last_os("flux_shell_get_info"));
        }
        Ok(take_string(json))
    }

    /// The job's ID, this shell's rank and the job's number of shells,
    /// read without the rest of [`info`](Self::info).
    pub fn ids(&self) -> Result<ShellIds, Error> {
        let (mut jobid, mut rank, mut size): (libc::c_longlong, c_int, c_int) = (0, 0, 0);
        // SAFETY: valid shell; the jansson format names one json_int_t
        // (long long) and two ints, each given a valid out pointer, after
        // its NUL-terminated key.
        if unsafe {
            sys::flux_shell_info_unpack(
                self.raw.as_ptr(),
                c"{s:I s:i s:i}".as_ptr(),
                c"jobid".as_ptr(),
                &mut jobid,
                c"rank".as_ptr(),
                &mut rank,
                c"size".as_ptr(),
                &mut size,
            )
        } < 0
        {
            return Err(Error::last_os("flux_shell_info_unpack"));
        }
        let out_of_range = || Error::new(libc::ERANGE, "shell info out of range");
        Ok(ShellIds {
            jobid: u64::try_from(jobid).map_err(|_| out_of_range())?,
            rank: u32::try_from(rank).map_err(|_| out_of_range())?,
            size: u32::try_from(size).map_err(|_| out_of_range())?,
        })
    }

    /// Shell rank `rank`'s information, as JSON (`broker_rank`, `ntasks`,
    /// `resources`: its `cores` and `gpus` idsets); this shell's for None.
    pub fn rank_info(&self, rank: Option<u32>) -> Result<String, Error> {
        let rank = rank.map_or(-1, |r| c_int::try_from(r).unwrap_or(c_int::MAX));
        let mut json: *mut c_char = ptr::null_mut();
        // SAFETY: valid shell; json receives a string we must free.
        if unsafe { sys::flux_shell_get_rank_info(self.raw.as_ptr(), rank, &mut json) } < 0 {
            return Err(Error::last_os("flux_shell_get_rank_info"));
        }
        Ok(take_string(json))
    }

    /// The job's shell option `name` (`flux run -o name=value`), as JSON,
    /// or None when the job does not set it.
    pub fn option(&self, name: &str) -> Result<Option<String>, Error> {
        let cname = cstring(name)?;
        let mut json: *mut c_char = ptr::null_mut();
        // SAFETY: valid shell and name; json receives a string we must free.
        match unsafe { sys::flux_shell_getopt(self.raw.as_ptr(), cname.as_ptr(), &mut json) } {
            rc if rc < 0 => Err(Error::last_os("flux_shell_getopt")),
            0 => Ok(None),
            _ => Ok(Some(take_string(json))),
        }
    }

    /// The process IDs of this shell's tasks that run (or are stopped):
    /// not those that have exited, whose IDs the system may give again.
    pub fn task_pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        // SAFETY: valid shell; tasks are iterated on the shell's thread.
        let mut task = unsafe { sys::flux_shell_task_first(self.raw.as_ptr()) };
        while !task.is_null() {
            // SAFETY: task is one of the shell's; its subprocess, where it
            // has one, lives as long as the task.
            let pid = unsafe {
                let proc = sys::flux_shell_task_subprocess(task);
                if proc.is_null() {
                    -1
                } else {
                    match sys::flux_subprocess_state(proc) {
                        sys::FLUX_SUBPROCESS_RUNNING | sys::FLUX_SUBPROCESS_STOPPED => {
                            sys::flux_subprocess_pid(proc)
                        }
                        _ => -1,
                    }
                }
            };
            if pid > 0 {
                pids.push(pid);
            }
            // SAFETY: as above.
            task = unsafe { sys::flux_shell_task_next(self.raw.as_ptr()) };
        }
        pids
    }

    /// Keeps the shell from exiting until [`release`](Self::release)
    /// with the same name (a completion reference).
    pub fn hold(&self, name: &str) -> Result<(), Error> {
        let cname = cstring(name)?;
        // SAFETY: valid shell; "%s" with one string argument.
        if unsafe {
            sys::flux_shell_add_completion_ref(self.raw.as_ptr(), c"%s".as_ptr(), cname.as_ptr())
        } < 0
        {
            return Err(Error::last_os("flux_shell_add_completion_ref"));
        }
        Ok(())
    }

    /// Lets the shell exit as far as `name` is concerned.
    pub fn release(&self, name: &str) -> Result<(), Error> {
        let cname = cstring(name)?;
        // SAFETY: valid shell; "%s" with one string argument.
        if unsafe {
            sys::flux_shell_remove_completion_ref(self.raw.as_ptr(), c"%s".as_ptr(), cname.as_ptr())
        } < 0
        {
            return Err(Error::last_os("flux_shell_remove_completion_ref"));
        }
        Ok(())
    }

    /// Serves `method` to the job's other shells (and its owner): each
    /// request's data, as [`rpc`](Self::rpc) sent it, goes to `on_request`.
    /// The shell accepts requests from the job's owner only.
    pub fn serve(
        &self,
        method: &str,
        on_request: impl FnMut(&ShellRequest<'_>) + 'static,
    ) -> Result<(), Error> {
        let handle = self.handle()?;
        let cmethod = cstring(method)?;
        let callback: Box<(Handle, RequestCallback)> =
            Box::new((handle, RefCell::new(Box::new(on_request))));
        let arg = Box::into_raw(callback);
        let key = aux_key("service", method);
        // SAFETY: valid shell; it frees arg with free_service when it is
        // destroyed, after its message handlers.
        if unsafe {
            sys::flux_shell_aux_set(
                self.raw.as_ptr(),
                key.as_ptr(),
                arg.cast(),
                Some(free_service),
            )
        } < 0
        {
            // SAFETY: arg was not handed over.
            unsafe { drop(Box::from_raw(arg)) };
            return Err(Error::last_os("flux_shell_aux_set"));
        }
        // SAFETY: valid shell and method; arg lives as long as the shell.
        if unsafe {
            sys::flux_shell_service_register(
                self.raw.as_ptr(),
                cmethod.as_ptr(),
                Some(service_called),
                arg.cast(),
            )
        } < 0
        {
            return Err(Error::last_os("flux_shell_service_register"));
        }
        Ok(())
    }

    /// Sends `data` (any text) to `method` of shell rank `rank`, and calls
    /// `on_response` from the reactor with its answer.
    pub fn rpc(
        &self,
        method: &str,
        rank: u32,
        data: &str,
        on_response: impl FnMut(Result<String, Error>) + 'static,
    ) -> Result<Rpc, Error> {
        let handle = self.handle()?;
        let cmethod = cstring(method)?;
        let cdata = cstring(data)?;
        let rank = c_int::try_from(rank)
            .map_err(|_| Error::new(libc::EINVAL, format!("shell rank {rank} is out of range")))?;
        // SAFETY: valid shell; the jansson format "{s:s}" takes two strings,
        // both NUL-terminated and copied into the request.
        let f = unsafe {
            sys::flux_shell_rpc_pack(
                self.raw.as_ptr(),
                cmethod.as_ptr(),
                rank,
                0,
                c"{s:s}".as_ptr(),
                DATA_KEY.as_ptr(),
                cdata.as_ptr(),
            )
        };
        if f.is_null() {
            return Err(Error::last_os("flux_shell_rpc_pack"));
        }
        // SAFETY: f is a new RPC future of ours.
        unsafe { handle.then(f, method, Response::Payload, None, on_response) }
    }

    /// Logs to the job's output (`flux job attach` shows it), as the
    /// shell's own plugins do.
    pub fn log(&self, level: ShellLevel, msg: &str) {
        let level = match level {
            ShellLevel::Error => sys::FLUX_SHELL_ERROR,
            ShellLevel::Warn => sys::FLUX_SHELL_WARN,
            ShellLevel::Notice => sys::FLUX_SHELL_NOTICE,
            ShellLevel::Debug => sys::FLUX_SHELL_DEBUG,
        };
        shell_log(level, msg);
    }
}

/// Who a shell is within its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellIds {
    pub jobid: u64,
    /// This shell's rank among the job's shells (0 is the leader).
    pub rank: u32,
    /// The job's number of shells.
    pub size: u32,
}

/// The key under which [`Shell::rpc`] sends its data.
const DATA_KEY: &std::ffi::CStr = c"data";

unsafe extern "C" fn free_service(arg: *mut c_void) {
    // SAFETY: arg is the box Shell::serve made; the shell frees it once.
    drop(unsafe { Box::from_raw(arg.cast::<(Handle, RequestCallback)>()) });
}

unsafe extern "C" fn service_called(
    _h: *mut sys::flux_t,
    _mh: *mut sys::flux_msg_handler_t,
    msg: *const sys::flux_msg_t,
    arg: *mut c_void,
) {
    // SAFETY: arg is the box Shell::serve registered, alive as long as the
    // shell.
    let (handle, callback) = unsafe { &*(arg as *const (Handle, RequestCallback)) };
    let request = ShellRequest {
        // SAFETY: msg is valid for the duration of this call.
        inner: unsafe { Request::new(*handle, msg) },
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(mut f) = callback.try_borrow_mut() {
            f(&request);
        }
    }));
    if let Err(payload) = outcome {
        shell_log(
            sys::FLUX_SHELL_ERROR,
            &format!("panic in a shell service: {}", panic_message(&*payload)),
        );
    }
}

/// A request to a plugin's shell service; valid during the handler call.
pub struct ShellRequest<'a> {
    inner: Request<'a>,
}

impl ShellRequest<'_> {
    /// The data [`Shell::rpc`] sent.
    pub fn data(&self) -> Result<String, Error> {
        let payload = self.inner.payload()?.unwrap_or_default();
        data_of(&payload)
            .ok_or_else(|| Error::new(libc::EPROTO, "a shell request without its data"))
    }

    pub fn respond(&self, data: &str) {
        self.inner.respond(data);
    }

    pub fn respond_error(&self, errno: i32, message: &str) {
        self.inner.respond_error(errno, message);
    }
}

/// Copies and frees a string the shell allocated for us.
fn take_string(s: *mut c_char) -> String {
    // SAFETY: s is NULL or a NUL-terminated string the shell malloc'ed.
    let text = unsafe { owned_string(s) }.unwrap_or_default();
    // SAFETY: as above; free(NULL) does nothing.
    unsafe { libc::free(s.cast()) };
    text
}

/// The `data` string of a request [`Shell::rpc`] sent.
fn data_of(payload: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    Some(value.get("data")?.as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_data_is_unescaped() {
        let payload = r#"{"data": "{\"node\":\"a\\\\b\",\"n\":1}\n"}"#;
        assert_eq!(
            data_of(payload).as_deref(),
            Some("{\"node\":\"a\\\\b\",\"n\":1}\n")
        );
        assert_eq!(data_of(r#"{"data": 3}"#), None);
    }
}
