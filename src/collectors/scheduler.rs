//! The scheduler, whichever is loaded, as `flux module stats` shows it:
//! Flux's sdiag.
//!
//! Each poll asks `module.list` which module provides the `sched` service,
//! then asks that module's `stats-get`:
//! - Fluxion (`sched-fluxion-qmanager`): per-queue depth, job counts and
//!   action counters, and the policy; plus `sched-fluxion-resource`'s
//!   match statistics and resource graph.
//! - flux-core's schedulers (sched-simple, sched-fifo, sched-backfill):
//!   scheduling passes, yields, the pass duration and the delay.
//! - Any other: only `flux_scheduler_info`.
//!
//! Counters are exported as running from this collector's start: Fluxion
//! starts its own again on `stats-clear` or a reload, and a decrease is
//! taken as such a reset, never as a negative rate. This module never
//! calls `stats-clear` itself: that would reset the counters for everyone.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::{About, Collector, Context, Settings, Spec};
use crate::model::error::ParseError;
use crate::reactor::cadence::Cadence;
use crate::reactor::poll::{Opened, PollLoop, ROUND_TIMEOUT};
use crate::render::{Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::Error;

pub const NAME: &str = "scheduler";
pub const SECTION: Section<Scheduler> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "The loaded scheduler as flux module stats shows it: Fluxion's queues, matches and resource graph, or the passes of sched-simple, sched-fifo and sched-backfill.",
    about: About {
        name: NAME,
        on_by_default: true,
        options: &[],
        needs: &[],
    },
    start,
    restart_needed: super::restart_on_new_interval,
    render: super::Render::Now(render),
    reads: &[],
    families: FAMILIES,
};

/// Fluxion's queue manager and resource modules.
const QMANAGER: &str = "sched-fluxion-qmanager";
const FLUXION_RESOURCE: &str = "sched-fluxion-resource";

/// How often the scheduler's own stats-get is asked ([`Cadence`]): as
/// its answer time allows at 250 µs of broker time per poll, at most a
/// 5 minutes apart at the default interval. flux-core's schedulers answer
/// in about 0.1 ms and are asked every poll; Fluxion's queue manager lists
/// every job it holds (2-6 ms with 5,000 running jobs,
/// `scripts/bench-collectors`), and is then asked every 10 to 25 polls.
fn stats_cadence() -> Cadence {
    Cadence::new(Duration::from_micros(250), 1, 60)
}

/// `sched-fluxion-resource.stats-get` walks the resource graph to count
/// vertices by rank (`by_rank`), which grows with the instance (2.5-2.8 ms
/// on 4096 nodes): 100 µs per poll, every 25 to 30 polls there, at most 60
/// polls apart (5 minutes at the default interval). What it reports (match
/// counts and times, the graph) changes slowly.
fn resource_cadence() -> Cadence {
    Cadence::new(Duration::from_micros(100), 1, 60)
}

/// The errno that marks an answer slot not asked this round: what the last
/// round found is kept for it.
const NOT_ASKED: i32 = libc::EALREADY;

/// `module.list` is asked once in this many polls to learn which module
/// schedules; in between, the one found is asked directly, and asked
/// about again at once when it is gone (its stats-get says ENOSYS), so a
/// swapped scheduler is followed within a poll. Each request costs the
/// broker about 0.15 ms (`scripts/bench-collectors`).
const MODULE_LIST_EVERY: u32 = 6;

/// What the scheduler collector keeps in the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scheduler {
    /// The module that provides the `sched` service; None when none does.
    pub module: Option<String>,
    pub queues: Vec<FluxionQueue>,
    pub resource: Option<FluxionResource>,
    pub passes: Option<Passes>,
}

/// One Fluxion queue (`sched-fluxion-qmanager.stats-get`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FluxionQueue {
    pub name: String,
    pub depth: f64,
    pub max_depth: f64,
    /// Jobs by list: pending, pending_provisional, blocked, running.
    pub jobs: Vec<(&'static str, u64)>,
    /// Action counters (reset-corrected).
    pub actions: Vec<(String, f64)>,
    pub policy: String,
    pub policy_parameters: String,
    pub queue_parameters: String,
}

