//! Resources: exports what `flux resource list` and `flux resource status`
//! would print, from `resource.sched-status` (the scheduler's all / down /
//! allocated sets, as `flux resource list` reads them), `resource.status`
//! (node states) and `config.get` (queue definitions).
//!
//! `resource.sched-status` is expensive for the broker: the resource module
//! rebuilds the allocated set with its properties on every call (33 ms of
//! broker CPU on 4096 nodes x 64 cores). So each poll first asks the three
//! cheap sources it depends on: `job-manager.resource-status` (the allocated
//! set, cached by the job manager until an allocation changes),
//! `resource.status` (shared with the nodes collector, and asked of the
//! resource module only after a change: see [`crate::reactor::resource_status`])
//! and `config.get`. When none changed, nothing is
//! recomputed. When one did, sched-status is computed from them as the
//! resource module would (see `SchedStatus::derive`), and asked of the
//! resource module only in the one case that cannot be computed exactly.
//!
//! The allocated set itself is taken from the job-manager journal, which
//! the job-flow collector follows (see [`crate::model::allocations`]),
//! whenever that is exact: the job manager rebuilds its answer from every
//! running job's R after each allocation change, which on a large busy
//! instance costs the broker far more than everything else here. It is
//! asked instead while the journal has not been read to the present (the
//! job-flow collector disabled, or its stream down) and while housekeeping
//! is configured.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::{About, Collector, Context, OptionSpec, Settings, Spec};
use crate::config::parse_bool;
use crate::model::allocations::{self, Allocations};
use crate::model::error::ParseError;
use crate::model::resources::DRAIN_AGES;
use crate::model::resources::{self, Counts, ResourceSet, ResourceSummary, Tally, ALL};
use crate::reactor::allocated::AllocatedReader;
use crate::reactor::poll::{Opened, PollLoop, ROUND_TIMEOUT};
use crate::reactor::resource_status::NodeEvents;
use crate::render::{queue_label, Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::Error;

pub const NAME: &str = "resources";
pub const SECTION: Section<ResourcesState> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "Nodes, cores and GPUs by scheduler state and capacity, for the instance and each queue, as flux resource list counts them; node states as flux resource status -s all lists them.",
    about: About {
        name: NAME,
        on_by_default: true,
        // Deprecated: per-node=true now turns the nodes collector on (see
        // crate::config), whose flux_node_drain_info replaces the drained-node
        // series this collector exported.
        options: &[OptionSpec {
            key: "per-node",
            check: |v| Ok(parse_bool(v).map(drop)?),
        }],
        needs: &[],
    },
    start,
    restart_needed: super::restart_on_new_interval,
    render: super::Render::Now(render),
    reads: &[],
    families: FAMILIES,
};

/// What the resources collector keeps in the state.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcesState {
    pub summary: ResourceSummary,
    /// The nodes the resource journal's events named since it began.
    pub node_events: NodeEvents,
    /// The same for each configured queue's nodes.
    pub queue_node_events: Vec<(String, NodeEvents)>,
    /// When the summary was made (seconds since the epoch): drained nodes'
    /// ages are counted at it.
    pub at: f64,
}
/// The cheap sources, asked every poll; what sched-status is computed from.
const WATCHED: [&str; 4] = [
    "job-manager.resource-status",
    "resource.status",
    "config.get",
    "job-manager.stats-get",
];
const SCHED_STATUS: &str = "resource.sched-status";
/// As `flux resource list` does, when the resource module does not answer.
const SCHED_FALLBACK: &str = "sched.resource-status";
const ALLOCATED_SLOT: usize = 0;
const CONFIG_SLOT: usize = 2;
/// Kept as the ranks in housekeeping, not the whole answer, which changes
/// with every job.
const HOUSEKEEPING_SLOT: usize = 3;
const SCHED_SLOT: usize = 4;

impl Collector for Inner {}

