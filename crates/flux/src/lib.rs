//! Safe, single-threaded wrappers of libflux-core for a Flux broker module:
//! the only crate of flux-prometheus that calls libflux or uses `unsafe`
//! (with `flux-sys`, its raw declarations).
//!
//! It hands out safe types: a [`Handle`] (which is `!Send`, so it cannot
//! reach another thread), RPC futures whose continuations are Rust
//! closures, timers and request handlers, and the module's entry point
//! ([`module_main!`]). Every callback that C calls catches panics and logs
//! them with flux_log: an unwinding panic must never cross into the broker.
//! One concern per file: errors, the handle, callbacks from C, RPCs, KVS
//! writes, timers, request handlers, the module's lifecycle and entry, the
//! job shell's plugin entry and interface ([`shell_plugin_init!`]), the
//! parent instance, and the OS calls that are not libflux.

// Every unsafe block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

mod callback;
mod entry;
mod error;
mod handle;
mod kvs;
mod lifecycle;
mod msg_handler;
mod os;
mod parent;
mod rpc;
mod shell;
mod timer;

/// The raw declarations, for [`module_main!`]'s expansion only.
#[doc(hidden)]
pub use flux_sys as sys;

pub use error::{strerror, Error};
pub use handle::{Handle, Level};
pub use lifecycle::{run_module_main, ModuleInstance, ModuleStart};
pub use msg_handler::{MsgHandler, Request};
pub use os::{
    children_rusage, clock_ticks_per_second, page_size, process_cpu_seconds, request_wakeup_slice,
    self_rusage, thread_cpu_seconds, Rusage,
};
pub use parent::Parent;
pub use rpc::Rpc;
pub use shell::{
    run_shell_plugin_init, Plugin, Shell, ShellIds, ShellLevel, ShellPluginInit, ShellRequest,
};
pub use timer::Timer;
