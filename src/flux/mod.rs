//! The only place that calls libflux or uses `unsafe`.
//!
//! It gives the rest of the crate safe, single-threaded types: a [`Handle`]
//! (which is `!Send`, so it cannot reach the HTTP thread), RPC futures whose
//! continuations are Rust closures, timers and request handlers. Every
//! callback that C calls catches panics and logs them with flux_log: an
//! unwinding panic must never cross into the broker. One concern per file:
//! errors, the handle, callbacks from C, RPCs, timers, request handlers,
//! the module's lifecycle, the parent instance (and the two OS calls that
//! are not libflux).

// Every unsafe block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

mod callback;
pub mod entry;
mod error;
mod handle;
mod lifecycle;
mod msg_handler;
mod os;
mod parent;
mod rpc;
pub mod sys;
mod timer;

pub use error::{strerror, Error};
pub use handle::{Handle, Level};
pub use lifecycle::{run_module_main, ModuleInstance, ModuleStart};
pub use msg_handler::{MsgHandler, Request};
pub use os::{process_cpu_seconds, request_wakeup_slice, thread_cpu_seconds};
pub use parent::Parent;
pub use rpc::Rpc;
pub use timer::Timer;