struct Inner {
    ctx: Rc<Context>,
    poll: PollLoop<Round>,
    /// The allocated set as the jobflow collector follows it.
    allocated: AllocatedReader,
    /// The watched answers the exported counts were computed from.
    counted_from: RefCell<Option<[String; 4]>>,
    /// All and down as derived from the last `resource.status` answer, which
    /// changes far less often than allocations do, and each rank's counts
    /// from them and the journal's allocated set.
    status_sets: RefCell<Option<Counted>>,
}

/// What the counts from the journal's allocated set are kept as.
struct Counted {
    /// The `resource.status` answer `sets` were derived from.
    status: String,
    sets: resources::StatusSets,
    /// The config and the tally counted from it, as of a generation of
    /// the allocated set.
    tally: Option<(String, u64, Tally)>,
}

/// The summary from the journal's allocated set (`generation` of
/// `allocations`): all and down are derived again only when `status`
/// changed, the tally made again when the config changed too, and ranks
/// counted again only where their allocation changed since the last count
/// (every rank where that is not known).
fn summarize_journal(
    inner: &Inner,
    allocations: &Allocations,
    (generation, allocated): (u64, &ResourceSet),
    status: &String,
    config: &str,
) -> Option<Result<ResourceSummary, ParseError>> {
    let mut cache = inner.status_sets.borrow_mut();
    if cache.as_ref().is_none_or(|c| &c.status != status) {
        *cache = match resources::StatusSets::derive(status) {
            Ok(Some(sets)) => Some(Counted {
                status: status.clone(),
                sets,
                tally: None,
            }),
            _ => None,
        };
    }
    let Counted { sets, tally, .. } = cache.as_mut()?;
    let view = resources::SchedView {
        all: &sets.all,
        down: &sets.down,
        allocated,
    };
    if tally.as_ref().is_none_or(|(c, _, _)| c != config) {
        match Tally::new(view, status, config) {
            Ok(made) => *tally = Some((config.to_string(), generation, made)),
            Err(e) => return Some(Err(e)),
        }
    }
    let (_, from, kept) = tally.as_mut()?;
    if *from != generation {
        match allocations.ranks_changed_since(*from) {
            Some(changed) => kept.recount(view, &changed),
            None => match Tally::new(view, status, config) {
                Ok(made) => *kept = made,
                Err(e) => return Some(Err(e)),
            },
        }
        *from = generation;
    }
    Some(Ok(kept.summary(allocated)))
}

/// What one poll keeps: the answers so far (the watched three, then
/// sched-status when it is needed).
struct Round {
    answers: [Option<Result<String, Error>>; 5],
    /// The summary as computed here, when that was possible.
    computed: Option<Result<resources::ResourceSummary, ParseError>>,
    /// The allocated set is the journal's, not the job manager's answer.
    from_journal: bool,
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let handle = ctx.handle;
    let inner = Rc::new(Inner {
        allocated: ctx.allocated_reader(),
        ctx,
        poll: PollLoop::new(),
        counted_from: RefCell::new(None),
        status_sets: RefCell::new(None),
    });
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    let ticks = weak.clone();
    inner.poll.start(handle, settings.poll_interval, move || {
        if let Some(inner) = ticks.upgrade() {
            start_round(&inner);
        }
    })?;
    inner.ctx.before_publish(NAME, move || {
        let Some(inner) = weak.upgrade() else {
            return false;
        };
        recount_allocated(&inner);
        true
    });
    Ok(Box::new(inner))
}

/// Exports `summary`, counted from `source`.
fn found(inner: &Inner, summary: ResourceSummary, source: &'static str) -> impl FnOnce(&mut State) {
    let node_events = inner.ctx.resource_node_events();
    let queue_node_events = summary
        .queue_ranks
        .iter()
        .map(|(queue, ranks)| (queue.clone(), inner.ctx.resource_node_events_in(ranks)))
        .collect();
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    move |state: &mut State| {
        state.set(
            SECTION,
            ResourcesState {
                summary,
                node_events,
                queue_node_events,
                at,
            },
        );
        if let Some(c) = state.collector_mut(NAME) {
            c.source = Some(source);
        }
    }
}

