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
//! `resource.status` and `config.get`. When none changed, nothing is
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
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Context, PollSlot, ROUND_TIMEOUT};
use crate::flux::{Error, Rpc, Timer};
use crate::model::{allocations, resources};

pub const NAME: &str = "resources";
/// The cheap sources, asked every poll; what sched-status is computed from.
const WATCHED: [&str; 3] = [
    "job-manager.resource-status",
    "resource.status",
    "config.get",
];
const SCHED_STATUS: &str = "resource.sched-status";
/// As `flux resource list` does, when the resource module does not answer.
const SCHED_FALLBACK: &str = "sched.resource-status";
const ALLOCATED_SLOT: usize = 0;
const CONFIG_SLOT: usize = 2;
const SCHED_SLOT: usize = 3;

pub struct ResourcesCollector {
    _inner: Rc<Inner>,
}

struct Inner {
    ctx: Rc<Context>,
    poll: RefCell<Option<Timer>>,
    round: RefCell<Option<Round>>,
    /// The watched answers the exported counts were computed from.
    counted_from: RefCell<Option<[String; 3]>>,
    /// All and down as derived from the last `resource.status` answer, which
    /// changes far less often than allocations do.
    status_sets: RefCell<Option<(String, resources::StatusSets)>>,
}

/// One poll: its RPCs in flight and the answers so far (the watched three,
/// then sched-status when it is needed).
struct Round {
    started: Instant,
    rpcs: Vec<Rpc>,
    answers: [Option<Result<String, Error>>; 4],
    /// The summary as computed here, when that was possible.
    computed: Option<Result<resources::ResourceSummary, String>>,
    /// The allocated set is the journal's, not the job manager's answer.
    from_journal: bool,
}

impl ResourcesCollector {
    pub fn start(ctx: Rc<Context>, poll_interval: Duration) -> Result<ResourcesCollector, Error> {
        let inner = Rc::new(Inner {
            ctx,
            poll: RefCell::new(None),
            round: RefCell::new(None),
            counted_from: RefCell::new(None),
            status_sets: RefCell::new(None),
        });
        let poll = super::poll_every(&inner.ctx, &inner, poll_interval, start_round)?;
        *inner.poll.borrow_mut() = Some(poll);
        let weak = Rc::downgrade(&inner);
        inner.ctx.before_publish(move || {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            recount_allocated(&inner);
            true
        });
        Ok(ResourcesCollector { _inner: inner })
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
    let Some([allocated_key, status, config]) = counted_from.as_mut() else {
        return;
    };
    let allocations = inner.ctx.allocations.borrow();
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
    let mut cache = inner.status_sets.borrow_mut();
    if cache.as_ref().is_none_or(|(from, _)| from != status) {
        *cache = match resources::StatusSets::derive(status) {
            Ok(Some(sets)) => Some((status.clone(), sets)),
            _ => None,
        };
    }
    let Some((_, sets)) = cache.as_ref() else {
        return;
    };
    let view = resources::SchedView {
        all: &sets.all,
        down: &sets.down,
        allocated,
    };
    if let Ok(summary) = resources::summarize_view(view, status, config) {
        *allocated_key = key;
        inner.ctx.update_in_publish(|state| {
            state.resources = Some(summary);
            if let Some(c) = state.collector_mut(NAME) {
                c.source = Some(JOURNAL_SOURCE);
            }
        });
    }
}

/// The source the collector reports when the allocated set is the journal's.
const JOURNAL_SOURCE: &str = "job-manager.events-journal";

/// How a watched allocated answer names the journal's set: by generation.
const JOURNAL_KEY: &str = "journal generation ";

fn send(inner: &Rc<Inner>, slot: usize, topic: &str) -> Result<Rpc, Error> {
    let weak = Rc::downgrade(inner);
    inner.ctx.handle.rpc(topic, "{}", false, move |response| {
        if let Some(inner) = weak.upgrade() {
            on_answer(&inner, slot, response);
        }
    })
}

fn start_round(inner: &Rc<Inner>) {
    match super::poll_slot(inner.round.borrow().as_ref().map(|r| r.started)) {
        PollSlot::Busy => return,
        PollSlot::Expired => {
            inner.round.borrow_mut().take();
            let msg = format!(
                "no answer from {}, {SCHED_STATUS} within {}s",
                WATCHED.join(", "),
                ROUND_TIMEOUT.as_secs()
            );
            inner.ctx.failed(NAME, &msg, |state| state.resources = None);
        }
        PollSlot::Free => {}
    }
    let from_journal = inner.ctx.allocations.borrow().current().is_some();
    *inner.round.borrow_mut() = Some(Round {
        started: Instant::now(),
        rpcs: Vec::new(),
        answers: [None, None, None, None],
        computed: None,
        from_journal,
    });
    let first = if from_journal { ALLOCATED_SLOT + 1 } else { 0 };
    for (slot, topic) in WATCHED.iter().enumerate().skip(first) {
        match send(inner, slot, topic) {
            Ok(rpc) => {
                if let Some(round) = inner.round.borrow_mut().as_mut() {
                    round.rpcs.push(rpc);
                }
            }
            Err(err) => {
                inner.round.borrow_mut().take();
                inner
                    .ctx
                    .failed(NAME, &err.message, |state| state.resources = None);
                return;
            }
        }
    }
}

fn on_answer(inner: &Rc<Inner>, slot: usize, answer: Result<String, Error>) {
    if slot == SCHED_SLOT && matches!(&answer, Err(e) if e.errno == libc::ENOSYS) {
        if let Ok(rpc) = send(inner, slot, SCHED_FALLBACK) {
            if let Some(round) = inner.round.borrow_mut().as_mut() {
                round.rpcs.push(rpc);
            }
            return;
        }
    }
    let watched_in = {
        let mut round = inner.round.borrow_mut();
        let Some(r) = round.as_mut() else { return };
        r.answers[slot] = Some(answer);
        r.answers[..SCHED_SLOT].iter().all(Option::is_some)
    };
    if !(watched_in || slot != SCHED_SLOT && take_allocated_from_journal(inner)) {
        return;
    }
    if slot != SCHED_SLOT && !ask_sched_status_if_changed(inner) {
        return;
    }
    // Take the round out before its RPCs are dropped: this call runs inside
    // one of their continuations.
    let Some(round) = inner.round.borrow_mut().take() else {
        return;
    };
    let started = round.started;
    let [allocated, status, config, sched] = round.answers;
    let computed = round.computed;
    let source = match (&sched, round.from_journal) {
        (Some(_), _) => SCHED_STATUS,
        (None, true) => JOURNAL_SOURCE,
        (None, false) => WATCHED[ALLOCATED_SLOT],
    };
    let watched = [&allocated, &status, &config].map(watch_key);
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
            .map(Some)
            .map_err(|msg| Error::new(libc::EPROTO, msg))
    })();
    match outcome {
        Ok(summary) => {
            *inner.counted_from.borrow_mut() = Some(watched);
            inner.ctx.succeeded(NAME, started, |state| {
                if let Some(summary) = summary {
                    state.resources = Some(summary);
                    if let Some(c) = state.collector_mut(NAME) {
                        c.source = Some(source);
                    }
                }
            })
        }
        Err(err) => {
            inner.counted_from.borrow_mut().take();
            inner
                .ctx
                .failed(NAME, &err.message, |state| state.resources = None)
        }
    }
    drop(round.rpcs);
}

