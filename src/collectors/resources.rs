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

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Context, PollSlot, ROUND_TIMEOUT};
use crate::flux::{Error, Rpc, Timer};
use crate::model::resources;

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
}

/// One poll: its RPCs in flight and the answers so far (the watched three,
/// then sched-status when it is needed).
struct Round {
    started: Instant,
    rpcs: Vec<Rpc>,
    answers: [Option<Result<String, Error>>; 4],
    /// sched-status as computed here, when that was possible.
    derived: Option<resources::SchedStatus>,
}

impl ResourcesCollector {
    pub fn start(ctx: Rc<Context>, poll_interval: Duration) -> Result<ResourcesCollector, Error> {
        let inner = Rc::new(Inner {
            ctx,
            poll: RefCell::new(None),
            round: RefCell::new(None),
            counted_from: RefCell::new(None),
        });
        let poll = super::poll_every(&inner.ctx, &inner, poll_interval, start_round)?;
        *inner.poll.borrow_mut() = Some(poll);
        Ok(ResourcesCollector { _inner: inner })
    }
}

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
    *inner.round.borrow_mut() = Some(Round {
        started: Instant::now(),
        rpcs: Vec::new(),
        answers: [None, None, None, None],
        derived: None,
    });
    for (slot, topic) in WATCHED.iter().enumerate() {
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
    if !watched_in {
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
    let derived = round.derived;
    let watched = [&allocated, &status, &config].map(watch_key);
    let unchanged = inner.counted_from.borrow().as_ref() == Some(&watched);
    let outcome = (|| {
        let missing = || Error::new(libc::EPROTO, "no answer");
        let status = status.ok_or_else(missing)??;
        let config = config.ok_or_else(missing)??;
        let summary = match (sched, derived) {
            (Some(sched), _) => resources::summarize(&sched?, &status, &config),
            (None, Some(derived)) => resources::summarize_from(derived, &status, &config),
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
        if let [Some(Ok(allocated)), Some(Ok(status))] = &r.answers[..2] {
            if let Ok(Some(derived)) = resources::SchedStatus::derive(status, allocated) {
                r.derived = Some(derived);
                return true;
            }
        }
    }
    match send(inner, SCHED_SLOT, SCHED_STATUS) {
        Ok(rpc) => {
            if let Some(round) = inner.round.borrow_mut().as_mut() {
                round.rpcs.push(rpc);
            }
            false
        }
        Err(err) => {
            if let Some(round) = inner.round.borrow_mut().as_mut() {
                round.answers[SCHED_SLOT] = Some(Err(err));
            }
            true
        }
    }
}
