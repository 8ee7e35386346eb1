//! Who runs what: every active job's owner, project, state and, once
//! allocated, its nodes, cores and GPUs with their host names, kept from the
//! job-manager journal that the jobflow collector follows. The users and
//! jobmap collectors read it.
//!
//! States are those `flux jobs` filters on: a job is pending from `submit`
//! to `alloc` (DEPEND, PRIORITY, SCHED), running from `alloc` until
//! `clean` (RUN, and CLEANUP, which `flux jobs --filter=running` includes),
//! and a job that a fatal exception ends before it is allocated is running
//! too from then on, as CLEANUP is. Its resources are held from `alloc` to
//! `clean`, as [`super::allocations`] counts them.

use super::error::ParseError;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::accrual::{Accrued, Ended, Run, Size};
use super::idset::IdSet;
use super::journal::EventContext;
pub use super::journal::{JobNode, Phase, RosterJob};
use super::resources::JobR;
#[cfg(test)]
use super::usage::Tallies;
use super::usage::{ByProject, ByUid};

/// Unreadable jobs kept for reporting, at most: where no reader takes
/// them (the jobmap collector off), they must not pile up.
const MAX_UNREADABLE: usize = 64;

#[derive(Debug, Default)]
pub struct Roster {
    jobs: FxHashMap<i64, RosterJob>,
    /// Changes with every change of `jobs`.
    generation: u64,
    /// A backlog was read to its end and the stream has not ended since.
    complete: bool,
    /// Jobs whose R could not be read, with why, not yet reported.
    unreadable: Vec<(i64, String)>,
    /// Host names seen, shared by every job that runs on them.
    hosts: HashMap<String, Arc<str>>,
    projects: HashMap<String, Arc<str>>,
    /// Usage by owner and by project, kept with `jobs`.
    by_uid: ByUid,
    by_project: ByProject,
    /// The jobs changed since a reader last took them, while one asks.
    changes: Option<Changes>,
    /// When each running job whose R was read started (its `alloc`),
    /// until its run ends (`finish`, or its first fatal exception).
    run_started: FxHashMap<i64, f64>,
    /// Allocation-seconds by owner, project and queue, as the jobs known
    /// since the backlog began ran them, and what jobs no longer there
    /// (purged) had ended with.
    accrued: AccruedJobs,
    /// The time of the latest event read.
    last_at: f64,
    /// What had ended before this module read the jobs (saved by the one
    /// before it), to check the first backlog against.
    restored: Option<EndedJobs>,
}

/// Allocation-seconds of runs that had ended, by owner, project and queue.
pub type EndedJobs = Ended<Option<u32>, Option<Arc<str>>, Option<Arc<str>>>;

/// [`EndedJobs`] as it is saved between two modules (in the KVS): every
/// key with its core-, GPU- and node-seconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedSeconds {
    pub version: u32,
    /// The time of the latest event counted in the sums.
    pub at: f64,
    pub by_uid: Vec<(Option<u32>, [f64; 3])>,
    pub by_project: Vec<(Option<String>, [f64; 3])>,
    pub by_queue: Vec<(Option<String>, [f64; 3])>,
}

impl SavedSeconds {
    pub const VERSION: u32 = 1;

    /// From its JSON text: a version other than this module's is named
    /// as such, whatever its shape.
    pub fn parse(json: &str) -> Result<SavedSeconds, ParseError> {
        #[derive(serde::Deserialize)]
        struct Version {
            version: u32,
        }
        let version = serde_json::from_str::<Version>(json)
            .map_err(|e| ParseError::malformed("the saved allocation-seconds", e))?
            .version;
        if version != Self::VERSION {
            return Err(ParseError::invalid(format!(
                "version {version} (this module reads version {})",
                Self::VERSION
            )));
        }
        serde_json::from_str(json)
            .map_err(|e| ParseError::malformed("the saved allocation-seconds", e))
    }
}

fn triple(s: Size) -> [f64; 3] {
    [s.cores, s.gpus, s.nodes]
}

fn size_of([cores, gpus, nodes]: [f64; 3]) -> Option<Size> {
    [cores, gpus, nodes]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
        .then_some(Size { cores, gpus, nodes })
}

