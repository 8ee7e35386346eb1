//! Per-node series (opt-in, like node_exporter's per-device ones): each
//! node's states as `flux resource status -s all` lists them, its cores and
//! GPUs, total and allocated, and why it is drained.
//!
//! Each poll asks `resource.status` (every node, its host and its states;
//! the answer the resources collector shares, asked of the resource module
//! only after a change: see [`crate::reactor::resource_status`]),
//! `job-manager.stats-get` (the ranks in housekeeping, as `flux resource
//! status` reads them) and `config.get` (whether housekeeping is
//! configured). The allocated set is the journal's, which the jobflow
//! collector follows, where that is exact; otherwise (housekeeping
//! configured, or the journal not read to the present) the job manager's
//! `job-manager.resource-status` is asked for it as well.
//!
//! The series grow with the cluster, so their text is made on the HTTP
//! thread when a scrape first asks for it, and only after a change.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use serde_json::value::RawValue;

use super::{About, Collector, Context, Render, Settings, Spec};
use crate::exposition::RenderLater;
use crate::model::allocations;
use crate::model::error::ParseError;
use crate::model::idset::IdSet;
use crate::model::nodes::{self, NodesView};
use crate::model::resources::ResourceSet;
use crate::reactor::allocated::AllocatedReader;
use crate::reactor::poll::{Opened, PollLoop, ROUND_TIMEOUT};
use crate::reactor::resource_status::NODE_EVENT_NAMES;
use crate::render::{Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::Error;

pub const NAME: &str = "nodes";
pub const SECTION: Section<Arc<NodesView>> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "One series per node: its states, its cores and GPUs (total and allocated), and why it is drained.",
    about: About {
        name: NAME,
        on_by_default: false,
        options: &[],
        needs: &[],
    },
    start,
    restart_needed: super::restart_on_new_interval,
    render: Render::Later(take),
    reads: &[],
    families: FAMILIES,
};

const STATUS: usize = 0;
const STATS: usize = 1;
const CONFIG: usize = 2;
const ALLOCATED: usize = 3;
const TOPICS: [&str; 4] = [
    "resource.status",
    "job-manager.stats-get",
    "config.get",
    "job-manager.resource-status",
];

type Answers = [Option<Result<String, Error>>; 4];

struct Inner {
    ctx: Rc<Context>,
    poll: PollLoop<Answers>,
    allocated: AllocatedReader,
    /// Host names by rank, kept while `resource.status` names the same.
    hosts: RefCell<Vec<Arc<str>>>,
    /// What the exported view was last made from. At 16,384 nodes making
    /// it takes several ms, and on most polls nothing it depends on has
    /// changed.
    made_from: RefCell<Option<Inputs>>,
}

/// What a view is made from: the same inputs make the same view.
#[derive(PartialEq)]
struct Inputs {
    status: String,
    housekeeping: IdSet,
    allocated: AllocatedFrom,
}

#[derive(PartialEq)]
enum AllocatedFrom {
    /// The journal's set, at this generation.
    Journal(u64),
    /// A `job-manager.resource-status` answer.
    Asked(String),
}