/// In a round that reads the allocated set from the journal, once
/// `resource.status` and `config.get` are in: fills the allocated slot with
/// the journal's generation, or, where the journal cannot be trusted (it
/// stopped being current, or the config turns on housekeeping), asks the
/// job manager after all. Returns true when the watched answers are in.
fn take_allocated_from_journal(inner: &Rc<Inner>) -> bool {
    {
        let mut round = inner.round.borrow_mut();
        let Some(r) = round.as_mut() else {
            return false;
        };
        if !r.from_journal
            || r.answers[ALLOCATED_SLOT + 1..SCHED_SLOT]
                .iter()
                .any(Option::is_none)
        {
            return false;
        }
        let housekeeping = match &r.answers[CONFIG_SLOT] {
            Some(Ok(config)) => serde_json::from_str(config)
                .map_or(true, |c| allocations::housekeeping_configured(&c)),
            _ => true,
        };
        r.from_journal = false;
        if !housekeeping {
            if let Some((generation, _)) = inner.ctx.allocations.borrow().current() {
                r.from_journal = true;
                r.answers[ALLOCATED_SLOT] = Some(Ok(format!("{JOURNAL_KEY}{generation}")));
                return true;
            }
        }
    }
    ask_in_round(inner, ALLOCATED_SLOT, WATCHED[ALLOCATED_SLOT])
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
    {
        let mut round = inner.round.borrow_mut();
        let Some(r) = round.as_mut() else {
            return false;
        };
        let now: Vec<String> = r.answers[..SCHED_SLOT].iter().map(watch_key).collect();
        if inner.counted_from.borrow().as_ref().map(|c| c.as_slice()) == Some(now.as_slice()) {
            return true;
        }
        let allocations = inner.ctx.allocations.borrow();
        let journal = allocations.current().filter(|_| r.from_journal);
        if let Some((generation, _)) = journal {
            // The set may have moved on since the slot was filled.
            r.answers[ALLOCATED_SLOT] = Some(Ok(format!("{JOURNAL_KEY}{generation}")));
        }
        let computed = match (&r.answers[..SCHED_SLOT], journal) {
            ([Some(Ok(_)), Some(Ok(status)), Some(Ok(config))], Some((_, allocated))) => {
                let mut cache = inner.status_sets.borrow_mut();
                if cache.as_ref().is_none_or(|(from, _)| from != status) {
                    *cache = match resources::StatusSets::derive(status) {
                        Ok(Some(sets)) => Some((status.clone(), sets)),
                        _ => None,
                    };
                }
                cache.as_ref().map(|(_, sets)| {
                    let view = resources::SchedView {
                        all: &sets.all,
                        down: &sets.down,
                        allocated,
                    };
                    resources::summarize_view(view, status, config)
                })
            }
            ([Some(Ok(allocated)), Some(Ok(status)), Some(Ok(config))], None)
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
            return true;
        }
    }
    ask_in_round(inner, SCHED_SLOT, SCHED_STATUS)
}

/// Asks `topic` for `slot` of the current round. Returns true when the
/// request could not be sent (its error is then the slot's answer, and the
/// round can finish now), false while the answer is awaited.
fn ask_in_round(inner: &Rc<Inner>, slot: usize, topic: &str) -> bool {
    let sent = send(inner, slot, topic);
    let mut round = inner.round.borrow_mut();
    let Some(round) = round.as_mut() else {
        return false;
    };
    match sent {
        Ok(rpc) => {
            round.rpcs.push(rpc);
            false
        }
        Err(err) => {
            round.answers[slot] = Some(Err(err));
            true
        }
    }
}
