//! The allocated resource set, kept from the job-manager journal: each
//! `alloc` event carries the job's R, and `free` (or `clean`, which the job
//! manager posts in the same pass once cleanup is done) gives it back.
//!
//! This is the set `job-manager.resource-status` answers, without its cost:
//! the job manager rebuilds that answer from the R of every running job
//! after each allocation change (over 100 ms of broker CPU with 5,000 jobs
//! on 4096 nodes), where following the journal costs a few microseconds per
//! allocation. It is the same set only where the job manager counts it the
//! same way: not with housekeeping configured, which holds resources after
//! `free` (see [`housekeeping_configured`]), and only once a journal backlog
//! has been read to its end.

use rustc_hash::FxHashMap;

use serde_json::Value;

use super::idset::IdSet;
use super::resources::{JobR, ResourceSet};

/// One `R_lite` entry of a job's R, with its ranks as a list: a job's R is
/// small, while an idset of a high rank costs a word per 64 ranks below it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobSlice {
    ranks: Vec<u32>,
    cores: IdSet,
    gpus: IdSet,
}

#[derive(Debug, Default)]
pub struct Allocations {
    jobs: FxHashMap<i64, Vec<JobSlice>>,
    set: ResourceSet,
    /// Changes with every change of `set`, so a reader can tell whether
    /// what it computed from the set is still current.
    generation: u64,
    /// A backlog was read to its end and the stream has not ended since.
    complete: bool,
}

impl Allocations {
    /// A new journal subscription starts: its backlog lists every active
    /// job's events again, so what was known is rebuilt from it.
    pub fn begin_backlog(&mut self) {
        self.jobs.clear();
        self.set = ResourceSet::default();
        self.complete = false;
        self.generation += 1;
    }

    pub fn end_backlog(&mut self) {
        self.complete = true;
    }

    /// The journal stream ended; allocations made meanwhile are unknown.
    pub fn stream_lost(&mut self) {
        self.complete = false;
    }

    /// The allocated set and its generation, while it is complete.
    pub fn current(&self) -> Option<(u64, &ResourceSet)> {
        self.complete.then_some((self.generation, &self.set))
    }

    pub fn jobs(&self) -> usize {
        self.jobs.len()
    }

    /// A journal `alloc` event: `bypass` jobs (the alloc-bypass plugin) are
    /// not counted by the job manager, since the scheduler never gave them
    /// their resources. `r` is the job's R, kept here: None where the event
    /// had none, or one that could not be read.
    pub fn alloc(&mut self, id: i64, bypass: bool, r: Option<JobR>) {
        if bypass || self.jobs.contains_key(&id) {
            return;
        }
        let Some(r) = r else {
            // An alloc without a readable R: the set can no longer be
            // trusted, and the job manager's answer is asked instead.
            self.complete = false;
            return;
        };
        let slices: Vec<JobSlice> = r
            .slices
            .into_iter()
            .map(|s| JobSlice {
                ranks: s.ranks.iter().collect(),
                cores: s.cores,
                gpus: s.gpus,
            })
            .collect();
        for slice in &slices {
            for &rank in &slice.ranks {
                let node = self.set.nodes.entry_or_default(rank);
                node.cores.union_with(&slice.cores);
                node.gpus.union_with(&slice.gpus);
            }
        }
        self.jobs.insert(id, slices);
        self.generation += 1;
    }

    /// A journal `free` (or `clean`, for a job whose `free` was missed).
    pub fn free(&mut self, id: i64) {
        let Some(slices) = self.jobs.remove(&id) else {
            return;
        };
        for slice in &slices {
            for &rank in &slice.ranks {
                self.set.nodes.subtract(rank, &slice.cores, &slice.gpus);
            }
        }
        if self.jobs.capacity() > 1024 && self.jobs.len() < self.jobs.capacity() / 4 {
            self.jobs.shrink_to_fit();
        }
        self.generation += 1;
    }
}

/// Whether the instance's config (a `config.get` answer) turns on job-manager
/// housekeeping, which keeps a job's resources allocated after its `free`
/// event until housekeeping on each node is done: the journal does not
/// show when that is.
pub fn housekeeping_configured(config: &Value) -> bool {
    !config["job-manager"]["housekeeping"].is_null()
}