/// Before a render: where the journal's allocated set has changed since the
/// exported counts were made, counts again from it and the status and
/// config answers they came from. A job that starts then shows as
/// allocated in the same publish as its start, not a poll later; so does
/// one started while the set was being rebuilt (the jobflow collector
/// restarted, say), once the set is current again. Nothing changes where
/// housekeeping is configured (the job manager is polled then) or where
/// ranks are offline (sched-status is asked then).
fn recount_allocated(inner: &Rc<Inner>) {
    let mut counted_from = inner.counted_from.borrow_mut();
    let Some([allocated_key, status, config, housekeeping]) = counted_from.as_mut() else {
        return;
    };
    let allocations = inner.allocated.borrow();
    let Some((generation, allocated)) = allocations.current() else {
        return;
    };
    let key = format!("{JOURNAL_KEY}{generation}");
    if *allocated_key == key {
        return;
    }
    if !allocated_key.starts_with(JOURNAL_KEY) {
        let housekeeping =
            serde_json::from_str(config).map_or(true, |c| allocations::housekeeping_configured(&c));
        if housekeeping {
            return;
        }
    }
    if let Some(Ok(mut summary)) =
        summarize_journal(inner, &allocations, (generation, allocated), status, config)
    {
        summary.health.housekeeping = housekeeping_count(housekeeping);
        *allocated_key = key;
        inner
            .ctx
            .update_in_publish(found(inner, summary, JOURNAL_SOURCE));
    }
}

/// The source the collector reports when the allocated set is the journal's.
const JOURNAL_SOURCE: &str = "job-manager.events-journal";

/// How a watched allocated answer names the journal's set: by generation.
const JOURNAL_KEY: &str = "journal generation ";

/// Asks `topic` for `slot` of the open round; `resource.status` through
/// the answer the nodes collector shares (see [`crate::reactor::resource_status`]).
fn send(inner: &Rc<Inner>, slot: usize, topic: &str) -> Result<(), Error> {
    let weak = Rc::downgrade(inner);
    let on_response = move |response| {
        if let Some(inner) = weak.upgrade() {
            on_answer(&inner, slot, response);
        }
    };
    inner.ctx.ask_for_round(&inner.poll, topic, on_response)
}

fn start_round(inner: &Rc<Inner>) {
    let from_journal = inner.allocated.borrow().current().is_some();
    let round = Round {
        answers: [None, None, None, None, None],
        computed: None,
        from_journal,
    };
    match inner.poll.open(round) {
        Opened::Busy => return,
        Opened::AfterTimeout => {
            let msg = format!(
                "no answer from {}, {SCHED_STATUS} within {}s",
                WATCHED.join(", "),
                ROUND_TIMEOUT.as_secs()
            );
            inner.ctx.failed(NAME, &msg, |state| state.clear(SECTION));
        }
        Opened::Fresh => {}
    }
    let first = if from_journal { ALLOCATED_SLOT + 1 } else { 0 };
    for (slot, topic) in WATCHED.iter().enumerate().skip(first) {
        if let Err(err) = send(inner, slot, topic) {
            inner.poll.close();
            inner
                .ctx
                .failed(NAME, &err.message, |state| state.clear(SECTION));
            return;
        }
    }
}

