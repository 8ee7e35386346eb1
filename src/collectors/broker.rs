//! The broker and the instance: attributes read once at load, online brokers
//! from a streaming `groups.get broker.online` (the broker answers again on
//! every change), overlay health (`overlay.health`) polled every poll
//! interval, and the broker process's own resource use from the prometheus
//! crate's process collector (the module runs inside the broker).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricType;

use super::{Backoff, Context, PollSlot, ROUND_TIMEOUT};
use crate::flux::{Error, Rpc, Timer};
use crate::model::broker::{self, InstanceInfo, ProcessSample};

pub const NAME: &str = "broker";

pub struct BrokerCollector {
    _inner: Rc<Inner>,
}

struct Inner {
    ctx: Rc<Context>,
    info: InstanceInfo,
    process: ProcessCollector,
    poll: RefCell<Option<Timer>>,
    round: RefCell<Option<Round>>,
    online_stream: RefCell<Option<Rpc>>,
    /// The last count the stream gave, or why there is none.
    online: RefCell<Online>,
    /// A poll that finished before the stream's first answer: reported
    /// when that answer comes, so the first report is never a false alarm.
    report_pending: Cell<Option<Instant>>,
    resubscribe: RefCell<Option<Timer>>,
    backoff: Cell<Backoff>,
}

struct Round {
    started: Instant,
    rpc: Option<Rpc>,
}

enum Online {
    NotYet,
    Count(u64),
    Lost(String),
}

impl BrokerCollector {
    pub fn start(ctx: Rc<Context>, poll_interval: Duration) -> Result<BrokerCollector, Error> {
        let h = ctx.handle;
        let info = InstanceInfo {
            version: h.attr("version").unwrap_or_default(),
            level: h.attr("instance-level").unwrap_or_else(|| "0".into()),
            jobid: h.attr("jobid"),
            size: h.size()?,
            start_time: h.attr("broker.starttime").and_then(|s| s.parse().ok()),
            online: None,
            overlay_status: None,
        };
        let inner = Rc::new(Inner {
            ctx,
            info,
            process: ProcessCollector::for_self(),
            poll: RefCell::new(None),
            round: RefCell::new(None),
            online_stream: RefCell::new(None),
            online: RefCell::new(Online::NotYet),
            report_pending: Cell::new(None),
            resubscribe: RefCell::new(None),
            backoff: Cell::new(Backoff::new()),
        });
        *inner.resubscribe.borrow_mut() = Some(super::weak_timer(
            &inner.ctx,
            &inner,
            Backoff::FIRST,
            0.0,
            subscribe_online,
        )?);
        subscribe_online(&inner);
        let poll = super::poll_every(&inner.ctx, &inner, poll_interval, start_round)?;
        *inner.poll.borrow_mut() = Some(poll);
        Ok(BrokerCollector { _inner: inner })
    }
}

fn subscribe_online(inner: &Rc<Inner>) {
    inner.online_stream.borrow_mut().take();
    let sent = super::weak_rpc(
        &inner.ctx,
        inner,
        "groups.get",
        r#"{"name": "broker.online"}"#,
        true,
        on_online,
    );
    match sent {
        Ok(rpc) => *inner.online_stream.borrow_mut() = Some(rpc),
        Err(err) => online_lost(inner, err.message),
    }
}

fn on_online(inner: &Rc<Inner>, answer: Result<String, Error>) {
    let count = match answer {
        Ok(payload) => broker::parse_group_count(&payload),
        Err(err) => return online_lost(inner, format!("groups.get: {}", err.message)),
    };
    let n = match count {
        Ok(n) => n,
        Err(msg) => return online_lost(inner, msg),
    };
    inner.backoff.set(Backoff::new());
    *inner.online.borrow_mut() = Online::Count(n);
    let set_online = |state: &mut crate::state::State| {
        if let Some(instance) = state.instance.as_mut() {
            instance.online = Some(n);
        }
    };
    // A change between polls is exported at once, not at the next poll.
    match inner.report_pending.take() {
        Some(started) => inner.ctx.succeeded(NAME, started, set_online),
        None => inner.ctx.update(set_online),
    }
}

/// The stream ended: the count is unknown until a new stream answers.
fn online_lost(inner: &Rc<Inner>, message: String) {
    inner.online_stream.borrow_mut().take();
    if inner.report_pending.take().is_some() {
        inner.ctx.failed(NAME, &message, |_| {});
    }
    *inner.online.borrow_mut() = Online::Lost(message);
    super::retry_after_backoff(&inner.backoff, &inner.resubscribe);
}

fn start_round(inner: &Rc<Inner>) {
    match super::poll_slot(inner.round.borrow().as_ref().map(|r| r.started)) {
        PollSlot::Busy => return,
        PollSlot::Expired => {
            inner.round.borrow_mut().take();
            let message = format!(
                "no answer from overlay.health within {}s",
                ROUND_TIMEOUT.as_secs()
            );
            inner.ctx.failed(NAME, &message, |_| {});
        }
        PollSlot::Free => {}
    }
    *inner.round.borrow_mut() = Some(Round {
        started: Instant::now(),
        rpc: None,
    });
    let sent = super::weak_rpc(&inner.ctx, inner, "overlay.health", "{}", false, finish);
    match sent {
        Ok(rpc) => {
            if let Some(round) = inner.round.borrow_mut().as_mut() {
                round.rpc = Some(rpc);
            }
        }
        Err(err) => {
            inner.round.borrow_mut().take();
            inner.ctx.failed(NAME, &err.message, |_| {});
        }
    }
}

fn process_samples(process: &ProcessCollector) -> Vec<ProcessSample> {
    let mut out = Vec::new();
    for family in process.collect() {
        let counter = family.get_field_type() == MetricType::COUNTER;
        for metric in family.get_metric() {
            let value = if family.name() == "process_cpu_seconds_total" {
                crate::flux::process_cpu_seconds()
                    .unwrap_or_else(|| metric.get_counter().get_value())
            } else if counter {
                metric.get_counter().get_value()
            } else {
                metric.get_gauge().get_value()
            };
            out.push(ProcessSample {
                name: format!("flux_broker_{}", family.name()),
                help: format!("{} (the broker process)", family.help()),
                counter,
                value,
            });
        }
    }
    out
}

fn finish(inner: &Rc<Inner>, answer: Result<String, Error>) {
    // Taken out before its RPC is dropped: this runs in its continuation.
    let Some(round) = inner.round.borrow_mut().take() else {
        return;
    };
    let overlay = answer
        .map_err(|e| e.message)
        .and_then(|p| broker::parse_overlay_status(&p));
    let mut info = inner.info.clone();
    let mut errors = Vec::new();
    match overlay {
        Ok(s) => info.overlay_status = Some(s),
        Err(e) => errors.push(e),
    }
    let process = process_samples(&inner.process);
    match &*inner.online.borrow() {
        Online::Count(n) => info.online = Some(*n),
        Online::Lost(e) => errors.push(e.clone()),
        Online::NotYet if errors.is_empty() => {
            inner.report_pending.set(Some(round.started));
            inner.ctx.update(|state| {
                state.instance = Some(info);
                state.process = process;
            });
            drop(round.rpc);
            return;
        }
        Online::NotYet => {}
    }
    // What was learned is exported even when one source failed; the
    // collector is reported down with the reason.
    if errors.is_empty() {
        inner.ctx.succeeded(NAME, round.started, |state| {
            state.instance = Some(info);
            state.process = process;
        });
    } else {
        inner.ctx.failed(NAME, &errors.join("; "), |state| {
            state.instance = Some(info);
            state.process = process;
        });
    }
    drop(round.rpc);
}