impl Collector for Inner {}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let handle = ctx.handle;
    let inner = Rc::new(Inner {
        allocated: ctx.allocated_reader(),
        ctx,
        poll: PollLoop::new(),
        hosts: RefCell::new(Vec::new()),
        made_from: RefCell::new(None),
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
    match inner.poll.open([None, None, None, None]) {
        Opened::Busy => return,
        Opened::AfterTimeout => {
            let msg = format!(
                "no answer from {} within {}s",
                TOPICS.join(", "),
                ROUND_TIMEOUT.as_secs()
            );
            // The section is cleared: the next answers make a view anew.
            inner.made_from.replace(None);
            inner.ctx.failed(NAME, &msg, |state| state.clear(SECTION));
        }
        Opened::Fresh => {}
    }
    for slot in [STATUS, STATS, CONFIG] {
        if ask(inner, slot) {
            return finish(inner);
        }
    }
}

/// Asks for `slot`; true when the round can finish now (a send failed,
/// and its error is the slot's answer).
fn ask(inner: &Rc<Inner>, slot: usize) -> bool {
    let weak = Rc::downgrade(inner);
    let on_response = move |answer| {
        if let Some(inner) = weak.upgrade() {
            on_answer(&inner, slot, answer);
        }
    };
    // resource.status through the answer the resources collector shares.
    match inner
        .ctx
        .ask_for_round(&inner.poll, TOPICS[slot], on_response)
    {
        Ok(()) => false,
        Err(err) => inner.poll.with(|a| a[slot] = Some(Err(err))).is_some(),
    }
}

fn on_answer(inner: &Rc<Inner>, slot: usize, answer: Result<String, Error>) {
    let ready = inner.poll.with(|a| {
        a[slot] = Some(answer);
        a[STATUS].is_some() && a[STATS].is_some() && a[CONFIG].is_some()
    });
    if ready != Some(true) {
        return;
    }
    // With the three in: the journal's allocated set, or the job manager's.
    let journal_exact = inner.poll.with(|a| {
        a[ALLOCATED].is_some() || {
            let housekeeping = match &a[CONFIG] {
                Some(Ok(config)) => serde_json::from_str(config)
                    .map_or(true, |c| allocations::housekeeping_configured(&c)),
                _ => true,
            };
            !housekeeping && inner.allocated.borrow().current().is_some()
        }
    });
    if journal_exact == Some(false) && ask(inner, ALLOCATED) {
        return finish(inner);
    }
    if journal_exact == Some(true) {
        finish(inner);
    }
}

fn finish(inner: &Rc<Inner>) {
    let Some(round) = inner.poll.close() else {
        return;
    };
    let started = round.started;
    let answers = round.into_data();
    let events = inner.ctx.resource_node_events_by_rank();
    match view(inner, &answers) {
        // Nothing it is made from changed: the section stays as it is,
        // unless the resource journal named nodes since.
        Ok(None) => inner.ctx.succeeded(NAME, started, |state| {
            if let Some(kept) = state.get(SECTION).filter(|v| v.events != events) {
                let mut view = (**kept).clone();
                view.events = events;
                state.set(SECTION, Arc::new(view));
            }
        }),
        Ok(Some(mut view)) => inner.ctx.succeeded(NAME, started, |state| {
            view.events = events;
            // An unchanged view keeps its rendered text.
            if state.get(SECTION).map(|v| &**v) != Some(&view) {
                state.set(SECTION, Arc::new(view));
            }
        }),
        Err(msg) => {
            // The section is cleared: the next answers make a view anew.
            inner.made_from.replace(None);
            inner.ctx.failed(NAME, &msg, |state| state.clear(SECTION))
        }
    }
}

/// The view the answers make, or None where they are what the exported
/// view was made from.
fn view(inner: &Inner, answers: &Answers) -> Result<Option<NodesView>, ParseError> {
    let answer = |slot: usize| -> Result<&str, ParseError> {
        match &answers[slot] {
            Some(Ok(payload)) => Ok(payload),
            Some(Err(e)) => Err(ParseError::invalid(format!(
                "{}: {}",
                TOPICS[slot], e.message
            ))),
            None => Err(ParseError::invalid(format!("{}: no answer", TOPICS[slot]))),
        }
    };
    let status = answer(STATUS)?;
    // No housekeeping answer (an older job manager): none in housekeeping,
    // as flux resource status takes it.
    let housekeeping = answer(STATS)
        .ok()
        .and_then(|stats| housekeeping(stats).ok())
        .unwrap_or_default();
    let allocations = inner.allocated.borrow();
    let allocated_from = if answers[ALLOCATED].is_some() {
        AllocatedFrom::Asked(answer(ALLOCATED)?.to_string())
    } else {
        let (generation, _) = allocations.current().ok_or_else(|| {
            ParseError::invalid("the job-manager journal is no longer read to the present")
        })?;
        AllocatedFrom::Journal(generation)
    };
    let inputs = Inputs {
        status: status.to_string(),
        housekeeping,
        allocated: allocated_from,
    };
    if inner.made_from.borrow().as_ref() == Some(&inputs) {
        return Ok(None);
    }
    let mut hosts = inner.hosts.borrow_mut();
    let view = match &inputs.allocated {
        AllocatedFrom::Asked(payload) => {
            let allocated = allocated_of(payload)?;
            nodes::rows(status, &allocated, &inputs.housekeeping, &mut hosts)?
        }
        AllocatedFrom::Journal(_) => {
            let (_, allocated) = allocations.current().ok_or_else(|| {
                ParseError::invalid("the job-manager journal is no longer read to the present")
            })?;
            nodes::rows(status, allocated, &inputs.housekeeping, &mut hosts)?
        }
    };
    inner.made_from.replace(Some(inputs));
    Ok(Some(view))
}

fn housekeeping(stats: &str) -> Result<IdSet, ParseError> {
    let v: serde_json::Value =
        serde_json::from_str(stats).map_err(|e| ParseError::invalid(e.to_string()))?;
    match v["housekeeping"]["running"].as_object() {
        Some(running) => super::internals::housekeeping_ranks(running),
        None => Ok(IdSet::new()),
    }
}

/// The allocated set of a `job-manager.resource-status` answer.
fn allocated_of(payload: &str) -> Result<ResourceSet, ParseError> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        allocated: Option<&'a RawValue>,
    }
    let answer: Answer = serde_json::from_str(payload)
        .map_err(|e| ParseError::malformed("job-manager.resource-status", e))?;
    ResourceSet::from_rv1_json(answer.allocated)
        .map_err(|e| e.within("job-manager.resource-status"))
}

