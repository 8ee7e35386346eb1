//! Fair share and limits from flux-accounting: asks its priority plugin
//! (`job-manager.jobtap-query`, `{"name": "mf_priority.so"}`) what it
//! holds, and exports each association's (user and bank's) fair share, its
//! limits, what it uses of each and the jobs held back over them, and each
//! queue's per-association limits. These are the numbers the plugin acts
//! on: `flux account list-users` and `flux account list-queues` show the
//! same limits, and `flux jobs` the same held and running jobs.
//!
//! Without the plugin (no flux-accounting, or not loaded) every family is
//! absent and the collector is up: it asks again every 12 polls (a minute
//! at the default interval), so a plugin loaded later is found. The plugin
//! lists every association and every held job in the job manager's thread,
//! so on a large site its answer is dear (108 ms with 10,000 associations,
//! `scripts/bench-accounting`): it is asked as the time of its answer and
//! of reading it allow ([`Cadence`]).
//!
//! At most `label-limit` associations (the jobflow collector's option)
//! keep their own series: those with the most held jobs, then the nearest
//! to a limit, then the most active jobs. The rest are summed as
//! `user="other", bank="other"` in the families that add up.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::{About, Collector, Context, Settings, Spec};
use crate::model::accounting::{self, Accounting, Use, ASSOCIATION_LIMITS, QUEUE_LIMITS};
use crate::names::Names;
use crate::reactor::cadence::Cadence;
use crate::reactor::poll::{Opened, PollLoop, ROUND_TIMEOUT};
use crate::render::{Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::{Error, Level};

pub const NAME: &str = "accounting";
pub const SECTION: Section<AccountingState> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "flux-accounting's fair share, limits and held jobs per association (user and bank), and its queue limits, as its priority plugin enforces them; absent without it.",
    about: About {
        name: NAME,
        on_by_default: true,
        // label-limit is the jobflow collector's, and bounds these labels too.
        options: &[],
        needs: &[],
    },
    start,
    restart_needed: super::restart_on_new_interval,
    render: super::Render::Now(render),
    reads: &[],
    families: FAMILIES,
};

/// At most this many distinct unread parts are logged, each once.
const MAX_LOGGED: usize = 16;

/// The plugin's answer walks every association and held job in the job
/// manager's thread: asked as its answer time allows at 1 ms of broker
/// time per poll (every poll up to about a hundred associations), and at
/// least once every 120 polls (10 minutes at the default interval).
fn cadence() -> Cadence {
    Cadence::new(Duration::from_millis(1), 1, 120)
}

/// Without the plugin, asked once in this many polls: the "not found"
/// answer is cheap, and a plugin loaded later is found within them.
const ABSENT_EVERY: u32 = 12;

/// What the collector keeps in the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountingState {
    /// Associations the plugin holds, before folding.
    pub associations: usize,
    /// Those with their own series, by user then bank.
    pub kept: Vec<AssociationRow>,
    /// The sum of the rest, where there are more than `label-limit`.
    pub other: Option<Folded>,
    pub queues: Vec<QueueRow>,
    /// Parts of the plugin's answers not read since the collector started.
    pub unread_total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssociationRow {
    pub user: String,
    pub bank: String,
    pub fairshare: f64,
    pub active: bool,
    pub held_jobs: u64,
    pub limits: [Use; 5],
}

/// Associations summed as "other".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    pub held_jobs: u64,
    pub used: [i64; 5],
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub name: String,
    pub priority: i64,
    /// Per association, by [`QUEUE_LIMITS`].
    pub limits: [Option<i64>; 5],
    /// Summed over associations.
    pub used: [i64; 5],
    /// The largest fraction of each limit one association uses.
    pub max_ratio: [Option<f64>; 5],
}

