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

use std::collections::VecDeque;

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
    /// The ranks each of the last changes of `set` touched, by the
    /// generation it made, oldest first: a reader that counted from an
    /// earlier generation counts again only these ranks, not every rank
    /// of a large instance ([`Allocations::ranks_changed_since`]).
    touched: VecDeque<(u64, Vec<u32>)>,
}

/// Changes whose ranks are kept for [`Allocations::ranks_changed_since`]:
/// ten publishes' worth of jobs starting and ending at a few hundred a
/// second, many times over. A reader further behind counts everything.
const TOUCHED_KEPT: usize = 4096;

impl Allocations {
    /// A new journal subscription starts: its backlog lists every active
    /// job's events again, so what was known is rebuilt from it.
    pub fn begin_backlog(&mut self) {
        self.jobs.clear();
        self.set = ResourceSet::default();
        self.complete = false;
        self.generation += 1;
        // Every rank may have changed: no reader can count from before.
        self.touched.clear();
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

    /// The ranks whose allocation changed since `generation`, or None where
    /// that is not known: a generation from before the last backlog began,
    /// or older than the changes kept.
    pub fn ranks_changed_since(&self, generation: u64) -> Option<IdSet> {
        let mut ranks = IdSet::new();
        if generation == self.generation {
            return Some(ranks);
        }
        // Generations are consecutive within `touched`: it must hold the
        // one right after `generation` for nothing to be missed.
        let oldest = self.touched.front()?.0;
        if generation >= self.generation || oldest > generation + 1 {
            return None;
        }
        // Oldest first, so the changes after `generation` are a suffix.
        let after = self.touched.partition_point(|(g, _)| *g <= generation);
        for (_, touched) in self.touched.range(after..) {
            for &rank in touched {
                ranks.insert(rank);
            }
        }
        Some(ranks)
    }

    /// Notes the ranks the change that made the current generation touched.
    fn note_touched(&mut self, ranks: Vec<u32>) {
        if self.touched.len() == TOUCHED_KEPT {
            self.touched.pop_front();
        }
        self.touched.push_back((self.generation, ranks));
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
        let touched = slices
            .iter()
            .flat_map(|s| s.ranks.iter().copied())
            .collect();
        self.jobs.insert(id, slices);
        self.generation += 1;
        self.note_touched(touched);
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
        self.note_touched(slices.into_iter().flat_map(|s| s.ranks).collect());
    }
}

/// Whether the instance's config (a `config.get` answer) turns on job-manager
/// housekeeping, which keeps a job's resources allocated after its `free`
/// event until housekeeping on each node is done: the journal does not
/// show when that is.
pub fn housekeeping_configured(config: &Value) -> bool {
    !config["job-manager"]["housekeeping"].is_null()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resources::{ResourceSet, SchedView, StatusSets, Tally};
    use serde_json::value::RawValue;

    /// 16 nodes of 4 cores and 2 GPUs, nodes 3 and 9 drained, 12 excluded.
    const STATUS: &str = r#"{"R":{"version":1,"execution":{"R_lite":[{"rank":"0-15","children":{"core":"0-3","gpu":"0-1"}}],"starttime":0,"expiration":0,"nodelist":["n[0-15]"],"properties":{"a":"0-7"}}},"offline":"","online":"0-15","exclude":"12","torpid":"","drain":{"3":{"timestamp":1.0,"reason":"x"},"9":{"timestamp":1.0,"reason":"y"}}}"#;

    fn job_r(ranks: &str, cores: &str, gpus: &str) -> JobR {
        let s = format!(
            r#"{{"version":1,"execution":{{"R_lite":[{{"rank":"{ranks}","children":{{"core":"{cores}"{}}}}}]}}}}"#,
            if gpus.is_empty() {
                String::new()
            } else {
                format!(r#","gpu":"{gpus}""#)
            }
        );
        JobR::read(&RawValue::from_string(s).unwrap()).unwrap()
    }

    /// A job's shape from a small pseudo-random number: one to three ranks
    /// (some beyond the instance's, as a stale R may name), some cores and
    /// maybe a GPU.
    fn shape(n: u64) -> JobR {
        let rank = n % 20;
        let width = n / 20 % 3;
        let ranks = if width == 0 {
            rank.to_string()
        } else {
            format!("{rank}-{}", rank + width)
        };
        let cores = format!("{}-{}", n % 4, (n % 4 + n / 7 % 2).min(3));
        let gpus = if n.is_multiple_of(5) { "1" } else { "" };
        job_r(&ranks, &cores, gpus)
    }

    #[test]
    fn counting_only_the_ranks_that_changed_gives_every_rank_s_counts() {
        let sets = StatusSets::derive(STATUS).unwrap().unwrap();
        let mut allocations = Allocations::default();
        allocations.begin_backlog();
        allocations.end_backlog();
        let (generation, set) = allocations.current().unwrap();
        fn view<'a>(sets: &'a StatusSets, allocated: &'a ResourceSet) -> SchedView<'a> {
            SchedView {
                all: &sets.all,
                down: &sets.down,
                allocated,
            }
        }
        // Two queues: one on the ranks with property "a", one on all.
        let config = r#"{"queues": {"a": {"requires": ["a"]}, "b": {}}}"#;
        let mut kept = (
            generation,
            Tally::new(view(&sets, set), STATUS, config).unwrap(),
        );
        // A linear congruential sequence: the same jobs every run.
        let mut n: u64 = 7;
        let mut running: Vec<i64> = Vec::new();
        for step in 0..600i64 {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = n >> 33;
            if running.is_empty() || !r.is_multiple_of(3) {
                allocations.alloc(step, false, Some(shape(r)));
                running.push(step);
            } else {
                let id = running.swap_remove((r as usize / 3) % running.len());
                allocations.free(id);
            }
            // Count now and then, as publishes do, several changes apart.
            if r.is_multiple_of(4) {
                let (generation, set) = allocations.current().unwrap();
                let changed = allocations.ranks_changed_since(kept.0).unwrap();
                kept.1.recount(view(&sets, set), &changed);
                kept.0 = generation;
                let fresh = Tally::new(view(&sets, set), STATUS, config).unwrap();
                assert_eq!(kept.1, fresh, "step {step}");
                assert_eq!(
                    kept.1.summary(set),
                    crate::model::resources::summarize_view(view(&sets, set), STATUS, config)
                        .unwrap()
                );
            }
        }
        // The queue on "a" holds the first 8 ranks' resources.
        let (_, set) = allocations.current().unwrap();
        let summary = kept.1.summary(set);
        assert_eq!(summary.queues[0].0, "a");
        assert_eq!(summary.queues[0].1[3].1.nnodes, 8);
        assert!(summary.health.allocated > 0 && summary.health.draining <= 2);
    }

    #[test]
    fn a_reader_from_before_a_backlog_or_too_far_behind_counts_everything() {
        let mut allocations = Allocations::default();
        allocations.begin_backlog();
        allocations.end_backlog();
        let (start, _) = allocations.current().unwrap();
        assert_eq!(allocations.ranks_changed_since(start), Some(IdSet::new()));
        allocations.alloc(1, false, Some(job_r("2-3", "0", "")));
        allocations.alloc(2, false, Some(job_r("5", "1", "")));
        allocations.free(1);
        let changed = allocations.ranks_changed_since(start).unwrap();
        assert_eq!(changed.iter().collect::<Vec<_>>(), [2, 3, 5]);
        let (now, _) = allocations.current().unwrap();
        // A job with no R changes nothing, and one bypassing the scheduler
        // is not counted: neither is a change.
        allocations.alloc(3, true, Some(job_r("7", "0", "")));
        assert_eq!(allocations.ranks_changed_since(now), Some(IdSet::new()));
        allocations.begin_backlog();
        allocations.end_backlog();
        assert_eq!(allocations.ranks_changed_since(now), None);
        let (reset, _) = allocations.current().unwrap();
        for id in 0..(TOUCHED_KEPT as i64 + 1) {
            allocations.alloc(id, false, Some(job_r("1", "0", "")));
            allocations.free(id);
        }
        assert_eq!(allocations.ranks_changed_since(reset), None);
        let (latest, _) = allocations.current().unwrap();
        assert_eq!(
            allocations
                .ranks_changed_since(latest - 2)
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [1]
        );
    }
}
