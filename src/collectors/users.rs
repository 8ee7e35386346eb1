//! Who is using the machine: for each user and each project, active jobs by
//! state and allocated nodes, cores and GPUs, from the roster the jobflow
//! collector keeps from the job-manager journal ([`crate::model::roster`]).
//! The counts are `flux jobs -A`'s, grouped by user (or project).
//!
//! The `user` label is the user name, looked up away from the reactor
//! thread ([`crate::names`]); a uid whose name is not known yet (or not at
//! all) is shown as the number. The number of distinct users and projects
//! exported is bounded by `label-limit`: the busiest (by allocated cores,
//! then jobs) keep their own series, the rest are summed as `other`, and
//! `flux_usage_folded_total` counts each user or project folded so.
//!
//! It also counts the core-, GPU- and node-seconds allocated to each user,
//! project and queue ([`crate::model::accrual`]): the sum over `flux jobs
//! -a` of each job's allocation times its run time, growing while jobs run.
//! The journal's backlog holds every job the job manager still keeps, so
//! after a module reload or an instance restart the sums are read again
//! from the same jobs: nothing counted twice, nothing missed. A user or
//! project keeps its own counter once it has one (the first `label-limit`,
//! biggest first), so that "other" only grows.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use super::{About, Collector, Context, Render, Settings, Spec};
use crate::model::accrual::Size;
use crate::model::roster::AccruedJobs;
pub use crate::model::usage::Usage;
use crate::model::usage::{ByProject, ByUid};
use crate::names::Names;
use crate::reactor::roster::{self, Follower, RosterReader};
use crate::render::{Doc, Family, Fold, Rendered};
use crate::state::{Section, State};
use flux::{Error, Level, Timer};

pub const NAME: &str = "users";
pub const SECTION: Section<UsersState> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "Active jobs and allocated nodes, cores and GPUs of each user and each project, as flux jobs -A counts them; at most label-limit of each.",
    about: About {
        name: NAME,
        on_by_default: true,
        // label-limit is the jobflow collector's, and bounds these labels too.
        options: &[],
        needs: &["jobflow"],
    },
    start,
    restart_needed: |_, _| false,
    render: Render::Now(render),
    reads: &[],
    families: FAMILIES,
};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsersState {
    /// By label value ("other" for the folded).
    pub users: BTreeMap<String, Usage>,
    pub projects: BTreeMap<String, Usage>,
    /// Distinct users and projects ever folded into "other".
    pub folded_users: u64,
    pub folded_projects: u64,
    /// Allocation-seconds by user, project (label values, "other" for
    /// those with no counter of their own) and queue (None: anonymous).
    pub accrued_users: BTreeMap<String, Size>,
    pub accrued_projects: BTreeMap<String, Size>,
    pub accrued_queues: BTreeMap<Option<String>, Size>,
}

/// Labels the usage of each user and each project, folding all but the
/// `limit` busiest of each into "other". `folded` remembers who was ever
/// folded.
pub fn count(
    by_uid: &ByUid,
    by_project: &ByProject,
    names: &dyn Fn(u32) -> String,
    limit: usize,
    folded: &mut Folded,
) -> UsersState {
    let users = by_uid.iter().map(|(uid, usage)| {
        let label = uid.map_or_else(|| "unknown".to_string(), names);
        (label, usage)
    });
    let projects = by_project
        .iter()
        .map(|(project, usage)| (project.as_deref().unwrap_or("none").to_string(), usage));
    let (users, new_users) = fold(users.collect(), limit, &mut folded.users);
    let (projects, new_projects) = fold(projects.collect(), limit, &mut folded.projects);
    folded.user_count += new_users;
    folded.project_count += new_projects;
    UsersState {
        users,
        projects,
        folded_users: folded.user_count,
        folded_projects: folded.project_count,
        ..UsersState::default()
    }
}

/// Who was ever folded into "other", and who has counters of their own.
#[derive(Debug, Default)]
pub struct Folded {
    users: HashSet<String>,
    projects: HashSet<String>,
    user_count: u64,
    project_count: u64,
    counted_users: HashSet<String>,
    counted_projects: HashSet<String>,
}