/// The state to export from what the plugin holds: users named by
/// `names`, at most `limit` associations apart.
pub fn count(
    found: &Accounting,
    names: &dyn Fn(u32) -> String,
    limit: usize,
    unread_total: u64,
) -> AccountingState {
    let mut rows: Vec<(f64, AssociationRow)> = found
        .associations
        .iter()
        .map(|a| {
            let nearest = a.limits.iter().filter_map(Use::ratio).fold(0.0, f64::max);
            let row = AssociationRow {
                user: names(a.userid),
                bank: a.bank.clone(),
                fairshare: a.fairshare,
                active: a.active,
                held_jobs: a.held_jobs,
                limits: a.limits,
            };
            (nearest, row)
        })
        .collect();
    // Most held jobs, then nearest a limit, then most active jobs; the
    // names break ties, so the cut is the same each time.
    rows.sort_by(|(an, a), (bn, b)| {
        b.held_jobs
            .cmp(&a.held_jobs)
            .then(bn.total_cmp(an))
            .then(b.limits[1].used.cmp(&a.limits[1].used))
            .then((&a.user, &a.bank).cmp(&(&b.user, &b.bank)))
    });
    let mut kept = Vec::with_capacity(rows.len().min(limit));
    let mut other: Option<Folded> = None;
    for (i, (_, row)) in rows.into_iter().enumerate() {
        if i < limit {
            kept.push(row);
        } else {
            let folded = other.get_or_insert_with(Folded::default);
            folded.held_jobs += row.held_jobs;
            for (sum, u) in folded.used.iter_mut().zip(row.limits) {
                *sum += u.used;
            }
        }
    }
    kept.sort_by(|a, b| (&a.user, &a.bank).cmp(&(&b.user, &b.bank)));
    let queues = found
        .queues
        .iter()
        .map(|q| {
            let mut used = [0i64; 5];
            let mut max_ratio: [Option<f64>; 5] = q.limits.map(|l| l.map(|_| 0.0));
            for (_, usage) in found
                .associations
                .iter()
                .flat_map(|a| a.queues.iter())
                .filter(|(name, _)| *name == q.name)
            {
                for k in 0..5 {
                    used[k] += usage.used[k];
                    let ratio = Use {
                        used: usage.used[k],
                        limit: q.limits[k],
                    }
                    .ratio();
                    if let (Some(max), Some(r)) = (max_ratio[k].as_mut(), ratio) {
                        *max = max.max(r);
                    }
                }
            }
            QueueRow {
                name: q.name.clone(),
                priority: q.priority,
                limits: q.limits,
                used,
                max_ratio,
            }
        })
        .collect();
    AccountingState {
        associations: found.associations.len(),
        kept,
        other,
        queues,
        unread_total,
    }
}

struct Inner {
    ctx: Rc<Context>,
    poll: PollLoop<()>,
    cadence: Cadence,
    names: Names,
    limit: Cell<usize>,
    unread_total: Cell<u64>,
    logged: RefCell<BTreeSet<String>>,
    /// Whether the last answer found the plugin, to log its coming and
    /// going once each.
    loaded: Cell<Option<bool>>,
    /// Polls since the plugin was last asked for, while it is not loaded.
    absent_polls: Cell<u32>,
}

impl Collector for Inner {
    fn reconfigure(&self, settings: &Settings) {
        self.limit.set(settings.label_limit());
        self.cadence.ask_next();
    }
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let handle = ctx.handle;
    let inner = Rc::new(Inner {
        names: ctx.names().clone(),
        ctx,
        poll: PollLoop::new(),
        cadence: cadence(),
        limit: Cell::new(settings.label_limit()),
        unread_total: Cell::new(0),
        logged: RefCell::new(BTreeSet::new()),
        loaded: Cell::new(None),
        absent_polls: Cell::new(0),
    });
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    inner.poll.start(handle, settings.poll_interval, move || {
        if let Some(inner) = weak.upgrade() {
            start_round(&inner);
        }
    })?;
    Ok(Box::new(inner))
}

