//! flux-prometheus: a Flux broker module that exports job, queue, resource
//! and broker metrics to Prometheus from an embedded HTTP exporter thread.
//!
//! Layout: [`flux`] holds every `unsafe` line and libflux call; the
//! [`collectors`] gather [`state`] on the reactor thread; [`render`] turns
//! state into text; [`http`] serves the newest [`exposition`] snapshot.

pub mod auth;
pub mod cli;
pub mod collectors;
pub mod config;
pub mod exposition;
pub mod flux;
pub mod http;
pub mod model;
pub mod module;
pub mod pacing;
pub mod render;
pub mod state;
pub mod webconfig;