fn on_answer(inner: &Rc<Inner>, slot: usize, answer: Result<String, Error>) {
    if slot == SCHED_SLOT
        && matches!(&answer, Err(e) if e.errno == libc::ENOSYS)
        && send(inner, slot, SCHED_FALLBACK).is_ok()
    {
        return;
    }
    let answer = if slot == HOUSEKEEPING_SLOT {
        answer.and_then(|p| {
            housekeeping_key(&p).map_err(|msg| Error::new(libc::EPROTO, msg.to_string()))
        })
    } else {
        answer
    };
    let Some(watched_in) = inner.poll.with(|r| {
        r.answers[slot] = Some(answer);
        r.answers[..SCHED_SLOT].iter().all(Option::is_some)
    }) else {
        return;
    };
    if !(watched_in || slot != SCHED_SLOT && take_allocated_from_journal(inner)) {
        return;
    }
    if slot != SCHED_SLOT && !ask_sched_status_if_changed(inner) {
        return;
    }
    // Take the round out before its RPCs are dropped: this call runs inside
    // one of their continuations.
    let Some(round) = inner.poll.close() else {
        return;
    };
    let started = round.started;
    let Round {
        answers: [allocated, status, config, housekeeping, sched],
        computed,
        from_journal,
    } = round.into_data();
    let source = match (&sched, from_journal) {
        (Some(_), _) => SCHED_STATUS,
        (None, true) => JOURNAL_SOURCE,
        (None, false) => WATCHED[ALLOCATED_SLOT],
    };
    let watched = [&allocated, &status, &config, &housekeeping].map(watch_key);
    let in_housekeeping = housekeeping_count(&watched[HOUSEKEEPING_SLOT]);
    let unchanged = inner.counted_from.borrow().as_ref() == Some(&watched);
    let outcome = (|| {
        let missing = || Error::new(libc::EPROTO, "no answer");
        let status = status.ok_or_else(missing)??;
        let config = config.ok_or_else(missing)??;
        let summary = match (sched, computed) {
            (Some(sched), _) => resources::summarize(&sched?, &status, &config),
            (None, Some(computed)) => computed,
            (None, None) if unchanged => return Ok(None),
            (None, None) => return Err(Error::new(libc::EPROTO, "sched-status was not asked")),
        };
        summary
            .map(|mut summary| {
                summary.health.housekeeping = in_housekeeping;
                Some(summary)
            })
            .map_err(|msg| Error::new(libc::EPROTO, msg.to_string()))
    })();
    match outcome {
        Ok(summary) => {
            *inner.counted_from.borrow_mut() = Some(watched);
            let export = summary.map(|summary| found(inner, summary, source));
            inner.ctx.succeeded(NAME, started, |state| {
                if let Some(export) = export {
                    export(state);
                }
            })
        }
        Err(err) => {
            inner.counted_from.borrow_mut().take();
            inner
                .ctx
                .failed(NAME, &err.message, |state| state.clear(SECTION))
        }
    }
}

/// In a round that reads the allocated set from the journal, once
/// `resource.status` and `config.get` are in: fills the allocated slot with
/// the journal's generation, or, where the journal cannot be trusted (it
/// stopped being current, or the config turns on housekeeping), asks the
/// job manager after all. Returns true when the watched answers are in.
fn take_allocated_from_journal(inner: &Rc<Inner>) -> bool {
    // Some(done) decides here; None asks the job manager.
    let decided = inner.poll.with(|r| {
        if !r.from_journal
            || r.answers[ALLOCATED_SLOT + 1..SCHED_SLOT]
                .iter()
                .any(Option::is_none)
        {
            return Some(false);
        }
        let housekeeping = match &r.answers[CONFIG_SLOT] {
            Some(Ok(config)) => serde_json::from_str(config)
                .map_or(true, |c| allocations::housekeeping_configured(&c)),
            _ => true,
        };
        r.from_journal = false;
        if !housekeeping {
            if let Some((generation, _)) = inner.allocated.borrow().current() {
                r.from_journal = true;
                r.answers[ALLOCATED_SLOT] = Some(Ok(format!("{JOURNAL_KEY}{generation}")));
                return Some(true);
            }
        }
        None
    });
    match decided {
        None => false,
        Some(Some(done)) => done,
        Some(None) => ask_in_round(inner, ALLOCATED_SLOT, WATCHED[ALLOCATED_SLOT]),
    }
}

/// The ranks in housekeeping from a `job-manager.stats-get` answer, as
/// the idset text that is compared between polls.
fn housekeeping_key(payload: &str) -> Result<String, ParseError> {
    #[derive(serde::Deserialize)]
    struct Stats {
        housekeeping: Option<Housekeeping>,
    }
    #[derive(serde::Deserialize)]
    struct Housekeeping {
        #[serde(default)]
        running: serde_json::Map<String, serde_json::Value>,
    }
    let stats: Stats = serde_json::from_str(payload)
        .map_err(|e| ParseError::malformed("job-manager.stats-get", e))?;
    let running = stats.housekeeping.map(|h| h.running).unwrap_or_default();
    super::internals::housekeeping_ranks(&running)
        .map(|ranks| ranks.to_string())
        .map_err(|e| e.within("job-manager.stats-get"))
}