/// One kind of match (`sched-fluxion-resource.stats-get`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matches {
    /// Reset-corrected count since this collector started.
    pub total: f64,
    /// Since Fluxion's last stats reset; None with no match since.
    pub max_seconds: Option<f64>,
    pub mean_seconds: Option<f64>,
    pub max_iterations: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FluxionResource {
    pub vertices: f64,
    pub edges: f64,
    pub load_seconds: f64,
    pub succeeded: Matches,
    pub failed: Matches,
}

/// flux-core's schedulers (`sched-simple`, `sched-fifo`, `sched-backfill`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Passes {
    /// Reset-corrected counters: scheduling and forecast passes and yields.
    pub passes: Vec<(&'static str, f64)>,
    pub yields: Vec<(&'static str, f64)>,
    pub pending_jobs: Option<f64>,
    pub delay_seconds: Option<f64>,
    pub duration_seconds: Option<f64>,
    pub interval_seconds: Option<f64>,
}

/// Counters that run from this collector's start: a value lower than the
/// last one means the source started again, and what it had counted is
/// kept as an offset.
#[derive(Debug, Default)]
pub struct Monotonic {
    seen: BTreeMap<String, (f64, f64)>,
}

impl Monotonic {
    /// The exported value of counter `key` whose source now says `raw`.
    pub fn adjust(&mut self, key: &str, raw: f64) -> f64 {
        let (last, offset) = self.seen.entry(key.to_string()).or_insert((raw, 0.0));
        if raw < *last {
            *offset += *last;
        }
        *last = raw;
        *offset + raw
    }
}

#[derive(Default)]
struct Round {
    module: Option<String>,
    /// The module was taken from an earlier module.list, not this round's.
    remembered: bool,
    /// The scheduler's stats-get, then Fluxion resource's when asked.
    answers: Vec<Option<Result<String, Error>>>,
    /// When the stats requests went out, to time their answers.
    sent: Option<Instant>,
}

struct Inner {
    ctx: Rc<Context>,
    poll: PollLoop<Round>,
    counters: RefCell<Monotonic>,
    polls: Cell<u32>,
    /// The module that provided sched at the last module.list.
    known: RefCell<Option<String>>,
    /// The last resource statistics, kept between the polls that ask.
    resource: RefCell<Option<FluxionResource>>,
    /// The last Fluxion queues, kept between the polls that ask.
    queues: RefCell<Option<Vec<FluxionQueue>>>,
    /// The last passes of flux-core's schedulers, likewise.
    passes: RefCell<Option<Passes>>,
    stats_cadence: Cadence,
    resource_cadence: Cadence,
}

impl Collector for Inner {}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let handle = ctx.handle;
    let inner = Rc::new(Inner {
        ctx,
        poll: PollLoop::new(),
        counters: RefCell::new(Monotonic::default()),
        polls: Cell::new(0),
        known: RefCell::new(None),
        resource: RefCell::new(None),
        queues: RefCell::new(None),
        passes: RefCell::new(None),
        stats_cadence: stats_cadence(),
        resource_cadence: resource_cadence(),
    });
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    inner.poll.start(handle, settings.poll_interval, move || {
        if let Some(inner) = weak.upgrade() {
            start_round(&inner);
        }
    })?;
    Ok(Box::new(inner))
}

fn fail(inner: &Rc<Inner>, message: &str) {
    inner.poll.close();
    inner
        .ctx
        .failed(NAME, message, |state| state.clear(SECTION));
}

