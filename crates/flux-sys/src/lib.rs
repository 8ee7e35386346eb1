//! Raw libflux declarations.
//!
//! The crate keeps its own declarations of the few libflux functions
//! flux-prometheus calls, so that it builds where flux-core is not installed
//! (the broker that loads the module provides the symbols). Where build.rs
//! found flux-core, the declarations bindgen generated from `<flux/core.h>`
//! are used instead and the crate's own are checked against them at compile
//! time: a signature that drifts from the installed header fails the build.
//!
//! Nothing here is safe to call: the `flux` crate beside it wraps these in
//! safe types, and is the only crate that uses this one.
#![allow(
    non_camel_case_types,
    dead_code,
    unused_macros,
    unused_imports,
    clippy::upper_case_acronyms
)]

use std::os::raw::{c_char, c_double, c_int, c_void};

/// Every libflux function the crate calls, written once and expanded twice:
/// as `extern "C"` declarations, and (with bindgen) as type assertions.
macro_rules! with_libflux_functions {
    ($expand:ident) => {
        $expand! {
            fn flux_rpc(h: *mut flux_t, topic: *const c_char, s: *const c_char, nodeid: u32, flags: c_int) -> *mut flux_future_t;
            fn flux_rpc_get(f: *mut flux_future_t, s: *mut *const c_char) -> c_int;
            fn flux_future_then(f: *mut flux_future_t, timeout: c_double, cb: flux_continuation_f, arg: *mut c_void) -> c_int;
            fn flux_future_reset(f: *mut flux_future_t);
            fn flux_future_destroy(f: *mut flux_future_t);
            fn flux_future_error_string(f: *mut flux_future_t) -> *const c_char;
            fn flux_msg_handler_create(h: *mut flux_t, m: flux_match, cb: flux_msg_handler_f, arg: *mut c_void) -> *mut flux_msg_handler_t;
            fn flux_msg_handler_allow_rolemask(mh: *mut flux_msg_handler_t, rolemask: u32);
            fn flux_msg_handler_start(mh: *mut flux_msg_handler_t);
            fn flux_msg_handler_destroy(mh: *mut flux_msg_handler_t);
            fn flux_request_decode(msg: *const flux_msg_t, topic: *mut *const c_char, s: *mut *const c_char) -> c_int;
            fn flux_msg_get_userid(msg: *const flux_msg_t, userid: *mut u32) -> c_int;
            fn flux_respond(h: *mut flux_t, request: *const flux_msg_t, s: *const c_char) -> c_int;
            fn flux_respond_error(h: *mut flux_t, request: *const flux_msg_t, errnum: c_int, errstr: *const c_char) -> c_int;
            fn flux_get_reactor(h: *mut flux_t) -> *mut flux_reactor_t;
            fn flux_reactor_now(r: *mut flux_reactor_t) -> c_double;
            fn flux_timer_watcher_create(r: *mut flux_reactor_t, after: c_double, repeat: c_double, cb: flux_watcher_f, arg: *mut c_void) -> *mut flux_watcher_t;
            fn flux_timer_watcher_reset(w: *mut flux_watcher_t, after: c_double, repeat: c_double);
            fn flux_watcher_start(w: *mut flux_watcher_t);
            fn flux_watcher_stop(w: *mut flux_watcher_t);
            fn flux_watcher_destroy(w: *mut flux_watcher_t);
            fn flux_attr_get(h: *mut flux_t, name: *const c_char) -> *const c_char;
            fn flux_get_rank(h: *mut flux_t, rank: *mut u32) -> c_int;
            fn flux_get_size(h: *mut flux_t, size: *mut u32) -> c_int;
            fn flux_aux_get(h: *mut flux_t, name: *const c_char) -> *mut c_void;
            fn flux_open(uri: *const c_char, flags: c_int) -> *mut flux_t;
            fn flux_close(h: *mut flux_t);
            fn flux_set_reactor(h: *mut flux_t, r: *mut flux_reactor_t) -> c_int;
            fn flux_future_wait_for(f: *mut flux_future_t, timeout: c_double) -> c_int;
            fn flux_future_get(f: *mut flux_future_t, result: *mut *const c_void) -> c_int;
            fn flux_kvs_txn_create() -> *mut flux_kvs_txn_t;
            fn flux_kvs_txn_destroy(txn: *mut flux_kvs_txn_t);
            fn flux_kvs_txn_put(txn: *mut flux_kvs_txn_t, flags: c_int, key: *const c_char, value: *const c_char) -> c_int;
            fn flux_kvs_commit(h: *mut flux_t, ns: *const c_char, flags: c_int, txn: *mut flux_kvs_txn_t) -> *mut flux_future_t;
            fn flux_kvs_lookup(h: *mut flux_t, ns: *const c_char, flags: c_int, key: *const c_char) -> *mut flux_future_t;
            fn flux_kvs_lookup_get(f: *mut flux_future_t, value: *mut *const c_char) -> c_int;
            fn flux_plugin_set_name(p: *mut flux_plugin_t, name: *const c_char) -> c_int;
            fn flux_plugin_add_handler(p: *mut flux_plugin_t, topic: *const c_char, cb: flux_plugin_f, arg: *mut c_void) -> c_int;
            fn flux_plugin_aux_set(p: *mut flux_plugin_t, key: *const c_char, val: *mut c_void, free_fn: flux_free_f) -> c_int;
            fn flux_subprocess_pid(p: *mut flux_subprocess_t) -> c_int;
            fn flux_subprocess_state(p: *mut flux_subprocess_t) -> flux_subprocess_state_t;
        }
    };
}