/// How many ranks a housekeeping key names (none for an error: the job
/// manager not loaded, say, or housekeeping not configured).
fn housekeeping_count(key: &str) -> u64 {
    crate::model::idset::IdSet::parse(key).map_or(0, |ranks| ranks.count())
}

/// A watched answer as compared between polls; an error (job-manager not
/// loaded, say) is a value like any other, and resource.sched-status is then
/// the judge of what it means.
fn watch_key(answer: &Option<Result<String, Error>>) -> String {
    match answer {
        Some(Ok(payload)) => payload.clone(),
        Some(Err(err)) => format!("error {}: {}", err.errno, err.message),
        None => String::new(),
    }
}

/// Once the watched answers are in: when they differ from those the
/// exported counts came from, computes sched-status from them where that is
/// exact, and asks the resource module for it where not. Returns true when
/// the round can finish now.
fn ask_sched_status_if_changed(inner: &Rc<Inner>) -> bool {
    // Some(done) decides here; None asks the resource module.
    let decided = inner.poll.with(|r| {
        let now: Vec<String> = r.answers[..SCHED_SLOT].iter().map(watch_key).collect();
        if inner.counted_from.borrow().as_ref().map(|c| c.as_slice()) == Some(now.as_slice()) {
            return Some(true);
        }
        let allocations = inner.allocated.borrow();
        let journal = allocations.current().filter(|_| r.from_journal);
        if let Some((generation, _)) = journal {
            // The set may have moved on since the slot was filled.
            r.answers[ALLOCATED_SLOT] = Some(Ok(format!("{JOURNAL_KEY}{generation}")));
        }
        let computed = match (&r.answers[..SCHED_SLOT], journal) {
            ([Some(Ok(_)), Some(Ok(status)), Some(Ok(config)), _], Some(journal)) => {
                summarize_journal(inner, &allocations, journal, status, config)
            }
            ([Some(Ok(allocated)), Some(Ok(status)), Some(Ok(config)), _], None)
                if !r.from_journal =>
            {
                match resources::SchedStatus::derive(status, allocated) {
                    Ok(Some(derived)) => Some(resources::summarize_from(derived, status, config)),
                    _ => None,
                }
            }
            _ => None,
        };
        if computed.is_some() {
            r.computed = computed;
            return Some(true);
        }
        None
    });
    match decided {
        None => false,
        Some(Some(done)) => done,
        Some(None) => ask_in_round(inner, SCHED_SLOT, SCHED_STATUS),
    }
}

/// Asks `topic` for `slot` of the current round. Returns true when the
/// request could not be sent (its error is then the slot's answer, and the
/// round can finish now), false while the answer is awaited.
fn ask_in_round(inner: &Rc<Inner>, slot: usize, topic: &str) -> bool {
    match send(inner, slot, topic) {
        Ok(()) => false,
        Err(err) => inner
            .poll
            .with(|r| r.answers[slot] = Some(Err(err)))
            .is_some(),
    }
}