fn start_round(inner: &Rc<Inner>) {
    // The module that did not answer, named (or module.list itself).
    let silent = inner.poll.overdue(|round| {
        round
            .module
            .clone()
            .unwrap_or_else(|| "module.list".to_string())
    });
    match inner.poll.open(Round::default()) {
        Opened::Busy => return,
        Opened::AfterTimeout => {
            let message = format!(
                "no answer from {} within {}s",
                silent.unwrap_or_default(),
                ROUND_TIMEOUT.as_secs()
            );
            inner
                .ctx
                .failed(NAME, &message, |state| state.clear(SECTION));
        }
        Opened::Fresh => {}
    }
    let known = inner.known.borrow().clone();
    match known {
        Some(module) if !inner.polls.get().is_multiple_of(MODULE_LIST_EVERY) => {
            ask_stats(inner, module, true)
        }
        _ => ask_module_list(inner),
    }
}

fn ask_module_list(inner: &Rc<Inner>) {
    let weak = Rc::downgrade(inner);
    let sent = inner.poll.send("module.list", "{}", move |answer| {
        if let Some(inner) = weak.upgrade() {
            on_list(&inner, answer);
        }
    });
    if let Err(err) = sent {
        fail(inner, &err.message);
    }
}

fn on_list(inner: &Rc<Inner>, answer: Result<String, Error>) {
    let module = match answer
        .map_err(|e| e.message)
        .and_then(|p| sched_module(&p).map_err(|e| e.to_string()))
    {
        Ok(module) => module,
        Err(msg) => return fail(inner, &msg),
    };
    let previous = inner.known.replace(module.clone());
    if previous != module {
        // Another scheduler: ask it at once, whatever the last one cost.
        inner.stats_cadence.ask_next();
        inner.resource_cadence.ask_next();
    }
    let Some(module) = module else {
        // No scheduler loaded: nothing to report, and nothing wrong with
        // this collector.
        let Some(round) = inner.poll.close() else {
            return;
        };
        inner.resource.borrow_mut().take();
        return inner.ctx.succeeded(NAME, round.started, |state| {
            state.set(SECTION, Scheduler::default())
        });
    };
    ask_stats(inner, module, false);
}

/// Asks `module` (the scheduler) for its statistics, and Fluxion's
/// resource module for its own when due.
fn ask_stats(inner: &Rc<Inner>, module: String, remembered: bool) {
    let polls = inner.polls.get();
    inner.polls.set(polls.wrapping_add(1));
    let fluxion = module == QMANAGER;
    let mut topics = vec![(inner.stats_cadence.due(), format!("{module}.stats-get"))];
    if fluxion {
        topics.push((
            inner.resource_cadence.due(),
            format!("{FLUXION_RESOURCE}.stats-get"),
        ));
        inner.passes.borrow_mut().take();
    } else {
        inner.resource.borrow_mut().take();
        inner.queues.borrow_mut().take();
    }
    inner.poll.with(|round| {
        round.module = Some(module);
        round.remembered = remembered;
        round.sent = Some(Instant::now());
        round.answers = topics
            .iter()
            .map(|(due, _)| (!due).then(|| Err(Error::new(NOT_ASKED, "not asked this round"))))
            .collect();
    });
    if topics.iter().all(|(due, _)| !due) {
        return finish(inner);
    }
    for (slot, (due, topic)) in topics.iter().enumerate() {
        if !due {
            continue;
        }
        let weak = Rc::downgrade(inner);
        let sent = inner.poll.send(topic, "{}", move |answer| {
            if let Some(inner) = weak.upgrade() {
                on_answer(&inner, slot, answer);
            }
        });
        if let Err(err) = sent {
            on_answer(inner, slot, Err(err));
        }
    }
}

