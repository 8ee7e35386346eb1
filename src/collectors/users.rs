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

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use super::{About, Collector, Context, Render, Settings, Spec};
use crate::model::jobflow::DEFAULT_LABEL_LIMIT;
pub use crate::model::usage::Usage;
use crate::model::usage::{ByProject, ByUid};
use crate::names::Names;
use crate::reactor::roster::{self, Follower, RosterReader};
use crate::render::{Doc, Family, Rendered};
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
    }
}

/// Who was ever folded into "other".
#[derive(Debug, Default)]
pub struct Folded {
    users: HashSet<String>,
    projects: HashSet<String>,
    user_count: u64,
    project_count: u64,
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

fn limit(settings: &Settings) -> usize {
    settings
        .option("label-limit")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_LABEL_LIMIT)
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let inner = Rc::new(Inner {
        roster: ctx.roster_reader(),
        names: ctx.names().clone(),
        ctx,
        limit: Cell::new(limit(settings)),
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

    fn stale(&self) -> bool {
        let key = self.key();
        key.is_none() || key != self.counted.get()
    }

    /// Counts again where the roster, the names or the limit changed.
    fn refresh(&self) {
        self.recount();
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
        if key.is_some() && key == self.counted.get() {
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
        let found = count(
            by_uid,
            by_project,
            &names,
            self.limit.get(),
            &mut self.folded.borrow_mut(),
        );
        drop(roster);
        self.ctx
            .succeeded_in_publish(NAME, started, |state| state.set(SECTION, found));
    }
}

impl Collector for Inner {
    fn reconfigure(&self, settings: &Settings) {
        self.limit.set(limit(settings));
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
