//! Typed views of Flux RPC payloads: parsing only, no Flux and no HTTP.

pub mod accounting;
pub mod accrual;
pub mod allocations;
pub mod broker;
pub mod error;
pub mod hostlist;
pub mod idset;
pub mod jobflow;
pub mod jobs;
pub mod journal;
pub mod live;
pub mod nested;
pub mod nodes;
pub mod queues;
pub mod resources;
pub mod roster;
pub mod usage;