fn on_answer(inner: &Rc<Inner>, slot: usize, answer: Result<String, Error>) {
    // The remembered scheduler is gone (unloaded, or swapped for
    // another): learn which module schedules now, in this same round.
    if slot == 0 && matches!(&answer, Err(e) if e.errno == libc::ENOSYS) {
        let remembered = inner.poll.with(|round| round.remembered) == Some(true);
        if remembered {
            inner.known.replace(None);
            inner.stats_cadence.ask_next();
            inner.resource_cadence.ask_next();
            inner.poll.with(|round| {
                round.module = None;
                round.remembered = false;
                // Not complete until module.list has answered.
                round.answers = vec![None];
            });
            return ask_module_list(inner);
        }
    }
    let took = inner
        .poll
        .with(|round| round.sent.map(|sent| sent.elapsed()))
        .flatten()
        .unwrap_or_default();
    let cadence = match slot {
        0 => &inner.stats_cadence,
        _ => &inner.resource_cadence,
    };
    cadence.observe(&answer, took);
    let complete = inner.poll.with(|round| {
        if let Some(entry) = round.answers.get_mut(slot) {
            *entry = Some(answer);
        }
        round.answers.iter().all(Option::is_some)
    });
    if complete == Some(true) {
        finish(inner);
    }
}

/// Every answer of the round is in: export what they say.
fn finish(inner: &Rc<Inner>) {
    let Some(round) = inner.poll.close() else {
        return;
    };
    let started = round.started;
    let Round {
        module, answers, ..
    } = round.into_data();
    let Some(module) = module else { return };
    let mut answers = answers.into_iter().flatten();
    let mut found = Scheduler {
        module: Some(module.clone()),
        ..Default::default()
    };
    let mut errors = Vec::new();
    let mut counters = inner.counters.borrow_mut();
    match answers.next() {
        // The scheduler, not asked this round: what it said last.
        Some(Err(err)) if err.errno == NOT_ASKED => {
            found.queues = inner.queues.borrow().clone().unwrap_or_default();
            found.passes = inner.passes.borrow().clone();
        }
        // A scheduler without a stats service of its own.
        Some(Err(err)) if err.errno == libc::ENOSYS => {}
        Some(Err(err)) => errors.push(format!("{module}: {}", err.message)),
        Some(Ok(payload)) if module == QMANAGER => match parse_qmanager(&payload, &mut counters) {
            Ok(queues) => {
                *inner.queues.borrow_mut() = Some(queues.clone());
                found.queues = queues;
            }
            Err(e) => {
                inner.queues.borrow_mut().take();
                errors.push(format!("{module}.stats-get: {e}"));
            }
        },
        Some(Ok(payload)) => match parse_passes(&payload, &mut counters) {
            Ok(passes) => {
                inner.passes.replace(passes.clone());
                found.passes = passes;
            }
            Err(e) => {
                inner.passes.borrow_mut().take();
                errors.push(format!("{module}.stats-get: {e}"));
            }
        },
        None => {}
    }
    match answers.next() {
        Some(Err(err)) if err.errno == NOT_ASKED => {}
        Some(Ok(payload)) => match parse_fluxion_resource(&payload, &mut counters) {
            Ok(resource) => *inner.resource.borrow_mut() = Some(resource),
            Err(e) => {
                inner.resource.borrow_mut().take();
                errors.push(format!("{FLUXION_RESOURCE}.stats-get: {e}"));
            }
        },
        Some(Err(err)) => {
            inner.resource.borrow_mut().take();
            errors.push(format!("{FLUXION_RESOURCE}: {}", err.message));
        }
        None => {}
    }
    found.resource = inner.resource.borrow().clone();
    drop(counters);
    let mut read_every =
        BTreeMap::from([(format!("{module}.stats-get"), inner.stats_cadence.every())]);
    if module == QMANAGER {
        read_every.insert(
            format!("{FLUXION_RESOURCE}.stats-get"),
            inner.resource_cadence.every(),
        );
    }
    let change = |state: &mut State| {
        state.set(SECTION, found);
        if let Some(status) = state.collector_mut(NAME) {
            status.read_every = read_every;
        }
    };
    if errors.is_empty() {
        inner.ctx.succeeded(NAME, started, change);
    } else {
        inner.ctx.failed(NAME, &errors.join("; "), change);
    }
}