fn take(state: &State) -> Option<RenderLater> {
    let view = Arc::clone(state.get(SECTION)?);
    Some(Box::new(move |out: &mut Rendered| render(&view, out)))
}

pub fn render(view: &NodesView, out: &mut Rendered) {
    let mut rank = String::new();
    let mut f = Family::of(out, &NODE_STATE);
    for node in &view.nodes {
        rank.clear();
        let _ = write!(rank, "{}", node.rank);
        for state in node.states() {
            f.sample(
                &[("node", &node.host), ("rank", &rank), ("state", state)],
                1.0,
            );
        }
    }
    type Pick = fn(&nodes::NodeRow) -> u64;
    let families: [(&Doc, Pick); 4] = [
        (&NODE_CORES, |n| n.cores),
        (&NODE_GPUS, |n| n.gpus),
        (&NODE_ALLOCATED_CORES, |n| n.allocated_cores),
        (&NODE_ALLOCATED_GPUS, |n| n.allocated_gpus),
    ];
    for (doc, pick) in families {
        let mut f = Family::of(out, doc);
        for node in &view.nodes {
            rank.clear();
            let _ = write!(rank, "{}", node.rank);
            f.sample(&[("node", &node.host), ("rank", &rank)], pick(node) as f64);
        }
    }
    let mut f = Family::of(out, &NODE_DRAIN_INFO);
    for (r, reason) in &view.drains {
        rank.clear();
        let _ = write!(rank, "{r}");
        let host = view.host(*r).unwrap_or("");
        f.sample(&[("node", host), ("rank", &rank), ("reason", reason)], 1.0);
    }
    let mut f = Family::of(out, &NODE_DRAIN_TIMESTAMP);
    for (r, since) in &view.drained_since {
        rank.clear();
        let _ = write!(rank, "{r}");
        let host = view.host(*r).unwrap_or("");
        f.sample(&[("node", host), ("rank", &rank)], *since);
    }
    let mut f = Family::of(out, &NODE_EVENTS_TOTAL);
    for (r, counts) in &view.events {
        rank.clear();
        let _ = write!(rank, "{r}");
        let host = view.host(*r).unwrap_or("");
        for (event, n) in NODE_EVENT_NAMES.iter().zip(counts) {
            f.sample(
                &[("node", host), ("rank", &rank), ("event", event)],
                *n as f64,
            );
        }
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    NODE_STATE,
    NODE_DRAIN_INFO,
    NODE_DRAIN_TIMESTAMP,
    NODE_CORES,
    NODE_GPUS,
    NODE_ALLOCATED_CORES,
    NODE_ALLOCATED_GPUS,
    NODE_EVENTS_TOTAL,
];

const NODE_EVENTS_TOTAL: Doc = Doc::counter(
    "flux_node_events_total",
    "flux_resource_node_events_total for one node, for each node some event named since the resource module began its journal: how often it was drained, undrained, lost and back, as flux resource eventlog lists them.",
    &["node", "rank", "event"],
);
const NODE_CORES: Doc = Doc::gauge(
    "flux_node_cores",
    "Cores of a node, as flux resource list -s all counts them.",
    &["node", "rank"],
);

const NODE_GPUS: Doc = Doc::gauge(
    "flux_node_gpus",
    "GPUs of a node, as flux resource list -s all counts them.",
    &["node", "rank"],
);

const NODE_ALLOCATED_CORES: Doc = Doc::gauge(
    "flux_node_allocated_cores",
    "Cores of a node allocated to jobs.",
    &["node", "rank"],
);

const NODE_ALLOCATED_GPUS: Doc = Doc::gauge(
    "flux_node_allocated_gpus",
    "GPUs of a node allocated to jobs.",
    &["node", "rank"],
);

const NODE_STATE: Doc = Doc::gauge(
    "flux_node_state",
    "1 for each state a node is in, with the state names of flux resource status -s all (avail, exclude, allocated, torpid, housekeeping, draining, drained), and offline where the node's broker is down.",
    &["node", "rank", "state"],
);

const NODE_DRAIN_TIMESTAMP: Doc = Doc::gauge(
    "flux_node_drain_timestamp_seconds",
    "When a drained or draining node was drained, in seconds since the epoch, as flux resource drain shows it: time() minus it is how long the node has been drained.",
    &["node", "rank"],
);

const NODE_DRAIN_INFO: Doc = Doc::info(
    "flux_node_drain_info",
    "A drained or draining node and the reason given to flux resource drain; always 1.",
    &["node", "rank", "reason"],
)
.private();