fn start_round(inner: &Rc<Inner>) {
    if inner.poll.is_open() && inner.poll.overdue(|_| ()).is_none() {
        return;
    }
    let due = if inner.loaded.get() == Some(false) {
        let polls = inner.absent_polls.get() + 1;
        inner.absent_polls.set(polls % ABSENT_EVERY);
        polls >= ABSENT_EVERY
    } else {
        inner.cadence.due()
    };
    if !due {
        return;
    }
    match inner.poll.open(()) {
        Opened::Busy => return,
        Opened::AfterTimeout => {
            let message = format!(
                "no answer from job-manager within {}s",
                ROUND_TIMEOUT.as_secs()
            );
            inner
                .ctx
                .failed(NAME, &message, |state| state.clear(SECTION));
        }
        Opened::Fresh => {}
    }
    let weak = Rc::downgrade(inner);
    let sent = inner
        .poll
        .send(accounting::TOPIC, accounting::QUERY, move |answer| {
            if let Some(inner) = weak.upgrade() {
                on_answer(&inner, answer);
            }
        });
    if let Err(err) = sent {
        let _round = inner.poll.close();
        inner
            .ctx
            .failed(NAME, &err.message, |state| state.clear(SECTION));
    }
}

fn on_answer(inner: &Rc<Inner>, answer: Result<String, Error>) {
    let Some(round) = inner.poll.close() else {
        return;
    };
    let started = round.started;
    let answered = started.elapsed();
    let payload = match answer {
        Ok(payload) => payload,
        Err(err) if accounting::not_loaded(&err.message) => {
            inner.cadence.failed();
            inner.absent_polls.set(0);
            if inner.loaded.replace(Some(false)) == Some(true) {
                inner.ctx.handle.log(
                    Level::Info,
                    &format!(
                        "{NAME} collector: {} is no longer loaded",
                        accounting::PLUGIN
                    ),
                );
            }
            return inner
                .ctx
                .succeeded(NAME, started, |state| state.clear(SECTION));
        }
        Err(err) => {
            inner.cadence.failed();
            let message = format!("{}: {}", accounting::TOPIC, err.message);
            return inner
                .ctx
                .failed(NAME, &message, |state| state.clear(SECTION));
        }
    };
    if inner.loaded.replace(Some(true)) != Some(true) {
        inner.ctx.handle.log(
            Level::Info,
            &format!("{NAME} collector: found {}", accounting::PLUGIN),
        );
    }
    let reader_started = Instant::now();
    let found = match accounting::parse(&payload) {
        Ok(found) => found,
        Err(err) => Accounting {
            unread: vec![err.to_string()],
            ..Accounting::default()
        },
    };
    for why in &found.unread {
        inner.note_unread(why);
    }
    let names = |uid: u32| inner.names.label(uid);
    let counted = count(&found, &names, inner.limit.get(), inner.unread_total.get());
    // The cost is the job manager's answer and the module's reading of it.
    let read = reader_started.elapsed();
    inner.cadence.answered(answered + read);
    inner.ctx.succeeded(NAME, started, |state| {
        if state.get(SECTION) != Some(&counted) {
            state.set(SECTION, counted);
        }
    });
}

impl Inner {
    /// Counts a part not read, and logs it the first time, up to
    /// [`MAX_LOGGED`] distinct ones.
    fn note_unread(&self, why: &str) {
        self.unread_total.set(self.unread_total.get() + 1);
        let mut logged = self.logged.borrow_mut();
        if logged.len() < MAX_LOGGED && logged.insert(why.to_string()) {
            self.ctx.handle.log(
                Level::Warning,
                &format!(
                    "{NAME} collector: left out (counted in flux_accounting_unread_total): {why}"
                ),
            );
        }
    }
}