/// Allocation-seconds at Unix time `now` by user, project and queue, into
/// `state`: each user or project that has a counter keeps it, others get
/// one while fewer than `limit` have, the biggest first; the rest are
/// summed as "other".
pub fn accrue(
    state: &mut UsersState,
    accrued: &AccruedJobs,
    names: &dyn Fn(u32) -> String,
    limit: usize,
    folded: &mut Folded,
    now: f64,
) {
    let users = accrued.by_uid.iter().map(|(uid, a)| {
        let label = uid.map_or_else(|| "unknown".to_string(), names);
        (label, a.at(now))
    });
    state.accrued_users = sticky_fold(users.collect(), limit, &mut folded.counted_users);
    let projects = accrued
        .by_project
        .iter()
        .map(|(p, a)| (p.as_deref().unwrap_or("none").to_string(), a.at(now)));
    state.accrued_projects = sticky_fold(projects.collect(), limit, &mut folded.counted_projects);
    state.accrued_queues = accrued
        .by_queue
        .iter()
        .map(|(q, a)| (q.as_deref().map(String::from), a.at(now)))
        .collect();
}

fn sticky_fold(
    mut all: Vec<(String, Size)>,
    limit: usize,
    counted: &mut HashSet<String>,
) -> BTreeMap<String, Size> {
    all.sort_by(|(a_name, a), (b_name, b)| b.cores.total_cmp(&a.cores).then(a_name.cmp(b_name)));
    let mut out: BTreeMap<String, Size> = BTreeMap::new();
    for (label, size) in all {
        let own = counted.contains(&label) || counted.len() < limit;
        let key = if own {
            counted.insert(label.clone());
            label
        } else {
            "other".to_string()
        };
        let sum = out.entry(key).or_default();
        sum.cores += size.cores;
        sum.gpus += size.gpus;
        sum.nodes += size.nodes;
    }
    out
}

/// Keeps the `limit` busiest labels, sums the rest as "other"; returns
/// them with how many were folded for the first time.
fn fold(
    mut all: Vec<(String, Usage)>,
    limit: usize,
    ever_folded: &mut HashSet<String>,
) -> (BTreeMap<String, Usage>, u64) {
    // Busiest first; the name breaks ties, so the cut is the same each time.
    all.sort_by(|(a_name, a), (b_name, b)| {
        (b.cores, b.running + b.pending, a_name).cmp(&(a.cores, a.running + a.pending, b_name))
    });
    let mut kept = BTreeMap::new();
    let mut newly_folded = 0;
    for (i, (label, usage)) in all.into_iter().enumerate() {
        if i < limit {
            kept.insert(label, usage);
        } else {
            kept.entry("other".to_string())
                .or_insert_with(Usage::default)
                .add(&usage);
            if ever_folded.insert(label) {
                newly_folded += 1;
            }
        }
    }
    (kept, newly_folded)
}

struct Inner {
    ctx: Rc<Context>,
    roster: RosterReader,
    names: Names,
    limit: Cell<usize>,
    folded: RefCell<Folded>,
    /// The roster generation and names version last counted from.
    counted: Cell<Option<(u64, u64, usize)>>,
    /// Notices names that arrive while nothing else changes.
    _timer: RefCell<Option<Timer>>,
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let inner = Rc::new(Inner {
        roster: ctx.roster_reader(),
        names: ctx.names().clone(),
        ctx,
        limit: Cell::new(settings.label_limit()),
        folded: RefCell::new(Folded::default()),
        counted: Cell::new(None),
        _timer: RefCell::new(None),
    });
    let timer = roster::follow(&inner, settings.poll_interval)?;
    *inner._timer.borrow_mut() = Some(timer);
    Ok(Box::new(inner))
}