/// Allocation-seconds by owner, by project and by queue (None: the
/// anonymous queue, or no project).
pub type AccruedJobs = Accrued<Option<u32>, Option<Arc<str>>, Option<Arc<str>>>;

/// A running job's part in [`AccruedJobs`].
type JobRun = Run<Option<u32>, Option<Arc<str>>, Option<Arc<str>>>;

/// What changed in the roster since a reader last looked: these jobs, or
/// (`all`) everything, after a backlog or when the reader began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub all: bool,
    pub jobs: HashSet<i64>,
}

impl Changes {
    fn everything() -> Changes {
        Changes {
            all: true,
            jobs: HashSet::new(),
        }
    }

    fn job(&mut self, id: i64) {
        if !self.all {
            self.jobs.insert(id);
        }
    }
}

impl Roster {
    /// Starts reading every job again. The runs that had ended are checked
    /// against the jobs read (see [`super::accrual`]): those saved by the
    /// module before this one, or those read so far.
    pub fn begin_backlog(&mut self) {
        let had = self
            .restored
            .take()
            .or_else(|| self.accrued.take_check())
            .unwrap_or_else(|| self.accrued.ended(self.last_at));
        self.jobs.clear();
        self.run_started.clear();
        self.accrued.clear();
        self.accrued.check_against(had);
        self.by_uid.clear();
        self.by_project.clear();
        if let Some(changes) = &mut self.changes {
            *changes = Changes::everything();
        }
        self.complete = false;
        self.generation += 1;
    }

    pub fn end_backlog(&mut self) {
        self.accrued.carry_missing();
        self.complete = true;
        self.generation += 1;
    }

    /// What had ended by the latest event read, to save for the module
    /// after this one; None until the jobs are read to the present.
    pub fn saved_seconds(&self) -> Option<SavedSeconds> {
        if !self.complete {
            return None;
        }
        let ended = self.accrued.ended(self.last_at);
        let name = |k: &Option<Arc<str>>| k.as_deref().map(str::to_string);
        let mut saved = SavedSeconds {
            version: SavedSeconds::VERSION,
            at: ended.at,
            by_uid: ended.by_uid.iter().map(|(k, s)| (*k, triple(*s))).collect(),
            by_project: ended
                .by_project
                .iter()
                .map(|(k, s)| (name(k), triple(*s)))
                .collect(),
            by_queue: ended
                .by_queue
                .iter()
                .map(|(k, s)| (name(k), triple(*s)))
                .collect(),
        };
        saved.by_uid.sort_by_key(|(k, _)| *k);
        saved.by_project.sort_by(|a, b| a.0.cmp(&b.0));
        saved.by_queue.sort_by(|a, b| a.0.cmp(&b.0));
        Some(saved)
    }

    /// Takes what the module before this one saved, for the next backlog
    /// to be checked against. A version of another shape or a sum that is
    /// not a number is refused, and nothing is taken.
    pub fn restore_seconds(&mut self, saved: &SavedSeconds) -> Result<(), ParseError> {
        if saved.version != SavedSeconds::VERSION {
            return Err(ParseError::invalid(format!(
                "version {} (this module reads version {})",
                saved.version,
                SavedSeconds::VERSION
            )));
        }
        let bad = |what: &str| ParseError::invalid(format!("{what}: not a count of seconds"));
        let mut ended = EndedJobs::empty(saved.at);
        for (uid, s) in &saved.by_uid {
            ended
                .by_uid
                .insert(*uid, size_of(*s).ok_or_else(|| bad("by_uid"))?);
        }
        for (name, s) in &saved.by_project {
            let key = name.as_deref().map(|n| intern(&mut self.projects, n));
            ended
                .by_project
                .insert(key, size_of(*s).ok_or_else(|| bad("by_project"))?);
        }
        for (name, s) in &saved.by_queue {
            let key = name.as_deref().map(|n| intern(&mut self.projects, n));
            ended
                .by_queue
                .insert(key, size_of(*s).ok_or_else(|| bad("by_queue"))?);
        }
        if !saved.at.is_finite() {
            return Err(bad("at"));
        }
        self.restored = Some(ended);
        Ok(())
    }

    pub fn stream_lost(&mut self) {
        self.complete = false;
        self.generation += 1;
    }