fn render(state: &State, out: &mut Rendered) {
    let Some(s) = state.get(SECTION) else {
        return;
    };
    Family::of(out, &ASSOCIATIONS).sample(&[], s.associations as f64);
    let mut f = Family::of(out, &FAIRSHARE);
    for r in &s.kept {
        f.sample(&who(r), r.fairshare);
    }
    let mut f = Family::of(out, &ACTIVE);
    for r in &s.kept {
        f.sample(&who(r), f64::from(u8::from(r.active)));
    }
    let mut f = Family::of(out, &HELD_JOBS);
    for r in &s.kept {
        f.sample(&who(r), r.held_jobs as f64);
    }
    if let Some(o) = &s.other {
        f.sample(&OTHER, o.held_jobs as f64);
    }
    let mut f = Family::of(out, &USAGE);
    for r in &s.kept {
        for (name, u) in ASSOCIATION_LIMITS.iter().zip(&r.limits) {
            let [user, bank] = who(r);
            f.sample(&[user, bank, ("limit", name)], u.used as f64);
        }
    }
    if let Some(o) = &s.other {
        for (name, used) in ASSOCIATION_LIMITS.iter().zip(o.used) {
            f.sample(&[OTHER[0], OTHER[1], ("limit", name)], used as f64);
        }
    }
    let mut f = Family::of(out, &LIMIT);
    for r in &s.kept {
        for (name, u) in ASSOCIATION_LIMITS.iter().zip(&r.limits) {
            if let Some(limit) = u.limit {
                let [user, bank] = who(r);
                f.sample(&[user, bank, ("limit", name)], limit as f64);
            }
        }
    }
    let mut f = Family::of(out, &RATIO);
    for r in &s.kept {
        for (name, u) in ASSOCIATION_LIMITS.iter().zip(&r.limits) {
            if let Some(ratio) = u.ratio() {
                let [user, bank] = who(r);
                f.sample(&[user, bank, ("limit", name)], ratio);
            }
        }
    }
    let mut f = Family::of(out, &QUEUE_PRIORITY);
    for q in &s.queues {
        f.sample(&[("queue", &q.name)], q.priority as f64);
    }
    let mut f = Family::of(out, &QUEUE_LIMIT);
    for q in &s.queues {
        for (name, limit) in QUEUE_LIMITS.iter().zip(q.limits) {
            if let Some(limit) = limit {
                f.sample(&[("queue", &q.name), ("limit", name)], limit as f64);
            }
        }
    }
    let mut f = Family::of(out, &QUEUE_USAGE);
    for q in &s.queues {
        for (name, used) in QUEUE_LIMITS.iter().zip(q.used) {
            f.sample(&[("queue", &q.name), ("limit", name)], used as f64);
        }
    }
    let mut f = Family::of(out, &QUEUE_RATIO);
    for q in &s.queues {
        for (name, ratio) in QUEUE_LIMITS.iter().zip(q.max_ratio) {
            if let Some(ratio) = ratio {
                f.sample(&[("queue", &q.name), ("limit", name)], ratio);
            }
        }
    }
    Family::of(out, &UNREAD_TOTAL).sample(&[], s.unread_total as f64);
}

const OTHER: [(&str, &str); 2] = [("user", "other"), ("bank", "other")];