impl Follower for Inner {
    fn ctx(&self) -> &Context {
        &self.ctx
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn stale(&self) -> bool {
        let key = self.key();
        key.is_none() || key != self.counted.get()
    }

    /// Counts again where the roster, the names or the limit changed.
    fn refresh(&self) {
        self.recount();
    }

    /// The allocation-seconds grow while jobs run.
    fn ticking(&self) -> bool {
        self.roster.borrow().accrued().is_some_and(|a| a.growing())
    }
}

impl Inner {
    fn key(&self) -> Option<(u64, u64, usize)> {
        let roster = self.roster.borrow();
        roster
            .current()
            .map(|(generation, _)| (generation, self.names.version(), self.limit.get()))
    }

    fn recount(&self) {
        let started = Instant::now();
        let key = self.key();
        if key.is_some() && key == self.counted.get() && !self.ticking() {
            return;
        }
        self.counted.set(key);
        if let Some(why) = self.names.take_failure() {
            self.ctx
                .handle
                .log(Level::Warning, &format!("{NAME} collector: {why}"));
        }
        let roster = self.roster.borrow();
        let Some((by_uid, by_project)) = roster.usage() else {
            drop(roster);
            return self
                .ctx
                .failed_in_publish(NAME, roster::NOT_CURRENT, |state| state.clear(SECTION));
        };
        let names = |uid: u32| self.names.label(uid);
        let mut folded = self.folded.borrow_mut();
        let mut found = count(by_uid, by_project, &names, self.limit.get(), &mut folded);
        if let Some(accrued) = roster.accrued() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            accrue(
                &mut found,
                accrued,
                &names,
                self.limit.get(),
                &mut folded,
                now,
            );
        }
        drop(folded);
        drop(roster);
        self.ctx
            .succeeded_in_publish(NAME, started, |state| state.set(SECTION, found));
    }
}

impl Collector for Inner {
    fn reconfigure(&self, settings: &Settings) {
        self.limit.set(settings.label_limit());
        self.ctx.update(|_| {});
    }
}