/// The module that provides the `sched` service, from `module.list`.
pub fn sched_module(payload: &str) -> Result<Option<String>, ParseError> {
    #[derive(Deserialize)]
    struct List {
        mods: Vec<Module>,
    }
    #[derive(Deserialize)]
    struct Module {
        name: String,
        #[serde(default)]
        services: Vec<String>,
    }
    let list: List =
        serde_json::from_str(payload).map_err(|e| ParseError::malformed("module.list", e))?;
    Ok(list
        .mods
        .into_iter()
        .find(|m| m.services.iter().any(|s| s == "sched"))
        .map(|m| m.name))
}

/// `sched-fluxion-qmanager.stats-get`: every queue. Job lists are counted;
/// their job IDs are never exported.
pub fn parse_qmanager(
    payload: &str,
    counters: &mut Monotonic,
) -> Result<Vec<FluxionQueue>, ParseError> {
    #[derive(Deserialize)]
    struct Stats {
        queues: BTreeMap<String, Queue>,
    }
    #[derive(Deserialize)]
    struct Queue {
        #[serde(default)]
        action_counts: BTreeMap<String, f64>,
        #[serde(default)]
        max_queue_depth: f64,
        #[serde(default)]
        queue_depth: f64,
        // Job IDs are only counted: IgnoredAny reads them without keeping
        // them (a zero-sized Vec element allocates nothing).
        #[serde(default)]
        pending_queues: BTreeMap<String, Vec<IgnoredAny>>,
        #[serde(default)]
        scheduled_queues: BTreeMap<String, Vec<IgnoredAny>>,
        #[serde(default)]
        policy: String,
        #[serde(default)]
        policy_parameters: BTreeMap<String, Value>,
        #[serde(default)]
        queue_parameters: BTreeMap<String, Value>,
    }
    let stats: Stats = serde_json::from_str(payload)
        .map_err(|e| ParseError::invalid(format!("malformed response: {e}")))?;
    let count = |lists: &BTreeMap<String, Vec<IgnoredAny>>, name: &str| {
        lists.get(name).map_or(0, |l| l.len() as u64)
    };
    let parameters = |p: &BTreeMap<String, Value>| {
        p.iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(stats
        .queues
        .into_iter()
        .map(|(name, q)| FluxionQueue {
            jobs: vec![
                ("pending", count(&q.pending_queues, "pending")),
                (
                    "pending_provisional",
                    count(&q.pending_queues, "pending_provisional"),
                ),
                ("blocked", count(&q.pending_queues, "blocked")),
                ("running", count(&q.scheduled_queues, "running")),
            ],
            actions: q
                .action_counts
                .iter()
                .map(|(action, &n)| {
                    let exported = counters.adjust(&format!("action {name} {action}"), n);
                    (action.clone(), exported)
                })
                .collect(),
            depth: q.queue_depth,
            max_depth: q.max_queue_depth,
            policy: q.policy,
            policy_parameters: parameters(&q.policy_parameters),
            queue_parameters: parameters(&q.queue_parameters),
            name,
        })
        .collect())
}

/// `sched-fluxion-resource.stats-get`: the graph and match statistics.
pub fn parse_fluxion_resource(
    payload: &str,
    counters: &mut Monotonic,
) -> Result<FluxionResource, ParseError> {
    #[derive(Deserialize)]
    struct Stats {
        #[serde(rename = "V")]
        vertices: f64,
        #[serde(rename = "E")]
        edges: f64,
        #[serde(rename = "load-time")]
        load_time: f64,
        #[serde(rename = "match")]
        matches: MatchStats,
    }
    #[derive(Deserialize)]
    struct MatchStats {
        succeeded: Kind,
        failed: Kind,
    }
    #[derive(Deserialize)]
    struct Kind {
        njobs: f64,
        #[serde(rename = "njobs-reset", default)]
        njobs_reset: f64,
        #[serde(rename = "max-match-iters", default)]
        max_match_iters: f64,
        stats: Times,
    }
    #[derive(Deserialize)]
    struct Times {
        max: f64,
        avg: f64,
    }
    let stats: Stats = serde_json::from_str(payload)
        .map_err(|e| ParseError::invalid(format!("malformed response: {e}")))?;
    let mut matches = |result: &str, k: Kind| Matches {
        total: counters.adjust(&format!("matches {result}"), k.njobs),
        // After stats-clear Fluxion reports zeros and -1 until the next
        // match: nothing to export then.
        max_seconds: (k.njobs_reset > 0.0).then_some(k.stats.max),
        mean_seconds: (k.njobs_reset > 0.0).then_some(k.stats.avg),
        max_iterations: (k.njobs_reset > 0.0 && k.max_match_iters >= 0.0)
            .then_some(k.max_match_iters),
    };
    Ok(FluxionResource {
        vertices: stats.vertices,
        edges: stats.edges,
        load_seconds: stats.load_time,
        succeeded: matches("succeeded", stats.matches.succeeded),
        failed: matches("failed", stats.matches.failed),
    })
}

/// The stats of flux-core's schedulers; None where the answer has none of
/// their fields (a module's generic message counters, say).
pub fn parse_passes(payload: &str, counters: &mut Monotonic) -> Result<Option<Passes>, ParseError> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(payload)
        .map_err(|e| ParseError::invalid(format!("malformed response: {e}")))?;
    let number = |key: &str| v.get(key).and_then(Value::as_f64);
    if number("sched_passes").is_none() {
        return Ok(None);
    }
    let mut counter =
        |kind: &'static str, key: &str| number(key).map(|n| (kind, counters.adjust(key, n)));
    let passes = [
        counter("schedule", "sched_passes"),
        counter("forecast", "forecast_passes"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let yields = [
        counter("schedule", "sched_yields"),
        counter("forecast", "forecast_yields"),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(Some(Passes {
        passes,
        yields,
        pending_jobs: number("pending_jobs"),
        delay_seconds: number("sched_delay"),
        duration_seconds: number("sched_duration_ewma"),
        interval_seconds: number("sched_interval_ewma"),
    }))
}

fn render(state: &State, out: &mut Rendered) {
    let Some(found) = state.get(SECTION) else {
        return;
    };
    let Some(module) = &found.module else { return };
    Family::of(out, &SCHEDULER_INFO).sample(&[("name", module)], 1.0);
    render_fluxion_queues(&found.queues, out);
    if let Some(r) = &found.resource {
        render_fluxion_resource(r, out);
    }
    if let Some(p) = &found.passes {
        render_passes(p, out);
    }
}

fn render_fluxion_queues(queues: &[FluxionQueue], out: &mut Rendered) {
    let mut f = Family::of(out, &SCHEDULER_QUEUE_DEPTH);
    for q in queues {
        f.sample(&[("queue", &q.name)], q.depth);
    }
    let mut f = Family::of(out, &SCHEDULER_QUEUE_MAX_DEPTH);
    for q in queues {
        f.sample(&[("queue", &q.name)], q.max_depth);
    }
    let mut f = Family::of(out, &SCHEDULER_QUEUE_JOBS);
    for q in queues {
        for (list, n) in &q.jobs {
            f.sample(&[("queue", &q.name), ("state", list)], *n as f64);
        }
    }
    let mut f = Family::of(out, &SCHEDULER_ACTIONS_TOTAL);
    for q in queues {
        for (action, n) in &q.actions {
            f.sample(&[("queue", &q.name), ("action", action)], *n);
        }
    }
    let mut f = Family::of(out, &SCHEDULER_POLICY_INFO);
    for q in queues {
        f.sample(
            &[
                ("queue", &q.name),
                ("policy", &q.policy),
                ("policy_parameters", &q.policy_parameters),
                ("queue_parameters", &q.queue_parameters),
            ],
            1.0,
        );
    }
}

fn render_fluxion_resource(r: &FluxionResource, out: &mut Rendered) {
    let kinds = [("succeeded", &r.succeeded), ("failed", &r.failed)];
    let mut f = Family::of(out, &SCHEDULER_MATCHES_TOTAL);
    for (result, m) in kinds {
        f.sample(&[("result", result)], m.total);
    }
    type Pick = fn(&Matches) -> Option<f64>;
    let stats: [(&Doc, Pick); 3] = [
        (&SCHEDULER_MATCH_MAX_SECONDS, |m| m.max_seconds),
        (&SCHEDULER_MATCH_MEAN_SECONDS, |m| m.mean_seconds),
        (&SCHEDULER_MATCH_MAX_ITERATIONS, |m| m.max_iterations),
    ];
    for (doc, pick) in stats {
        let mut f = Family::of(out, doc);
        for (result, m) in kinds {
            if let Some(v) = pick(m) {
                f.sample(&[("result", result)], v);
            }
        }
    }
    Family::of(out, &SCHEDULER_GRAPH_VERTICES).sample(&[], r.vertices);
    Family::of(out, &SCHEDULER_GRAPH_EDGES).sample(&[], r.edges);
    Family::of(out, &SCHEDULER_GRAPH_LOAD_SECONDS).sample(&[], r.load_seconds);
}

fn render_passes(p: &Passes, out: &mut Rendered) {
    let mut f = Family::of(out, &SCHEDULER_PASSES_TOTAL);
    for (kind, n) in &p.passes {
        f.sample(&[("kind", kind)], *n);
    }
    let mut f = Family::of(out, &SCHEDULER_YIELDS_TOTAL);
    for (kind, n) in &p.yields {
        f.sample(&[("kind", kind)], *n);
    }
    let gauges: [(&Doc, Option<f64>); 4] = [
        (&SCHEDULER_PENDING_JOBS, p.pending_jobs),
        (&SCHEDULER_DELAY_SECONDS, p.delay_seconds),
        (&SCHEDULER_PASS_DURATION_SECONDS, p.duration_seconds),
        (&SCHEDULER_PASS_INTERVAL_SECONDS, p.interval_seconds),
    ];
    for (doc, value) in gauges {
        if let Some(v) = value {
            Family::of(out, doc).sample(&[], v);
        }
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    SCHEDULER_INFO,
    SCHEDULER_QUEUE_DEPTH,
    SCHEDULER_QUEUE_MAX_DEPTH,
    SCHEDULER_QUEUE_JOBS,
    SCHEDULER_ACTIONS_TOTAL,
    SCHEDULER_POLICY_INFO,
    SCHEDULER_MATCHES_TOTAL,
    SCHEDULER_GRAPH_VERTICES,
    SCHEDULER_GRAPH_EDGES,
    SCHEDULER_GRAPH_LOAD_SECONDS,
    SCHEDULER_PASSES_TOTAL,
    SCHEDULER_YIELDS_TOTAL,
    SCHEDULER_MATCH_MAX_SECONDS,
    SCHEDULER_MATCH_MEAN_SECONDS,
    SCHEDULER_MATCH_MAX_ITERATIONS,
    SCHEDULER_PENDING_JOBS,
    SCHEDULER_DELAY_SECONDS,
    SCHEDULER_PASS_DURATION_SECONDS,
    SCHEDULER_PASS_INTERVAL_SECONDS,
];
const SCHEDULER_MATCH_MAX_SECONDS: Doc = Doc::gauge(
    "flux_scheduler_match_max_seconds",
    "Longest Fluxion match since its statistics were last reset, by result.",
    &["result"],
);

const SCHEDULER_MATCH_MEAN_SECONDS: Doc = Doc::gauge(
    "flux_scheduler_match_mean_seconds",
    "Mean Fluxion match time since its statistics were last reset, by result.",
    &["result"],
);

const SCHEDULER_MATCH_MAX_ITERATIONS: Doc = Doc::gauge(
    "flux_scheduler_match_max_iterations",
    "Match iterations of the longest Fluxion match since its statistics were last reset, by result.",
    &["result"],
);

const SCHEDULER_PENDING_JOBS: Doc = Doc::gauge(
    "flux_scheduler_pending_jobs",
    "Jobs the scheduler holds pending.",
    &[],
);

const SCHEDULER_DELAY_SECONDS: Doc = Doc::gauge(
    "flux_scheduler_delay_seconds",
    "The scheduler's current delay before its next pass (sched_delay).",
    &[],
);

const SCHEDULER_PASS_DURATION_SECONDS: Doc = Doc::gauge(
    "flux_scheduler_pass_duration_seconds",
    "Moving average of a scheduling pass's duration (sched_duration_ewma).",
    &[],
);

const SCHEDULER_PASS_INTERVAL_SECONDS: Doc = Doc::gauge(
    "flux_scheduler_pass_interval_seconds",
    "Moving average of the time between scheduling passes (sched_interval_ewma).",
    &[],
);

const SCHEDULER_INFO: Doc = Doc::info(
    "flux_scheduler_info",
    "The loaded scheduler: the module that provides the sched service; always 1.",
    &["name"],
);

const SCHEDULER_QUEUE_DEPTH: Doc = Doc::gauge(
    "flux_scheduler_queue_depth",
    "Jobs Fluxion considers per scheduling loop in the queue (queue-depth).",
    &["queue"],
);

const SCHEDULER_QUEUE_MAX_DEPTH: Doc = Doc::gauge(
    "flux_scheduler_queue_max_depth",
    "The largest queue depth Fluxion allows (max-queue-depth).",
    &["queue"],
);

const SCHEDULER_QUEUE_JOBS: Doc = Doc::gauge(
    "flux_scheduler_queue_jobs",
    "Jobs in Fluxion's queue lists: pending, pending_provisional, blocked, running.",
    &["queue", "state"],
);

const SCHEDULER_ACTIONS_TOTAL: Doc = Doc::counter(
    "flux_scheduler_actions_total",
    "Fluxion queue actions since this module loaded (pending, running, reserved, rejected, complete, cancelled, reprioritized); Fluxion's own resets are not seen.",
    &["queue", "action"],
);

const SCHEDULER_POLICY_INFO: Doc = Doc::info(
    "flux_scheduler_policy_info",
    "The queue's Fluxion policy and its parameters; always 1.",
    &["queue", "policy", "policy_parameters", "queue_parameters"],
);

const SCHEDULER_MATCHES_TOTAL: Doc = Doc::counter(
    "flux_scheduler_matches_total",
    "Fluxion match attempts since this module loaded, by result.",
    &["result"],
);

const SCHEDULER_GRAPH_VERTICES: Doc = Doc::gauge(
    "flux_scheduler_graph_vertices",
    "Vertices of Fluxion's resource graph.",
    &[],
);

const SCHEDULER_GRAPH_EDGES: Doc = Doc::gauge(
    "flux_scheduler_graph_edges",
    "Edges of Fluxion's resource graph.",
    &[],
);

const SCHEDULER_GRAPH_LOAD_SECONDS: Doc = Doc::gauge(
    "flux_scheduler_graph_load_seconds",
    "How long Fluxion took to load its resource graph.",
    &[],
);

const SCHEDULER_PASSES_TOTAL: Doc = Doc::counter(
    "flux_scheduler_passes_total",
    "Scheduling and forecast passes since this module loaded (sched_passes, forecast_passes).",
    &["kind"],
);

const SCHEDULER_YIELDS_TOTAL: Doc = Doc::counter(
    "flux_scheduler_yields_total",
    "Passes that yielded to the reactor before finishing, since this module loaded.",
    &["kind"],
);

#[cfg(test)]
mod tests {
    use super::Monotonic;

    #[test]
    fn a_counter_that_goes_down_was_reset_and_keeps_counting_up() {
        let mut m = Monotonic::default();
        assert_eq!(m.adjust("a", 5.0), 5.0);
        assert_eq!(m.adjust("a", 7.0), 7.0);
        assert_eq!(m.adjust("a", 0.0), 7.0);
        assert_eq!(m.adjust("a", 2.0), 9.0);
        assert_eq!(m.adjust("b", 1.0), 1.0);
    }
}