fn who(r: &AssociationRow) -> [(&'static str, &str); 2] {
    [("user", r.user.as_str()), ("bank", r.bank.as_str())]
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    ASSOCIATIONS,
    FAIRSHARE,
    ACTIVE,
    HELD_JOBS,
    USAGE,
    LIMIT,
    RATIO,
    QUEUE_PRIORITY,
    QUEUE_LIMIT,
    QUEUE_USAGE,
    QUEUE_RATIO,
    UNREAD_TOTAL,
];

const ASSOCIATIONS: Doc = Doc::gauge(
    "flux_accounting_associations",
    "Associations (a user in a bank) that flux-accounting's priority plugin holds, before label-limit folds any.",
    &[],
);

const FAIRSHARE: Doc = Doc::gauge(
    "flux_accounting_association_fairshare",
    "The association's fair share, 0 to 1, as flux account view-user shows it.",
    &["user", "bank"],
);

const ACTIVE: Doc = Doc::gauge(
    "flux_accounting_association_active",
    "Whether the association may submit jobs (1) or was deleted (0).",
    &["user", "bank"],
);

const HELD_JOBS: Doc = Doc::gauge(
    "flux_accounting_association_held_jobs",
    "Jobs of the association that flux-accounting holds back over one of its limits (a dependency such as max-running-jobs-user-limit). Beyond label-limit associations, the rest are summed as user=\"other\", bank=\"other\".",
    &["user", "bank"],
);

const USAGE: Doc = Doc::gauge(
    "flux_accounting_association_usage",
    "What the association uses of each of its limits, named by the flux account add-user option that sets it: running, active and scheduled (SCHED) jobs, and nodes and cores of its running jobs. Beyond label-limit associations, the rest are summed as user=\"other\", bank=\"other\".",
    &["user", "bank", "limit"],
);

const LIMIT: Doc = Doc::gauge(
    "flux_accounting_association_limit",
    "The association's limit, named by the flux account add-user option that sets it; absent where flux account says unlimited.",
    &["user", "bank", "limit"],
);

const RATIO: Doc = Doc::gauge(
    "flux_accounting_association_limit_usage_ratio",
    "The fraction of the association's limit in use (1 is full: flux-accounting holds its next job); absent where flux account says unlimited.",
    &["user", "bank", "limit"],
);

const QUEUE_PRIORITY: Doc = Doc::gauge(
    "flux_accounting_queue_priority",
    "The queue's priority factor in flux-accounting.",
    &["queue"],
);

const QUEUE_LIMIT: Doc = Doc::gauge(
    "flux_accounting_queue_limit",
    "A limit each association has in the queue, named by the flux account add-queue option that sets it; absent where flux account says unlimited.",
    &["queue", "limit"],
);

const QUEUE_USAGE: Doc = Doc::gauge(
    "flux_accounting_queue_usage",
    "What all associations together use in the queue of what each of its limits counts: running jobs, nodes of running jobs, and scheduled (SCHED) jobs, nodes and cores, as flux-accounting counts them (a job that asks only for cores is one node).",
    &["queue", "limit"],
);

const QUEUE_RATIO: Doc = Doc::gauge(
    "flux_accounting_queue_limit_usage_ratio_max",
    "The largest fraction of the queue's per-association limit that one association uses (1 is full: flux-accounting holds that association's next job in the queue); absent where flux account says unlimited.",
    &["queue", "limit"],
);

const UNREAD_TOTAL: Doc = Doc::counter(
    "flux_accounting_unread_total",
    "Parts of the priority plugin's answers (an association, a queue, or the whole answer) left out since the collector started because they were not of the shape read; each distinct one is logged once.",
    &[],
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::accounting::{Association, QueueLimits, QueueUsage};

    fn assoc(uid: u32, bank: &str, held: u64, running: (i64, i64)) -> Association {
        let none = Use {
            used: 0,
            limit: None,
        };
        Association {
            userid: uid,
            bank: bank.into(),
            fairshare: 0.5,
            active: true,
            held_jobs: held,
            limits: [
                Use {
                    used: running.0,
                    limit: Some(running.1),
                },
                Use {
                    used: running.0 + held as i64,
                    limit: None,
                },
                none,
                none,
                none,
            ],
            queues: vec![(
                "batch".into(),
                QueueUsage {
                    used: [running.0, 0, 0, 0, 0],
                },
            )],
        }
    }

    #[test]
    fn the_held_and_the_full_keep_their_series_and_the_rest_add_up_as_other() {
        let found = Accounting {
            associations: vec![
                assoc(1, "a", 0, (1, 10)),
                assoc(2, "a", 3, (2, 2)),
                assoc(3, "b", 0, (4, 4)),
                assoc(4, "b", 0, (0, 10)),
            ],
            queues: vec![QueueLimits {
                name: "batch".into(),
                priority: 0,
                limits: [Some(4), None, None, None, None],
            }],
            unread: vec![],
        };
        let names = |uid: u32| format!("u{uid}");
        let s = count(&found, &names, 2, 0);
        assert_eq!(s.associations, 4);
        let kept: Vec<(&str, &str)> = s
            .kept
            .iter()
            .map(|r| (r.user.as_str(), r.bank.as_str()))
            .collect();
        assert_eq!(kept, vec![("u2", "a"), ("u3", "b")]);
        let other = s.other.as_ref().expect("two folded");
        assert_eq!((other.held_jobs, other.used[0], other.used[1]), (0, 1, 1));
        let q = &s.queues[0];
        assert_eq!(q.used[0], 7);
        assert_eq!(q.max_ratio[0], Some(1.0));
        assert_eq!(q.max_ratio[1], None);
    }
}
