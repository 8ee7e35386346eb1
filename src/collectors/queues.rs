//! Queues: polls `job-manager.queue-list`, then `job-manager.queue-status`
//! for each queue, every poll interval, so that queues added or removed by
//! `flux config reload` appear and disappear at the next poll.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Context, PollSlot, ROUND_TIMEOUT};
use crate::flux::{Error, Rpc, Timer};
use crate::model::queues::{self, QueueStatus};

pub const NAME: &str = "queues";

pub struct QueuesCollector {
    _inner: Rc<Inner>,
}

struct Inner {
    ctx: Rc<Context>,
    poll: RefCell<Option<Timer>>,
    round: RefCell<Option<Round>>,
}

struct Round {
    started: Instant,
    rpcs: Vec<Rpc>,
    /// One slot per queue asked about, filled as answers arrive.
    answers: Vec<Option<Result<QueueStatus, String>>>,
}

impl QueuesCollector {
    pub fn start(ctx: Rc<Context>, poll_interval: Duration) -> Result<QueuesCollector, Error> {
        let inner = Rc::new(Inner {
            ctx,
            poll: RefCell::new(None),
            round: RefCell::new(None),
        });
        let poll = super::poll_every(&inner.ctx, &inner, poll_interval, start_round)?;
        *inner.poll.borrow_mut() = Some(poll);
        Ok(QueuesCollector { _inner: inner })
    }
}

fn fail(inner: &Rc<Inner>, message: &str) {
    inner.round.borrow_mut().take();
    inner.ctx.failed(NAME, message, |state| state.queues = None);
}

fn start_round(inner: &Rc<Inner>) {
    match super::poll_slot(inner.round.borrow().as_ref().map(|r| r.started)) {
        PollSlot::Busy => return,
        PollSlot::Expired => fail(
            inner,
            &format!(
                "no answer from job-manager within {}s",
                ROUND_TIMEOUT.as_secs()
            ),
        ),
        PollSlot::Free => {}
    }
    let sent = super::weak_rpc(
        &inner.ctx,
        inner,
        "job-manager.queue-list",
        "{}",
        false,
        on_list,
    );
    match sent {
        Ok(rpc) => {
            *inner.round.borrow_mut() = Some(Round {
                started: Instant::now(),
                rpcs: vec![rpc],
                answers: Vec::new(),
            })
        }
        Err(err) => fail(inner, &err.message),
    }
}

fn on_list(inner: &Rc<Inner>, answer: Result<String, Error>) {
    let names = match answer
        .map_err(|e| e.message)
        .and_then(|payload| queues::parse_list(&payload))
    {
        Ok(names) => names,
        Err(msg) => return fail(inner, &msg),
    };
    // No named queues: the instance has one anonymous queue.
    let asked: Vec<Option<String>> = if names.is_empty() {
        vec![None]
    } else {
        names.into_iter().map(Some).collect()
    };
    if let Some(round) = inner.round.borrow_mut().as_mut() {
        round.answers = vec![None; asked.len()];
    }
    for (slot, name) in asked.into_iter().enumerate() {
        let payload = match &name {
            Some(n) => json!({ "name": n }).to_string(),
            None => "{}".to_string(),
        };
        let weak = Rc::downgrade(inner);
        let sent =
            inner
                .ctx
                .handle
                .rpc("job-manager.queue-status", &payload, false, move |answer| {
                    if let Some(inner) = weak.upgrade() {
                        let status = answer
                            .map_err(|e| e.message)
                            .and_then(|p| queues::parse_status(name.as_deref(), &p));
                        on_status(&inner, slot, status);
                    }
                });
        match sent {
            Ok(rpc) => {
                if let Some(round) = inner.round.borrow_mut().as_mut() {
                    round.rpcs.push(rpc);
                }
            }
            Err(err) => return fail(inner, &err.message),
        }
    }
}

fn on_status(inner: &Rc<Inner>, slot: usize, status: Result<QueueStatus, String>) {
    let complete = {
        let mut round = inner.round.borrow_mut();
        let Some(r) = round.as_mut() else { return };
        if let Some(entry) = r.answers.get_mut(slot) {
            *entry = Some(status);
        }
        r.answers.iter().all(Option::is_some)
    };
    if !complete {
        return;
    }
    let Some(round) = inner.round.borrow_mut().take() else {
        return;
    };
    let outcome: Result<Vec<QueueStatus>, String> = round.answers.into_iter().flatten().collect();
    match outcome {
        Ok(list) => inner
            .ctx
            .succeeded(NAME, round.started, |state| state.queues = Some(list)),
        Err(msg) => inner.ctx.failed(NAME, &msg, |state| state.queues = None),
    }
    drop(round.rpcs);
}
