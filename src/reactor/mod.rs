//! What the collectors share on the reactor thread, and none of them is:
//! the [`Context`] each starts with (the handle, the state, publication),
//! the shapes of their Flux traffic (a streaming [`subscription`] with
//! backoff, a [`poll`] loop, a [`cadence`], a [`deferred`] one-shot timer),
//! and the feeds several collectors read (the journal's [`allocated`] set,
//! the job [`roster`], [`resource_status`], and the [`nested`] instances).
//!
//! Nothing here knows a collector by name, or HTTP: the registry in
//! `crate::collectors` hands the context its render function.

pub mod allocated;
pub mod backoff;
pub mod cadence;
pub mod context;
pub mod deferred;
pub mod nested;
pub mod poll;
pub mod resource_status;
pub mod roster;
pub mod subscription;

pub use backoff::Backoff;
pub use context::{Context, RenderAll};