fn render(state: &State, out: &mut Rendered) {
    let Some(ResourcesState {
        summary: res,
        node_events,
        queue_node_events,
        at,
    }) = state.get(SECTION)
    else {
        return;
    };
    // The anonymous queue of an instance without named queues has every
    // resource (see job_families).
    let anonymous = [(String::new(), res.totals.clone())];
    let queues = if res.queues.is_empty() {
        &anonymous[..]
    } else {
        &res.queues[..]
    };
    type Pick = fn(&Counts) -> u64;
    let picks: [Pick; 3] = [|c| c.nnodes, |c| c.ncores, |c| c.ngpus];
    for (i, pick) in picks.into_iter().enumerate() {
        let mut total = Family::of(out, &BY_STATE[i]);
        for (st, c) in res.totals.iter().filter(|(st, _)| *st != ALL) {
            total.sample(&[("state", st)], pick(c) as f64);
        }
        let mut queue = Family::of(out, &QUEUE_BY_STATE[i]);
        for (name, rows) in queues {
            for (st, c) in rows.iter().filter(|(st, _)| *st != ALL) {
                let mut labels: Vec<_> = queue_label(name).into_iter().collect();
                labels.push(("state", st));
                queue.sample(&labels, pick(c) as f64);
            }
        }
    }
    for (i, pick) in picks.into_iter().enumerate() {
        let mut f = Family::of(out, &CAPACITY[i]);
        for (_, c) in res.totals.iter().filter(|(st, _)| *st == ALL) {
            f.sample(&[], pick(c) as f64);
        }
        let mut f = Family::of(out, &QUEUE_CAPACITY[i]);
        for (queue, rows) in queues {
            for (_, c) in rows.iter().filter(|(st, _)| *st == ALL) {
                f.sample(queue_label(queue).as_slice(), pick(c) as f64);
            }
        }
    }
    let mut health = Family::of(out, &RESOURCE_STATUS_NODES);
    for (st, n) in res.health.by_state() {
        health.sample(&[("state", st)], n as f64);
    }
    let mut f = Family::of(out, &NODE_EVENTS_TOTAL);
    for (event, n) in node_events.by_name() {
        f.sample(&[("event", event)], n as f64);
    }
    // The anonymous queue has every node.
    let anonymous = [(String::new(), *node_events)];
    let by_queue = if queue_node_events.is_empty() {
        &anonymous[..]
    } else {
        &queue_node_events[..]
    };
    let mut f = Family::of(out, &QUEUE_NODE_EVENTS_TOTAL);
    for (queue, events) in by_queue {
        for (event, n) in events.by_name() {
            let mut labels: Vec<_> = queue_label(queue).into_iter().collect();
            labels.push(("event", event));
            f.sample(&labels, n as f64);
        }
    }
    let mut f = Family::of(out, &LONG_DRAINED_NODES);
    for (label, seconds) in DRAIN_AGES {
        f.sample(
            &[("longer_than", label)],
            res.health.drained_longer_than(*at, seconds) as f64,
        );
    }
    let mut f = Family::of(out, &DRAIN_REASON_NODES);
    for (reason, n) in res.health.drain_reasons() {
        f.sample(&[("reason", &reason)], n as f64);
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    BY_STATE[0],
    BY_STATE[1],
    BY_STATE[2],
    QUEUE_BY_STATE[0],
    QUEUE_BY_STATE[1],
    QUEUE_BY_STATE[2],
    CAPACITY[0],
    CAPACITY[1],
    CAPACITY[2],
    QUEUE_CAPACITY[0],
    QUEUE_CAPACITY[1],
    QUEUE_CAPACITY[2],
    RESOURCE_STATUS_NODES,
    NODE_EVENTS_TOTAL,
    QUEUE_NODE_EVENTS_TOTAL,
    LONG_DRAINED_NODES,
    DRAIN_REASON_NODES,
];

const QUEUE_NODE_EVENTS_TOTAL: Doc = Doc::counter(
    "flux_queue_resource_node_events_total",
    "flux_resource_node_events_total for the nodes of one queue (its requires; no queue label for the anonymous queue): how often a class of nodes is drained, undrained, lost and back.",
    &["queue", "event"],
);

const NODE_EVENTS_TOTAL: Doc = Doc::counter(
    "flux_resource_node_events_total",
    "Nodes named by the resource eventlog's drain, undrain, offline, online, torpid and lively events since the resource module began its journal (the instance's start, or that module's last load): flux resource eventlog lists them.",
    &["event"],
);

const LONG_DRAINED_NODES: Doc = Doc::gauge(
    "flux_resource_long_drained_nodes",
    "Drained nodes (draining ones included) drained longer than 1h, 1d or 7d ago, by the time flux resource drain shows.",
    &["longer_than"],
);

const DRAIN_REASON_NODES: Doc = Doc::gauge(
    "flux_resource_drain_reason_nodes",
    "Drained nodes (draining ones included) by the reason given to flux resource drain; the 20 most common reasons apart, the rest as other, no reason as the empty string.",
    &["reason"],
)
.private();

// Nodes, cores and GPUs, in that order, in each of the four below.

/// By scheduler state. Their help says how current they are.
const BY_STATE: [Doc; 3] = [
    Doc::gauge(
        "flux_resource_nodes",
        "Nodes by scheduler state, as flux resource list counts them. The states overlap (a node both allocated and down is in both), so they do not add up to the instance: flux_resource_capacity_nodes does. Allocations follow the job-manager journal within a publish; with housekeeping configured, or the jobflow collector off, they are polled every poll-interval.",
        &["state"],
    ),
    Doc::gauge(
        "flux_resource_cores",
        "Cores by scheduler state, as flux resource list counts them. The states overlap (a node both allocated and down is in both), so they do not add up to the instance: flux_resource_capacity_cores does. Allocations follow the job-manager journal within a publish; with housekeeping configured, or the jobflow collector off, they are polled every poll-interval.",
        &["state"],
    ),
    Doc::gauge(
        "flux_resource_gpus",
        "GPUs by scheduler state, as flux resource list counts them. The states overlap (a node both allocated and down is in both), so they do not add up to the instance: flux_resource_capacity_gpus does. Allocations follow the job-manager journal within a publish; with housekeeping configured, or the jobflow collector off, they are polled every poll-interval.",
        &["state"],
    ),
];

const QUEUE_BY_STATE: [Doc; 3] = [
    Doc::gauge(
        "flux_queue_resource_nodes",
        "Nodes of a queue by scheduler state, as flux resource list -q QUEUE counts them (states overlap; the anonymous queue has no queue label). Allocations follow the job-manager journal within a publish; with housekeeping configured, or the jobflow collector off, they are polled every poll-interval.",
        &["queue", "state"],
    ),
    Doc::gauge(
        "flux_queue_resource_cores",
        "Cores of a queue by scheduler state, as flux resource list -q QUEUE counts them (states overlap; the anonymous queue has no queue label). Allocations follow the job-manager journal within a publish; with housekeeping configured, or the jobflow collector off, they are polled every poll-interval.",
        &["queue", "state"],
    ),
    Doc::gauge(
        "flux_queue_resource_gpus",
        "GPUs of a queue by scheduler state, as flux resource list -q QUEUE counts them (states overlap; the anonymous queue has no queue label). Allocations follow the job-manager journal within a publish; with housekeeping configured, or the jobflow collector off, they are polled every poll-interval.",
        &["queue", "state"],
    ),
];

const CAPACITY: [Doc; 3] = [
    Doc::gauge(
        "flux_resource_capacity_nodes",
        "All nodes of the instance, down ones included, as flux resource list -s all counts them (excluded ones are not).",
        &[],
    ),
    Doc::gauge(
        "flux_resource_capacity_cores",
        "All cores of the instance, down ones included, as flux resource list -s all counts them (excluded ones are not).",
        &[],
    ),
    Doc::gauge(
        "flux_resource_capacity_gpus",
        "All gpus of the instance, down ones included, as flux resource list -s all counts them (excluded ones are not).",
        &[],
    ),
];

const QUEUE_CAPACITY: [Doc; 3] = [
    Doc::gauge(
        "flux_queue_resource_capacity_nodes",
        "All nodes of a queue, down ones included, as flux resource list -q QUEUE -s all counts them (the anonymous queue has no queue label).",
        &["queue"],
    ),
    Doc::gauge(
        "flux_queue_resource_capacity_cores",
        "All cores of a queue, down ones included, as flux resource list -q QUEUE -s all counts them (the anonymous queue has no queue label).",
        &["queue"],
    ),
    Doc::gauge(
        "flux_queue_resource_capacity_gpus",
        "All gpus of a queue, down ones included, as flux resource list -q QUEUE -s all counts them (the anonymous queue has no queue label).",
        &["queue"],
    ),
];

const RESOURCE_STATUS_NODES: Doc = Doc::gauge(
    "flux_resource_status_nodes",
    "Nodes by state as flux resource status counts them (avail includes offline nodes that are not drained).",
    &["state"],
);