/// The job shell's plugin interface (`<flux/shell.h>`): its functions are
/// the `flux-shell` executable's, which loads the plugin, not libflux's.
macro_rules! with_shell_functions {
    ($expand:ident) => {
        $expand! {
            fn flux_plugin_get_shell(p: *mut flux_plugin_t) -> *mut flux_shell_t;
            fn flux_shell_get_flux(shell: *mut flux_shell_t) -> *mut flux_t;
            fn flux_shell_aux_set(shell: *mut flux_shell_t, name: *const c_char, aux: *mut c_void, free_fn: flux_free_f) -> c_int;
            fn flux_shell_getopt(shell: *mut flux_shell_t, name: *const c_char, json_str: *mut *mut c_char) -> c_int;
            fn flux_shell_get_info(shell: *mut flux_shell_t, json_str: *mut *mut c_char) -> c_int;
            fn flux_shell_get_rank_info(shell: *mut flux_shell_t, shell_rank: c_int, json_str: *mut *mut c_char) -> c_int;
            fn flux_shell_service_register(shell: *mut flux_shell_t, method: *const c_char, cb: flux_msg_handler_f, arg: *mut c_void) -> c_int;
            fn flux_shell_task_first(shell: *mut flux_shell_t) -> *mut flux_shell_task_t;
            fn flux_shell_task_next(shell: *mut flux_shell_t) -> *mut flux_shell_task_t;
            fn flux_shell_task_subprocess(task: *mut flux_shell_task_t) -> *mut flux_subprocess_t;
        }
    };
}

macro_rules! declare_functions {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
        extern "C" {
            $(pub fn $name($($arg: $ty),*) $(-> $ret)?;)*
            pub fn flux_log(h: *mut flux_t, level: c_int, fmt: *const c_char, ...) -> c_int;
        }
        // The broker may cancel the module thread while the reactor waits:
        // the forced unwind must be allowed to leave flux_reactor_run.
        extern "C-unwind" {
            pub fn flux_reactor_run(r: *mut flux_reactor_t, flags: c_int) -> c_int;
        }
    };
}

macro_rules! declare_shell_functions {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
        extern "C" {
            $(pub fn $name($($arg: $ty),*) $(-> $ret)?;)*
            pub fn flux_shell_add_completion_ref(shell: *mut flux_shell_t, fmt: *const c_char, ...) -> c_int;
            pub fn flux_shell_remove_completion_ref(shell: *mut flux_shell_t, fmt: *const c_char, ...) -> c_int;
            pub fn flux_shell_rpc_pack(shell: *mut flux_shell_t, method: *const c_char, shell_rank: c_int, flags: c_int, fmt: *const c_char, ...) -> *mut flux_future_t;
            pub fn flux_shell_log(component: *const c_char, level: c_int, file: *const c_char, line: c_int, fmt: *const c_char, ...);
            pub fn flux_shell_info_unpack(shell: *mut flux_shell_t, fmt: *const c_char, ...) -> c_int;
        }
    };
}

#[cfg(flux_bindgen)]
macro_rules! assert_shell_functions_agree {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
        $(const _: unsafe extern "C" fn($($ty),*) $(-> $ret)? = $name;)*
        const _: unsafe extern "C" fn(*mut flux_shell_t, *const c_char, ...) -> c_int = flux_shell_add_completion_ref;
        const _: unsafe extern "C" fn(*mut flux_shell_t, *const c_char, ...) -> c_int = flux_shell_remove_completion_ref;
        const _: unsafe extern "C" fn(*mut flux_shell_t, *const c_char, c_int, c_int, *const c_char, ...) -> *mut flux_future_t = flux_shell_rpc_pack;
        const _: unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char, ...) = flux_shell_log;
        const _: unsafe extern "C" fn(*mut flux_shell_t, *const c_char, ...) -> c_int = flux_shell_info_unpack;
    };
}