    /// The jobs and the generation, while the roster is read to the
    /// present.
    pub fn current(&self) -> Option<(u64, &FxHashMap<i64, RosterJob>)> {
        self.complete.then_some((self.generation, &self.jobs))
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Usage by uid and by project, while the roster is read to the
    /// present.
    pub fn usage(&self) -> Option<(&ByUid, &ByProject)> {
        self.complete.then_some((&self.by_uid, &self.by_project))
    }

    /// Allocation-seconds by owner, project and queue of every job the
    /// journal told of (the job manager's inactive jobs, then every job
    /// since), while the roster is read to the present.
    pub fn accrued(&self) -> Option<&AccruedJobs> {
        self.complete.then_some(&self.accrued)
    }

    /// From now on, changed jobs are noted for [`Roster::take_changes`];
    /// the first take is everything.
    pub fn watch_changes(&mut self) {
        self.changes = Some(Changes::everything());
    }

    /// No reader takes changes any more: they are no longer noted.
    pub fn unwatch_changes(&mut self) {
        self.changes = None;
    }

    /// The jobs changed since the last take (everything at the first).
    pub fn take_changes(&mut self) -> Changes {
        let fresh = Changes {
            all: false,
            jobs: HashSet::new(),
        };
        match &mut self.changes {
            Some(changes) => std::mem::replace(changes, fresh),
            None => Changes::everything(),
        }
    }

    /// Counts `job` into the usage tallies (or out, as it was).
    fn tally(&mut self, job: &RosterJob, into: bool) {
        if into {
            self.by_uid.add(job.uid, job);
            self.by_project.add(job.project.clone(), job);
        } else {
            self.by_uid.remove(&job.uid, job);
            self.by_project.remove(&job.project, job);
        }
    }

    /// Applies `change` to job `id`, if there is one, keeping the tallies
    /// and the changes in step with it; `change` says whether it changed
    /// anything.
    fn change(&mut self, id: i64, change: impl FnOnce(&mut RosterJob) -> bool) {
        let Some(mut job) = self.jobs.remove(&id) else {
            return;
        };
        self.tally(&job, false);
        let changed = change(&mut job);
        self.tally(&job, true);
        self.jobs.insert(id, job);
        if changed {
            self.generation += 1;
            if let Some(changes) = &mut self.changes {
                changes.job(id);
            }
        }
    }

    /// Jobs left out of the map because their R could not be read, since
    /// the last call: each is reported once.
    pub fn take_unreadable(&mut self) -> Vec<(i64, String)> {
        std::mem::take(&mut self.unreadable)
    }

    fn unreadable_job(&mut self, id: i64, why: String) {
        if self.unreadable.len() < MAX_UNREADABLE {
            self.unreadable.push((id, why));
        }
    }

    pub fn submit(
        &mut self,
        id: i64,
        uid: Option<u32>,
        project: Option<&str>,
        queue: Option<&str>,
    ) {
        let project = project.map(|p| intern(&mut self.projects, p));
        let queue = queue
            .filter(|q| !q.is_empty())
            .map(|q| intern(&mut self.projects, q));
        let job = RosterJob {
            uid,
            project,
            queue,
            phase: Phase::Pending,
            nodes: None,
        };
        self.tally(&job, true);
        if let Some(was) = self.jobs.insert(id, job) {
            self.tally(&was, false);
        }
        if let Some(changes) = &mut self.changes {
            changes.job(id);
        }
        self.generation += 1;
    }

    /// An event of a job already submitted, at time 0: for readers that
    /// do not read allocation-seconds.
    pub fn event(
        &mut self,
        id: i64,
        name: &str,
        context: &EventContext,
        r: Option<Result<&JobR, &ParseError>>,
    ) {
        self.event_at(id, name, 0.0, context, r);
    }

    /// An event of a job already submitted, at Unix time `at`: `alloc`
    /// (with the job's R), `jobspec-update` (a new queue), `finish`, a
    /// fatal `exception`, `clean`.
    pub fn event_at(
        &mut self,
        id: i64,
        name: &str,
        at: f64,
        context: &EventContext,
        r: Option<Result<&JobR, &ParseError>>,
    ) {
        if at > self.last_at {
            self.last_at = at;
        }
        match name {
            "jobspec-update" => {
                if let Some(queue) = &context.queue {
                    let queue = (!queue.is_empty()).then(|| intern(&mut self.projects, queue));
                    // A running job's accrual stays with the queue it
                    // started in.
                    if !self.run_started.contains_key(&id) {
                        self.change(id, |job| {
                            let changed = job.queue != queue;
                            job.queue = queue;
                            changed
                        });
                    }
                }
            }
            "finish" => self.end_run(id, at),
            "alloc" => {
                let hosts = &mut self.hosts;
                let read = r.map(|r| r.map_err(Clone::clone).and_then(|r| nodes_of(r, hosts)));
                let nodes = match read {
                    Some(Ok(nodes)) => Some(nodes),
                    Some(Err(why)) => {
                        self.unreadable_job(id, why.to_string());
                        None
                    }
                    None => {
                        self.unreadable_job(id, "its alloc event came without R".into());
                        None
                    }
                };
                self.change(id, |job| {
                    job.phase = Phase::Running;
                    job.nodes = nodes;
                    true
                });
                if let Some(run) = self.jobs.get(&id).and_then(|job| run_of(job, at)) {
                    self.accrued.start(&run);
                    self.run_started.insert(id, at);
                }
            }
            "exception" if context.is_fatal() => {
                self.end_run(id, at);
                self.change(id, |job| {
                    let was_pending = job.phase == Phase::Pending;
                    job.phase = Phase::Running;
                    was_pending
                });
            }
            "clean" => {
                // A run ends at the latest with the job.
                self.end_run(id, at);
                if let Some(job) = self.jobs.remove(&id) {
                    self.tally(&job, false);
                    if let Some(changes) = &mut self.changes {
                        changes.job(id);
                    }
                    self.generation += 1;
                }
                if self.jobs.capacity() > 1024 && self.jobs.len() < self.jobs.capacity() / 4 {
                    self.jobs.shrink_to_fit();
                }
                if self.jobs.is_empty() {
                    // Names of hosts and projects no job uses any more.
                    self.hosts.clear();
                    self.projects.clear();
                }
            }
            _ => {}
        }
    }
}

impl Roster {
    /// Ends job `id`'s run at `at`, if it is running and has not ended.
    fn end_run(&mut self, id: i64, at: f64) {
        let Some(started) = self.run_started.remove(&id) else {
            return;
        };
        if let Some(run) = self.jobs.get(&id).and_then(|job| run_of(job, started)) {
            self.accrued.end(&run, at);
        }
        if self.run_started.capacity() > 1024
            && self.run_started.len() < self.run_started.capacity() / 4
        {
            self.run_started.shrink_to_fit();
        }
    }
}

/// A job's part in the allocation-seconds, had it started at `started`:
/// None before its R is read.
fn run_of(job: &RosterJob, started: f64) -> Option<JobRun> {
    let nodes = job.nodes.as_deref()?;
    let size = Size {
        cores: nodes.iter().map(|n| f64::from(n.cores)).sum(),
        gpus: nodes.iter().map(|n| n.gpus.count() as f64).sum(),
        nodes: nodes.len() as f64,
    };
    Some(Run {
        uid: job.uid,
        project: job.project.clone(),
        queue: job.queue.clone(),
        size,
        started,
    })
}

fn intern(table: &mut HashMap<String, Arc<str>>, value: &str) -> Arc<str> {
    if let Some(kept) = table.get(value) {
        return Arc::clone(kept);
    }
    let kept: Arc<str> = Arc::from(value);
    table.insert(value.to_string(), Arc::clone(&kept));
    kept
}

/// The nodes of a job's R, each with its host name: RFC 20's `nodelist`
/// names the ranks of `R_lite` in ascending order.
fn nodes_of(r: &JobR, hosts: &mut HashMap<String, Arc<str>>) -> Result<Arc<[JobNode]>, ParseError> {
    let mut by_rank: BTreeMap<u32, JobNode> = BTreeMap::new();
    for slice in &r.slices {
        let cores = u32::try_from(slice.cores.count()).unwrap_or(u32::MAX);
        for rank in slice.ranks.iter() {
            let node = by_rank.entry(rank).or_insert_with(|| JobNode {
                rank,
                host: None,
                cores: 0,
                gpus: IdSet::new(),
            });
            node.cores = node.cores.saturating_add(cores);
            node.gpus.union_with(&slice.gpus);
        }
    }
    let mut nodes: Vec<JobNode> = by_rank.into_values().collect();
    if !r.nodelist.is_empty() {
        let mut names = Vec::with_capacity(nodes.len());
        for list in &r.nodelist {
            names.extend(
                super::hostlist::expand(list)
                    .map_err(|e| ParseError::invalid(format!("R nodelist: {e}")))?,
            );
        }
        if names.len() != nodes.len() {
            return Err(ParseError::invalid(format!(
                "R nodelist names {} hosts for {} ranks",
                names.len(),
                nodes.len()
            )));
        }
        for (node, name) in nodes.iter_mut().zip(names) {
            node.host = Some(intern(hosts, &name));
        }
    }
    Ok(nodes.into())
}

/// A job of `uid` for unit tests: pending where `ranks` is empty, else
/// running with `cores` cores and the GPUs `gpus` on each of them.
#[cfg(test)]
pub(crate) fn test_job(
    uid: u32,
    project: Option<&str>,
    ranks: &[u32],
    cores: u32,
    gpus: &str,
) -> RosterJob {
    let nodes: Vec<JobNode> = ranks
        .iter()
        .map(|&rank| JobNode {
            rank,
            host: None,
            cores,
            gpus: IdSet::parse(gpus).expect("a valid idset"),
        })
        .collect();
    RosterJob {
        uid: Some(uid),
        project: project.map(Arc::from),
        queue: None,
        phase: if ranks.is_empty() {
            Phase::Pending
        } else {
            Phase::Running
        },
        nodes: (!ranks.is_empty()).then(|| nodes.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::value::RawValue;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn job_r(s: &str) -> JobR {
        JobR::read(&raw(s)).unwrap()
    }

    #[test]
    fn a_job_is_pending_then_running_with_its_hosts_and_gpus_then_gone() {
        let mut roster = Roster::default();
        roster.begin_backlog();
        roster.submit(7, Some(1001), Some("chem"), None);
        roster.end_backlog();
        let (_, jobs) = roster.current().unwrap();
        assert_eq!(jobs[&7].phase, Phase::Pending);
        let r = job_r(
            r#"{"version":1,"execution":{"R_lite":[{"rank":"2-3","children":{"core":"0-3","gpu":"1"}},{"rank":"5","children":{"core":"4"}}],"nodelist":["node[2-3]","login5"]}}"#,
        );
        roster.event(7, "alloc", &EventContext::default(), Some(Ok(&r)));
        let (_, jobs) = roster.current().unwrap();
        let nodes = jobs[&7].nodes.as_ref().unwrap();
        let hosts: Vec<_> = nodes.iter().map(|n| n.host.as_deref().unwrap()).collect();
        assert_eq!(hosts, ["node2", "node3", "login5"]);
        assert_eq!(nodes[0].cores, 4);
        assert_eq!(nodes[0].gpus.iter().collect::<Vec<_>>(), [1]);
        assert_eq!(nodes[2].gpus.count(), 0);
        assert_eq!(jobs[&7].phase, Phase::Running);
        roster.event(7, "clean", &EventContext::default(), None);
        assert!(roster.current().unwrap().1.is_empty());
    }

    #[test]
    fn an_unreadable_r_is_reported_once_and_the_job_still_counts_as_running() {
        let mut roster = Roster::default();
        roster.end_backlog();
        roster.submit(1, Some(5), None, None);
        roster.event(1, "alloc", &EventContext::default(), Some(Ok(&job_r(r#"{"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0"}}],"nodelist":["a[0-4]"]}}"#))));
        let unreadable = roster.take_unreadable();
        assert_eq!(unreadable.len(), 1);
        assert!(
            unreadable[0].1.contains("5 hosts for 2 ranks"),
            "{unreadable:?}"
        );
        assert!(roster.take_unreadable().is_empty());
        let (_, jobs) = roster.current().unwrap();
        assert_eq!(
            (jobs[&1].phase, jobs[&1].nodes.is_none()),
            (Phase::Running, true)
        );
    }

    #[test]
    fn a_job_canceled_while_pending_is_running_until_clean_as_flux_jobs_counts_it() {
        let mut roster = Roster::default();
        roster.end_backlog();
        roster.submit(1, Some(5), None, None);
        roster.event(
            1,
            "exception",
            &EventContext::of(Some(&raw(r#"{"type":"cancel","severity":0}"#))),
            None,
        );
        assert_eq!(roster.current().unwrap().1[&1].phase, Phase::Running);
        roster.submit(2, Some(5), None, None);
        roster.event(
            2,
            "exception",
            &EventContext::of(Some(&raw(r#"{"type":"x","severity":3}"#))),
            None,
        );
        assert_eq!(roster.current().unwrap().1[&2].phase, Phase::Pending);
    }

    #[test]
    fn the_roster_is_not_current_while_a_backlog_is_read_or_after_the_stream_ends() {
        let mut roster = Roster::default();
        assert!(roster.current().is_none());
        roster.begin_backlog();
        assert!(roster.current().is_none());
        roster.end_backlog();
        assert!(roster.current().is_some());
        roster.stream_lost();
        assert!(roster.current().is_none());
    }

    /// The usage a count of the roster's jobs from scratch gives.
    fn recounted(roster: &Roster) -> BTreeMap<Option<u32>, super::super::usage::Usage> {
        let mut by_uid = Tallies::default();
        for job in roster.current().unwrap().1.values() {
            by_uid.add(job.uid, job);
        }
        by_uid.iter().map(|(uid, usage)| (*uid, usage)).collect()
    }

    fn kept(roster: &Roster) -> BTreeMap<Option<u32>, super::super::usage::Usage> {
        let (by_uid, _) = roster.usage().unwrap();
        by_uid.iter().map(|(uid, usage)| (*uid, usage)).collect()
    }

    #[test]
    fn the_usage_kept_as_jobs_change_is_a_count_from_scratch() {
        let mut roster = Roster::default();
        roster.begin_backlog();
        roster.end_backlog();
        let r = |ranks: &str| {
            job_r(&format!(
                r#"{{"version":1,"execution":{{"R_lite":[{{"rank":"{ranks}","children":{{"core":"0-1","gpu":"0"}}}}]}}}}"#
            ))
        };
        roster.submit(1, Some(5), Some("chem"), None);
        roster.submit(2, Some(5), None, None);
        roster.submit(3, Some(6), Some("chem"), None);
        roster.event(1, "alloc", &EventContext::default(), Some(Ok(&r("0-1"))));
        roster.event(2, "alloc", &EventContext::default(), Some(Ok(&r("1-2"))));
        assert_eq!(kept(&roster), recounted(&roster));
        let five = kept(&roster)[&Some(5)];
        assert_eq!(
            (five.running, five.nodes, five.cores, five.gpus),
            (2, 3, 8, 4)
        );
        roster.event(
            3,
            "exception",
            &EventContext::of(Some(&raw(r#"{"type":"cancel","severity":0}"#))),
            None,
        );
        roster.event(1, "clean", &EventContext::default(), None);
        assert_eq!(kept(&roster), recounted(&roster));
        assert_eq!(kept(&roster)[&Some(5)].nodes, 2);
        // The same ID again (a backlog read twice) replaces the job.
        roster.submit(2, Some(6), None, None);
        assert_eq!(kept(&roster), recounted(&roster));
        roster.event(2, "clean", &EventContext::default(), None);
        roster.event(3, "clean", &EventContext::default(), None);
        assert!(kept(&roster).is_empty());
        let (_, by_project) = roster.usage().unwrap();
        assert!(by_project.is_empty());
    }

    #[test]
    fn a_watcher_takes_everything_first_then_only_the_jobs_that_changed() {
        let mut roster = Roster::default();
        roster.end_backlog();
        roster.submit(1, Some(5), None, None);
        roster.watch_changes();
        assert!(roster.take_changes().all);
        roster.submit(2, Some(5), None, None);
        roster.event(1, "clean", &EventContext::default(), None);
        // An event that changes nothing is no change.
        roster.event(
            2,
            "exception",
            &EventContext::of(Some(&raw(r#"{"type":"x","severity":3}"#))),
            None,
        );
        let changes = roster.take_changes();
        assert!(!changes.all);
        assert_eq!(changes.jobs, HashSet::from([1, 2]));
        assert!(roster.take_changes().jobs.is_empty());
        // A backlog read again changes everything.
        roster.begin_backlog();
        roster.end_backlog();
        assert!(roster.take_changes().all);
    }

    /// Jobs 1 (2 cores, 10 s, queue batch) and 2 (1 core, 5 s, queue
    /// debug) of uid 5, with their events at their times.
    fn run_two(roster: &mut Roster, which: &[i64]) {
        let r = job_r(
            r#"{"version":1,"execution":{"R_lite":[{"rank":"0","children":{"core":"0-1"}}]}}"#,
        );
        let one =
            job_r(r#"{"version":1,"execution":{"R_lite":[{"rank":"1","children":{"core":"0"}}]}}"#);
        for &id in which {
            let (queue, r, start, end) = if id == 1 {
                ("batch", &r, 100.0, 110.0)
            } else {
                ("debug", &one, 120.0, 125.0)
            };
            roster.submit(id, Some(5), Some("chem"), Some(queue));
            let none = EventContext::default();
            roster.event_at(id, "alloc", start, &none, Some(Ok(r)));
            roster.event_at(id, "finish", end, &none, None);
            roster.event_at(id, "clean", end, &none, None);
        }
    }

    fn core_seconds(roster: &Roster) -> (f64, f64, f64, f64) {
        let a = roster.accrued().unwrap();
        let q = |name: &str| a.by_queue[&Some(Arc::from(name))].at(1e9).cores;
        (
            a.by_uid[&Some(5)].at(1e9).cores,
            a.by_project[&Some(Arc::from("chem"))].at(1e9).cores,
            q("batch"),
            q("debug"),
        )
    }

    #[test]
    fn a_purged_job_stays_counted_when_the_jobs_are_read_again() {
        let mut roster = Roster::default();
        roster.begin_backlog();
        run_two(&mut roster, &[1, 2]);
        roster.end_backlog();
        assert_eq!(core_seconds(&roster), (25.0, 25.0, 20.0, 5.0));
        // A new backlog (the journal read again) without job 1, purged.
        roster.begin_backlog();
        run_two(&mut roster, &[2]);
        roster.end_backlog();
        assert_eq!(core_seconds(&roster), (25.0, 25.0, 20.0, 5.0));
        // Saved, and read by the next module, whose backlog lacks both.
        let saved = roster.saved_seconds().unwrap();
        let text = serde_json::to_string(&saved).unwrap();
        let mut next = Roster::default();
        next.restore_seconds(&SavedSeconds::parse(&text).unwrap())
            .unwrap();
        next.begin_backlog();
        next.end_backlog();
        assert_eq!(core_seconds(&next), (25.0, 25.0, 20.0, 5.0));
        // A backlog lost before its end is checked against the same sums.
        let mut again = Roster::default();
        again.restore_seconds(&saved).unwrap();
        again.begin_backlog();
        run_two(&mut again, &[2]);
        again.stream_lost();
        again.begin_backlog();
        run_two(&mut again, &[2]);
        again.end_backlog();
        assert_eq!(core_seconds(&again), (25.0, 25.0, 20.0, 5.0));
    }

    #[test]
    fn saved_seconds_of_another_version_or_not_numbers_are_refused() {
        let mut roster = Roster::default();
        let mut saved = SavedSeconds {
            version: 2,
            at: 1.0,
            by_uid: vec![(Some(5), [1.0, 0.0, 1.0])],
            by_project: vec![],
            by_queue: vec![(None, [1.0, 0.0, 1.0])],
        };
        let e = roster.restore_seconds(&saved).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        let e = SavedSeconds::parse(r#"{"version": 9, "other": "shape"}"#).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        assert!(SavedSeconds::parse("[1, 2]").is_err());
        saved.version = SavedSeconds::VERSION;
        saved.by_uid[0].1[0] = -3.0;
        let e = roster.restore_seconds(&saved).unwrap_err();
        assert!(e.to_string().contains("by_uid"), "{e}");
        // Nothing was taken: the backlog carries nothing.
        roster.begin_backlog();
        roster.end_backlog();
        assert!(roster.accrued().unwrap().by_uid.is_empty());
    }
}
