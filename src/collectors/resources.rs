//! Resources: polls `resource.sched-status` (the scheduler's all / down /
//! allocated sets), `resource.status` (node states) and `config.get` (queue
//! definitions) every poll interval, and exports what `flux resource list`
//! and `flux resource status` would print.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Context, PollSlot, ROUND_TIMEOUT};
use crate::flux::{Error, Rpc, Timer};
use crate::model::resources;

pub const NAME: &str = "resources";
const TOPICS: [&str; 3] = ["resource.sched-status", "resource.status", "config.get"];
/// As `flux resource list` does, when the resource module does not answer.
const SCHED_FALLBACK: &str = "sched.resource-status";

pub struct ResourcesCollector {
    _inner: Rc<Inner>,
}

struct Inner {
    ctx: Rc<Context>,
    poll: RefCell<Option<Timer>>,
    round: RefCell<Option<Round>>,
}

/// One poll: its three RPCs in flight and the answers so far.
struct Round {
    started: Instant,
    rpcs: Vec<Rpc>,
    answers: [Option<Result<String, Error>>; 3],
}

impl ResourcesCollector {
    pub fn start(ctx: Rc<Context>, poll_interval: Duration) -> Result<ResourcesCollector, Error> {
        let inner = Rc::new(Inner {
            ctx,
            poll: RefCell::new(None),
            round: RefCell::new(None),
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
                "no answer from {} within {}s",
                TOPICS.join(", "),
                ROUND_TIMEOUT.as_secs()
            );
            inner.ctx.failed(NAME, &msg, |state| state.resources = None);
        }
        PollSlot::Free => {}
    }
    *inner.round.borrow_mut() = Some(Round {
        started: Instant::now(),
        rpcs: Vec::new(),
        answers: [None, None, None],
    });
    for (slot, topic) in TOPICS.iter().enumerate() {
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
    if slot == 0 && matches!(&answer, Err(e) if e.errno == libc::ENOSYS) {
        if let Ok(rpc) = send(inner, slot, SCHED_FALLBACK) {
            if let Some(round) = inner.round.borrow_mut().as_mut() {
                round.rpcs.push(rpc);
            }
            return;
        }
    }
    let complete = {
        let mut round = inner.round.borrow_mut();
        let Some(r) = round.as_mut() else { return };
        r.answers[slot] = Some(answer);
        r.answers.iter().all(Option::is_some)
    };
    if !complete {
        return;
    }
    // Take the round out before its RPCs are dropped: this call runs inside
    // one of their continuations.
    let Some(round) = inner.round.borrow_mut().take() else {
        return;
    };
    let started = round.started;
    let [Some(sched), Some(status), Some(config)] = round.answers else {
        return;
    };
    let outcome = (|| {
        let (sched, status, config) = (sched?, status?, config?);
        resources::summarize(&sched, &status, &config).map_err(|msg| Error::new(libc::EPROTO, msg))
    })();
    match outcome {
        Ok(summary) => inner
            .ctx
            .succeeded(NAME, started, |state| state.resources = Some(summary)),
        Err(err) => inner
            .ctx
            .failed(NAME, &err.message, |state| state.resources = None),
    }
    drop(round.rpcs);
}