#[cfg(flux_bindgen)]
macro_rules! assert_functions_agree {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
        $(const _: unsafe extern "C" fn($($ty),*) $(-> $ret)? = $name;)*
        const _: unsafe extern "C" fn(*mut flux_t, c_int, *const c_char, ...) -> c_int = flux_log;
        const _: unsafe extern "C-unwind" fn(*mut flux_reactor_t, c_int) -> c_int = flux_reactor_run;
    };
}

/// The crate's own declarations, compiled in every build.
pub mod fallback {
    use super::*;

    #[repr(C)]
    pub struct flux_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_future_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_msg_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_msg_handler_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_reactor_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_watcher_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_kvs_txn_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_plugin_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_plugin_arg_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_shell_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_shell_task_t {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct flux_subprocess_t {
        _opaque: [u8; 0],
    }
    pub type flux_free_f = Option<unsafe extern "C" fn(arg: *mut c_void)>;
    pub type flux_plugin_f = Option<
        unsafe extern "C" fn(
            p: *mut flux_plugin_t,
            topic: *const c_char,
            args: *mut flux_plugin_arg_t,
            data: *mut c_void,
        ) -> c_int,
    >;
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct flux_match {
        pub typemask: c_int,
        pub matchtag: u32,
        pub topic_glob: *const c_char,
    }
    pub type flux_continuation_f =
        Option<unsafe extern "C" fn(f: *mut flux_future_t, arg: *mut c_void)>;
    pub type flux_msg_handler_f = Option<
        unsafe extern "C" fn(
            h: *mut flux_t,
            mh: *mut flux_msg_handler_t,
            msg: *const flux_msg_t,
            arg: *mut c_void,
        ),
    >;
    pub type flux_watcher_f = Option<
        unsafe extern "C" fn(
            r: *mut flux_reactor_t,
            w: *mut flux_watcher_t,
            revents: c_int,
            arg: *mut c_void,
        ),
    >;

    pub const FLUX_RPC_STREAMING: c_int = 2;
    pub const FLUX_NODEID_ANY: u32 = 0xFFFF_FFFF;
    pub const FLUX_NODEID_UPSTREAM: u32 = 0xFFFF_FFFE;
    pub const FLUX_MSGTYPE_REQUEST: c_int = 1;
    pub const FLUX_MATCHTAG_NONE: u32 = 0;
    pub const FLUX_ROLE_USER: u32 = 2;
    pub const FLUX_KVS_APPEND: c_int = 32;
    pub type flux_subprocess_state_t = std::os::raw::c_uint;
    pub const FLUX_SUBPROCESS_RUNNING: flux_subprocess_state_t = 1;
    pub const FLUX_SUBPROCESS_STOPPED: flux_subprocess_state_t = 4;
    /// Shell log levels (`FLUX_SHELL_ERROR`...), syslog's numbers.
    pub const FLUX_SHELL_ERROR: c_int = 3;
    pub const FLUX_SHELL_WARN: c_int = 4;
    pub const FLUX_SHELL_NOTICE: c_int = 5;
    pub const FLUX_SHELL_DEBUG: c_int = 6;

    // With bindgen, its declarations are the ones linked; these are then
    // only checked against them (below), not declared a second time.
    #[cfg(not(flux_bindgen))]
    with_libflux_functions!(declare_functions);
    #[cfg(not(flux_bindgen))]
    with_shell_functions!(declare_shell_functions);
}

#[cfg(flux_bindgen)]
pub mod generated {
    #![allow(
        non_upper_case_globals,
        non_snake_case,
        improper_ctypes,
        unused_imports
    )]
    include!(concat!(env!("OUT_DIR"), "/flux_bindings.rs"));

    /// Compile-time proof that the fallback declarations match the header.
    mod agreement {
        use super::*;
        use std::os::raw::{c_char, c_double, c_int, c_void};

        with_libflux_functions!(assert_functions_agree);
        with_shell_functions!(assert_shell_functions_agree);

        const _: () = {
            use super::super::fallback as own;
            assert!(FLUX_RPC_STREAMING as i64 == own::FLUX_RPC_STREAMING as i64);
            assert!(FLUX_NODEID_ANY as i64 == own::FLUX_NODEID_ANY as i64);
            assert!(FLUX_NODEID_UPSTREAM as i64 == own::FLUX_NODEID_UPSTREAM as i64);
            assert!(FLUX_MSGTYPE_REQUEST as i64 == own::FLUX_MSGTYPE_REQUEST as i64);
            assert!(FLUX_MATCHTAG_NONE as i64 == own::FLUX_MATCHTAG_NONE as i64);
            assert!(FLUX_ROLE_USER as i64 == own::FLUX_ROLE_USER as i64);
            assert!(FLUX_KVS_APPEND as i64 == own::FLUX_KVS_APPEND as i64);
            assert!(FLUX_SUBPROCESS_RUNNING as i64 == own::FLUX_SUBPROCESS_RUNNING as i64);
            assert!(FLUX_SUBPROCESS_STOPPED as i64 == own::FLUX_SUBPROCESS_STOPPED as i64);
            assert!(FLUX_SHELL_ERROR as i64 == own::FLUX_SHELL_ERROR as i64);
            assert!(FLUX_SHELL_WARN as i64 == own::FLUX_SHELL_WARN as i64);
            assert!(FLUX_SHELL_NOTICE as i64 == own::FLUX_SHELL_NOTICE as i64);
            assert!(FLUX_SHELL_DEBUG as i64 == own::FLUX_SHELL_DEBUG as i64);
            assert!(std::mem::size_of::<flux_match>() == std::mem::size_of::<own::flux_match>());
        };
        #[allow(clippy::no_effect)]
        const _: flux_match = flux_match {
            typemask: 0,
            matchtag: 0,
            topic_glob: std::ptr::null(),
        };
    }
}

