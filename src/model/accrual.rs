//! Allocated core-, GPU- and node-seconds, accumulated while jobs run: for
//! each owner, project and queue, the sum over its jobs of each job's
//! allocation times its run time, as `flux jobs -a` gives them (`ncores`,
//! `ngpus`, `nnodes`, and `runtime`: from `t_run`, its `alloc`, to
//! `t_cleanup`, its `finish` or first fatal exception, or to now while it
//! runs).
//!
//! A sum is what ended plus, for the jobs running, their allocation times
//! (now − start), kept as the allocation's sum and its sum weighted by the
//! start, so reading it at any instant walks no job.

use std::collections::HashMap;
use std::hash::Hash;

/// An allocation (cores, GPUs, nodes), or the same in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Size {
    pub cores: f64,
    pub gpus: f64,
    pub nodes: f64,
}

impl Size {
    fn scaled(self, by: f64) -> Size {
        Size {
            cores: self.cores * by,
            gpus: self.gpus * by,
            nodes: self.nodes * by,
        }
    }

    fn plus(self, o: Size) -> Size {
        Size {
            cores: self.cores + o.cores,
            gpus: self.gpus + o.gpus,
            nodes: self.nodes + o.nodes,
        }
    }

    fn minus(self, o: Size) -> Size {
        self.plus(o.scaled(-1.0))
    }
}

/// One key's sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accrual {
    /// Allocation-seconds of the runs that ended.
    ended: Size,
    /// The running jobs' allocations, summed.
    running: Size,
    /// The same, each times its start.
    started: Size,
    /// Running jobs.
    jobs: u64,
}

impl Accrual {
    /// Allocation-seconds at `now` (a Unix time): never less than what
    /// ended, however the clocks compare.
    pub fn at(&self, now: f64) -> Size {
        if self.jobs == 0 {
            return self.ended;
        }
        let live = self.running.scaled(now).minus(self.started);
        Size {
            cores: self.ended.cores + live.cores.max(0.0),
            gpus: self.ended.gpus + live.gpus.max(0.0),
            nodes: self.ended.nodes + live.nodes.max(0.0),
        }
    }

    fn start(&mut self, size: Size, at: f64) {
        self.running = self.running.plus(size);
        self.started = self.started.plus(size.scaled(at));
        self.jobs += 1;
    }

    fn end(&mut self, size: Size, started: f64, at: f64) {
        self.running = self.running.minus(size);
        self.started = self.started.minus(size.scaled(started));
        self.jobs = self.jobs.saturating_sub(1);
        if self.jobs == 0 {
            // No rounding left over from the sums.
            self.running = Size::default();
            self.started = Size::default();
        }
        self.ended = self.ended.plus(size.scaled((at - started).max(0.0)));
    }
}

/// A running job's part in the sums.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<U, P, Q> {
    pub uid: U,
    pub project: P,
    pub queue: Q,
    pub size: Size,
    pub started: f64,
}

/// The sums by owner, by project and by queue.
#[derive(Debug, Clone)]
pub struct Accrued<U, P, Q> {
    pub by_uid: HashMap<U, Accrual>,
    pub by_project: HashMap<P, Accrual>,
    pub by_queue: HashMap<Q, Accrual>,
}

impl<U, P, Q> Default for Accrued<U, P, Q> {
    fn default() -> Self {
        Accrued {
            by_uid: HashMap::new(),
            by_project: HashMap::new(),
            by_queue: HashMap::new(),
        }
    }
}

impl<U: Hash + Eq + Clone, P: Hash + Eq + Clone, Q: Hash + Eq + Clone> Accrued<U, P, Q> {
    pub fn clear(&mut self) {
        self.by_uid.clear();
        self.by_project.clear();
        self.by_queue.clear();
    }

    pub fn start(&mut self, run: &Run<U, P, Q>) {
        let (size, at) = (run.size, run.started);
        self.by_uid
            .entry(run.uid.clone())
            .or_default()
            .start(size, at);
        self.by_project
            .entry(run.project.clone())
            .or_default()
            .start(size, at);
        self.by_queue
            .entry(run.queue.clone())
            .or_default()
            .start(size, at);
    }

    pub fn end(&mut self, run: &Run<U, P, Q>, at: f64) {
        let (size, started) = (run.size, run.started);
        let end = |a: &mut Accrual| a.end(size, started, at);
        self.by_uid.entry(run.uid.clone()).and_modify(end);
        self.by_project.entry(run.project.clone()).and_modify(end);
        self.by_queue.entry(run.queue.clone()).and_modify(end);
    }

    /// Whether some job is running (the sums then grow with time).
    pub fn growing(&self) -> bool {
        self.by_queue.values().any(|a| a.jobs > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(cores: f64) -> Size {
        Size {
            cores,
            gpus: 0.0,
            nodes: 1.0,
        }
    }

    #[test]
    fn running_jobs_accrue_until_they_end_and_then_stay() {
        let mut a: Accrued<u32, &str, &str> = Accrued::default();
        let run = |uid, cores, started| Run {
            uid,
            project: "chem",
            queue: "batch",
            size: size(cores),
            started,
        };
        let (x, y) = (run(1, 4.0, 100.0), run(2, 2.0, 110.0));
        a.start(&x);
        a.start(&y);
        assert!(a.growing());
        assert_eq!(a.by_queue["batch"].at(120.0).cores, 4.0 * 20.0 + 2.0 * 10.0);
        a.end(&x, 130.0);
        assert_eq!(a.by_uid[&1].at(1000.0).cores, 120.0);
        assert_eq!(a.by_uid[&1].at(1000.0).nodes, 30.0);
        assert_eq!(a.by_project["chem"].at(140.0).cores, 120.0 + 60.0);
        a.end(&y, 150.0);
        assert!(!a.growing());
        assert_eq!(a.by_queue["batch"].at(9999.0).cores, 120.0 + 80.0);
    }

    #[test]
    fn a_clock_behind_the_start_adds_nothing() {
        let mut a: Accrued<u32, u32, u32> = Accrued::default();
        let x = Run {
            uid: 1,
            project: 1,
            queue: 1,
            size: size(8.0),
            started: 500.0,
        };
        a.start(&x);
        assert_eq!(a.by_uid[&1].at(400.0).cores, 0.0);
        a.end(&x, 450.0);
        assert_eq!(a.by_uid[&1].at(1000.0).cores, 0.0);
    }
}