fn render(state: &State, out: &mut Rendered) {
    let Some(found) = state.get(SECTION) else {
        return;
    };
    type Pick = fn(&Usage) -> u64;
    let picks: [Pick; 3] = [|u| u.nodes, |u| u.cores, |u| u.gpus];
    let by = [
        ("user", &found.users, &USER_JOBS, USER_ALLOCATED),
        ("project", &found.projects, &PROJECT_JOBS, PROJECT_ALLOCATED),
    ];
    for (label, rows, jobs, allocated) in by {
        let mut f = Family::of(out, jobs);
        for (value, usage) in rows {
            f.sample(
                &[(label, value), ("state", "pending")],
                usage.pending as f64,
            );
            f.sample(
                &[(label, value), ("state", "running")],
                usage.running as f64,
            );
        }
        for (doc, pick) in allocated.iter().zip(picks) {
            let mut f = Family::of(out, doc);
            for (value, usage) in rows {
                f.sample(&[(label, value)], pick(usage) as f64);
            }
        }
    }
    let mut f = Family::of(out, &USAGE_FOLDED_TOTAL);
    f.sample(&[("label", "user")], found.folded_users as f64);
    f.sample(&[("label", "project")], found.folded_projects as f64);
    type Of = fn(&Size) -> f64;
    let of: [Of; 3] = [|s| s.cores, |s| s.gpus, |s| s.nodes];
    for (label, rows, docs) in [
        ("user", &found.accrued_users, USER_SECONDS),
        ("project", &found.accrued_projects, PROJECT_SECONDS),
    ] {
        for (doc, of) in docs.iter().zip(of) {
            let mut f = Family::of(out, doc);
            for (value, size) in rows {
                f.sample(&[(label, value)], of(size));
            }
        }
    }
    for (doc, of) in QUEUE_SECONDS.iter().zip(of) {
        let mut f = Family::of(out, doc);
        for (queue, size) in &found.accrued_queues {
            match queue {
                Some(q) => f.sample(&[("queue", q)], of(size)),
                None => f.sample(&[], of(size)),
            };
        }
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    USER_JOBS,
    USER_ALLOCATED[0],
    USER_ALLOCATED[1],
    USER_ALLOCATED[2],
    PROJECT_JOBS,
    PROJECT_ALLOCATED[0],
    PROJECT_ALLOCATED[1],
    PROJECT_ALLOCATED[2],
    USAGE_FOLDED_TOTAL,
    USER_SECONDS[0],
    USER_SECONDS[1],
    USER_SECONDS[2],
    PROJECT_SECONDS[0],
    PROJECT_SECONDS[1],
    PROJECT_SECONDS[2],
    QUEUE_SECONDS[0],
    QUEUE_SECONDS[1],
    QUEUE_SECONDS[2],
];

const USER_SECONDS: [Doc; 3] = [
    Doc::counter(
        "flux_user_allocated_core_seconds_total",
        "Core-seconds allocated to the jobs of a user: the sum over flux jobs -a of ncores times runtime (alloc to finish), growing while jobs run, and read again from the jobs the job manager keeps after a module reload or an instance restart, with what purged jobs had ended with kept in the KVS. Beyond label-limit users with their own counter, the rest are summed as user=\"other\".",
        &["user"],
    )
.folded(Fold::Drop),
    Doc::counter(
        "flux_user_allocated_gpu_seconds_total",
        "GPU-seconds allocated to the jobs of a user, as flux_user_allocated_core_seconds_total counts core-seconds.",
        &["user"],
    )
.folded(Fold::Drop),
    Doc::counter(
        "flux_user_allocated_node_seconds_total",
        "Node-seconds allocated to the jobs of a user, as flux_user_allocated_core_seconds_total counts core-seconds.",
        &["user"],
    )
.folded(Fold::Drop),
];

const PROJECT_SECONDS: [Doc; 3] = [
    Doc::counter(
        "flux_project_allocated_core_seconds_total",
        "Core-seconds allocated to the jobs of a project (jobspec system.project, else system.bank). Beyond label-limit projects with their own counter, the rest are summed as project=\"other\".",
        &["project"],
    )
.folded(Fold::Drop),
    Doc::counter(
        "flux_project_allocated_gpu_seconds_total",
        "GPU-seconds allocated to the jobs of a project, as flux_project_allocated_core_seconds_total counts core-seconds.",
        &["project"],
    )
.folded(Fold::Drop),
    Doc::counter(
        "flux_project_allocated_node_seconds_total",
        "Node-seconds allocated to the jobs of a project, as flux_project_allocated_core_seconds_total counts core-seconds.",
        &["project"],
    )
.folded(Fold::Drop),
];

const QUEUE_SECONDS: [Doc; 3] = [
    Doc::counter(
        "flux_queue_allocated_core_seconds_total",
        "Core-seconds allocated to the jobs of a queue (no queue label for the anonymous queue): the sum over flux jobs -a of ncores times runtime.",
        &["queue"],
    ),
    Doc::counter(
        "flux_queue_allocated_gpu_seconds_total",
        "GPU-seconds allocated to the jobs of a queue: the sum over flux jobs -a of ngpus times runtime.",
        &["queue"],
    ),
    Doc::counter(
        "flux_queue_allocated_node_seconds_total",
        "Node-seconds allocated to the jobs of a queue: the sum over flux jobs -a of nnodes times runtime.",
        &["queue"],
    ),
];

const USER_JOBS: Doc = Doc::gauge(
    "flux_user_jobs",
    "Active jobs of a user by state, as flux jobs -A counts them (running includes jobs in CLEANUP). Beyond label-limit users, the least busy are summed as user=\"other\".",
    &["user", "state"],
);

/// Nodes, cores and GPUs.
const USER_ALLOCATED: [Doc; 3] = [
    Doc::gauge(
        "flux_user_allocated_nodes",
        "Nodes allocated to the running jobs of a user, each node counted once.",
        &["user"],
    ),
    Doc::gauge(
        "flux_user_allocated_cores",
        "Cores allocated to the running jobs of a user.",
        &["user"],
    ),
    Doc::gauge(
        "flux_user_allocated_gpus",
        "GPUs allocated to the running jobs of a user.",
        &["user"],
    ),
];

const PROJECT_JOBS: Doc = Doc::gauge(
    "flux_project_jobs",
    "Active jobs of a project by state, as flux jobs -A counts them (running includes jobs in CLEANUP). Beyond label-limit projects, the least busy are summed as project=\"other\".",
    &["project", "state"],
);

/// Nodes, cores and GPUs.
const PROJECT_ALLOCATED: [Doc; 3] = [
    Doc::gauge(
        "flux_project_allocated_nodes",
        "Nodes allocated to the running jobs of a project, each node counted once.",
        &["project"],
    ),
    Doc::gauge(
        "flux_project_allocated_cores",
        "Cores allocated to the running jobs of a project.",
        &["project"],
    ),
    Doc::gauge(
        "flux_project_allocated_gpus",
        "GPUs allocated to the running jobs of a project.",
        &["project"],
    ),
];

const USAGE_FOLDED_TOTAL: Doc = Doc::counter(
    "flux_usage_folded_total",
    "Distinct users or projects counted as \"other\" since the module loaded, because label-limit others were busier.",
    &["label"],
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::roster::{test_job as job, RosterJob};
    use crate::model::usage::Tallies;

    /// Counts `jobs` as the roster tallies them.
    fn count_jobs(jobs: &[RosterJob], limit: usize, folded: &mut Folded) -> UsersState {
        let mut by_uid = Tallies::default();
        let mut by_project = Tallies::default();
        for job in jobs {
            by_uid.add(job.uid, job);
            by_project.add(job.project.clone(), job);
        }
        count(&by_uid, &by_project, &name, limit, folded)
    }

    fn name(uid: u32) -> String {
        match uid {
            1001 => "alice".into(),
            1002 => "bob".into(),
            other => other.to_string(),
        }
    }

    #[test]
    fn each_user_and_project_has_its_jobs_and_its_nodes_counted_once() {
        let jobs = [
            job(1001, Some("chem"), &[0, 1], 4, "0-1"),
            job(1001, Some("chem"), &[1], 2, ""),
            job(1001, None, &[], 0, ""),
            job(1002, Some("chem"), &[5], 1, "3"),
            job(4242, Some("bio"), &[], 0, ""),
        ];
        let found = count_jobs(&jobs, 100, &mut Folded::default());
        let alice = found.users["alice"];
        assert_eq!((alice.pending, alice.running), (1, 2));
        assert_eq!((alice.nodes, alice.cores, alice.gpus), (2, 10, 4));
        assert_eq!(found.users["bob"].gpus, 1);
        // A uid without a name is the number.
        assert_eq!(found.users["4242"].pending, 1);
        let chem = found.projects["chem"];
        assert_eq!((chem.running, chem.nodes, chem.cores), (3, 3, 11));
        assert_eq!(found.projects["none"].pending, 1);
        assert_eq!(found.folded_users, 0);
    }

    #[test]
    fn beyond_the_limit_the_least_busy_are_other_and_each_is_counted_once() {
        let jobs: Vec<RosterJob> = (0..5)
            .map(|i| job(2000 + i, None, &[i], 1 + i, ""))
            .collect();
        let mut folded = Folded::default();
        let found = count_jobs(&jobs, 2, &mut folded);
        let labels: Vec<&str> = found.users.keys().map(String::as_str).collect();
        assert_eq!(labels, ["2003", "2004", "other"]);
        let other = found.users["other"];
        assert_eq!((other.running, other.cores, other.nodes), (3, 6, 3));
        assert_eq!(found.folded_users, 3);
        // The same users folded again are not new.
        let again = count_jobs(&jobs, 2, &mut folded);
        assert_eq!(again.folded_users, 3);
        let mut rendered = Rendered::default();
        let mut state = State::with_collectors(&[NAME]);
        state.set(SECTION, again);
        render(&state, &mut rendered);
        let out = rendered.text();
        assert!(
            out.contains("flux_user_jobs{user=\"other\",state=\"running\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("flux_usage_folded_total{label=\"user\"} 3\n"),
            "{out}"
        );
    }
}