/// For test builds where no libflux is linked (no flux-core here): the
/// module's tests reach the collectors' libflux calls through the registry
/// but never make them, and link against these stand-ins, which abort if
/// ever called. The `stand-ins` feature is a dev-dependency's only, so the
/// module itself never has them: it binds to the broker's libflux.
#[cfg(all(feature = "stand-ins", not(flux_bindgen)))]
mod unit_test_stand_ins {
    use super::fallback::*;
    use std::os::raw::{c_char, c_double, c_int, c_void};

    macro_rules! stand_ins {
        ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
            $(
                #[no_mangle]
                pub extern "C" fn $name($(_: $ty),*) $(-> $ret)? {
                    std::process::abort()
                }
            )*
            #[no_mangle]
            pub extern "C" fn flux_log() -> c_int {
                std::process::abort()
            }
            #[no_mangle]
            pub extern "C" fn flux_reactor_run() -> c_int {
                std::process::abort()
            }
        };
    }

    with_libflux_functions!(stand_ins);

    macro_rules! shell_stand_ins {
        ($(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
            $(
                #[no_mangle]
                pub extern "C" fn $name($(_: $ty),*) $(-> $ret)? {
                    std::process::abort()
                }
            )*
            #[no_mangle]
            pub extern "C" fn flux_shell_add_completion_ref() -> c_int {
                std::process::abort()
            }
            #[no_mangle]
            pub extern "C" fn flux_shell_remove_completion_ref() -> c_int {
                std::process::abort()
            }
            #[no_mangle]
            pub extern "C" fn flux_shell_rpc_pack() -> *mut flux_future_t {
                std::process::abort()
            }
            #[no_mangle]
            pub extern "C" fn flux_shell_log() {
                std::process::abort()
            }
            #[no_mangle]
            pub extern "C" fn flux_shell_info_unpack() -> c_int {
                std::process::abort()
            }
        };
    }

    with_shell_functions!(shell_stand_ins);
}

#[cfg(flux_bindgen)]
pub use generated::*;

#[cfg(not(flux_bindgen))]
pub use fallback::*;

// The fallback's own constants are used everywhere, so that both paths share
// one spelling of each (bindgen's enum constants have per-enum types).
pub use fallback::{
    FLUX_KVS_APPEND, FLUX_MATCHTAG_NONE, FLUX_MSGTYPE_REQUEST, FLUX_NODEID_ANY,
    FLUX_NODEID_UPSTREAM, FLUX_ROLE_USER, FLUX_RPC_STREAMING, FLUX_SHELL_DEBUG, FLUX_SHELL_ERROR,
    FLUX_SHELL_NOTICE, FLUX_SHELL_WARN, FLUX_SUBPROCESS_RUNNING, FLUX_SUBPROCESS_STOPPED,
};

// POSIX thread cancellation, which the libc crate does not declare on Linux.
pub const PTHREAD_CANCEL_ENABLE: c_int = 0;
pub const PTHREAD_CANCEL_DISABLE: c_int = 1;
extern "C" {
    pub fn pthread_setcancelstate(state: c_int, oldstate: *mut c_int) -> c_int;
}
// A cancellation point: with cancellation enabled and one pending, it does
// not return but unwinds the thread.
extern "C-unwind" {
    pub fn pthread_testcancel();
}

/// Log levels from syslog.h, as flux_log takes them.
pub const LOG_ERR: c_int = libc::LOG_ERR;
pub const LOG_WARNING: c_int = libc::LOG_WARNING;
pub const LOG_INFO: c_int = libc::LOG_INFO;
pub const LOG_DEBUG: c_int = libc::LOG_DEBUG;
