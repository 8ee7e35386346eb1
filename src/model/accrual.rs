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
//!
//! When the jobs are read again (a new journal backlog, a module reload,
//! an instance restart), the runs that ended before are checked against
//! what had ended by then ([`Ended`]): what the jobs read again lack (jobs
//! the job manager purged since) is carried, so no sum goes down.

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
    /// While the jobs are read again: what had ended before, and what of
    /// it the jobs read so far hold.
    check: Option<Check<U, P, Q>>,
}

impl<U, P, Q> Default for Accrued<U, P, Q> {
    fn default() -> Self {
        Accrued {
            by_uid: HashMap::new(),
            by_project: HashMap::new(),
            by_queue: HashMap::new(),
            check: None,
        }
    }
}

/// A check under way: what had ended, and what of it the jobs read so far
/// hold.
type Check<U, P, Q> = (Ended<U, P, Q>, Ended<U, P, Q>);

/// Allocation-seconds of the runs that had ended by `at` (the time of the
/// last event counted), by owner, project and queue.
#[derive(Debug, Clone)]
pub struct Ended<U, P, Q> {
    pub at: f64,
    pub by_uid: HashMap<U, Size>,
    pub by_project: HashMap<P, Size>,
    pub by_queue: HashMap<Q, Size>,
}

impl<U, P, Q> Ended<U, P, Q> {
    pub fn empty(at: f64) -> Self {
        Ended {
            at,
            by_uid: HashMap::new(),
            by_project: HashMap::new(),
            by_queue: HashMap::new(),
        }
    }
}

/// What `had` holds beyond `again`, in each of its sizes (none below a
/// rounding's worth of the sum).
fn missing(had: Size, again: Size) -> Size {
    let one = |h: f64, a: f64| {
        let m = h - a;
        if m > 1e-9 * h.abs().max(1.0) {
            m
        } else {
            0.0
        }
    };
    Size {
        cores: one(had.cores, again.cores),
        gpus: one(had.gpus, again.gpus),
        nodes: one(had.nodes, again.nodes),
    }
}

/// Adds to `into` what `had` holds beyond `again`, key by key.
fn carry<K: Hash + Eq + Clone>(
    into: &mut HashMap<K, Accrual>,
    had: HashMap<K, Size>,
    again: &HashMap<K, Size>,
) -> bool {
    let mut carried = false;
    for (key, size) in had {
        let lacking = missing(size, again.get(&key).copied().unwrap_or_default());
        if lacking != Size::default() {
            let sum = into.entry(key).or_default();
            sum.ended = sum.ended.plus(lacking);
            carried = true;
        }
    }
    carried
}

impl<U: Hash + Eq + Clone, P: Hash + Eq + Clone, Q: Hash + Eq + Clone> Accrued<U, P, Q> {
    pub fn clear(&mut self) {
        self.by_uid.clear();
        self.by_project.clear();
        self.by_queue.clear();
        self.check = None;
    }

    /// What had ended by `at`, for [`check_against`](Self::check_against).
    pub fn ended(&self, at: f64) -> Ended<U, P, Q> {
        fn of<K: Hash + Eq + Clone>(sums: &HashMap<K, Accrual>) -> HashMap<K, Size> {
            sums.iter()
                .filter(|(_, a)| a.ended != Size::default())
                .map(|(k, a)| (k.clone(), a.ended))
                .collect()
        }
        Ended {
            at,
            by_uid: of(&self.by_uid),
            by_project: of(&self.by_project),
            by_queue: of(&self.by_queue),
        }
    }

    /// From now until [`carry_missing`](Self::carry_missing), the runs
    /// that end by `had.at` are the ones `had` counted.
    pub fn check_against(&mut self, had: Ended<U, P, Q>) {
        let at = had.at;
        self.check = Some((had, Ended::empty(at)));
    }

    /// The sums a check under way is against: a reading of the jobs that
    /// ended before it was complete is checked against them again.
    pub fn take_check(&mut self) -> Option<Ended<U, P, Q>> {
        self.check.take().map(|(had, _)| had)
    }

    /// Carries what [`check_against`](Self::check_against)'s sums hold
    /// beyond the runs that ended by their time since: runs no longer
    /// there to be read. Whether there were any.
    pub fn carry_missing(&mut self) -> bool {
        let Some((had, again)) = self.check.take() else {
            return false;
        };
        let a = carry(&mut self.by_uid, had.by_uid, &again.by_uid);
        let b = carry(&mut self.by_project, had.by_project, &again.by_project);
        let c = carry(&mut self.by_queue, had.by_queue, &again.by_queue);
        a || b || c
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
        if let Some((had, again)) = &mut self.check {
            if at <= had.at {
                let seconds = size.scaled((at - started).max(0.0));
                let add = |s: &mut Size| *s = s.plus(seconds);
                add(again.by_uid.entry(run.uid.clone()).or_default());
                add(again.by_project.entry(run.project.clone()).or_default());
                add(again.by_queue.entry(run.queue.clone()).or_default());
            }
        }
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
    fn runs_read_again_without_some_keep_the_sums_of_before() {
        let run = |uid, queue, cores, started| Run {
            uid,
            project: "chem",
            queue,
            size: size(cores),
            started,
        };
        let (x, y, z) = (
            run(1, "batch", 4.0, 100.0),
            run(2, "debug", 2.0, 110.0),
            run(2, "batch", 1.0, 120.0),
        );
        let mut a: Accrued<u32, &str, &str> = Accrued::default();
        for r in [&x, &y, &z] {
            a.start(r);
        }
        a.end(&x, 130.0);
        a.end(&y, 150.0);
        let had = a.ended(150.0);
        let before = |a: &Accrued<u32, &str, &str>| {
            (
                a.by_uid[&1].at(1000.0),
                a.by_uid[&2].at(1000.0),
                a.by_queue["batch"].at(1000.0),
                a.by_project["chem"].at(1000.0),
            )
        };
        let sums = before(&a);
        // Read again without x (purged), z still running, then z ends
        // after the time checked against: it counts once.
        a.clear();
        a.check_against(had);
        a.start(&y);
        a.start(&z);
        a.end(&y, 150.0);
        assert!(a.carry_missing());
        assert!(!a.carry_missing(), "carried once");
        assert_eq!(before(&a), sums);
        a.end(&z, 200.0);
        assert_eq!(a.by_uid[&2].at(1000.0).cores, 2.0 * 40.0 + 80.0);
        assert_eq!(a.by_queue["batch"].at(1000.0).cores, 120.0 + 80.0);
    }

    #[test]
    fn read_again_whole_nothing_is_carried() {
        let mut a: Accrued<u32, u32, u32> = Accrued::default();
        let x = Run {
            uid: 1,
            project: 1,
            queue: 1,
            size: size(3.0),
            started: 0.1,
        };
        a.start(&x);
        a.end(&x, 0.7);
        let had = a.ended(0.7);
        a.clear();
        a.check_against(had);
        a.start(&x);
        a.end(&x, 0.7);
        assert!(!a.carry_missing());
        assert_eq!(a.by_uid[&1].at(5.0).cores, 3.0 * (0.7 - 0.1));
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
