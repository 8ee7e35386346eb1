//! What a Flux job used, node by node: CPU time, peak memory and OOM kills,
//! against the cores and GPUs it was allocated. No Flux and no `unsafe`
//! here: the job shell plugin (`crates/shell`) gathers the figures and
//! appends them to the job's `exec.eventlog` as one `prometheus.usage`
//! event; `flux prometheus jobstats` reads them back.
//!
//! One concern a file: [`proc`] reads processes from `/proc`, [`cgroup`]
//! a shell's own cgroup, [`jobcgroup`] the cgroups the module makes for
//! shells that have none, [`gpu`] what NVML says of a job's GPUs, [`idset`] counts the ids of RFC 22 idsets, [`options`] reads the job's
//! `-o prometheus` shell option, [`report`] is the event and the
//! efficiency figures made from it, and [`live`] the messages that carry
//! running jobs' figures from each broker rank to rank 0.

pub mod cgroup;
pub mod gpu;
pub mod idset;
pub mod jobcgroup;
pub mod live;
pub mod options;
pub mod proc;
pub mod report;

pub use report::{JobUsage, NodeUsage, EVENT_NAME};
