//! Typed views of Flux RPC payloads: parsing only, no Flux and no HTTP.

pub mod jobs;
