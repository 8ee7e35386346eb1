//! The broker and the instance: attributes read once at load, online brokers
//! (`groups.get broker.online`) and overlay health (`overlay.health`) polled
//! every poll interval, and the broker process's own resource use from the
//! prometheus crate's process collector (the module runs inside the broker).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricType;

use super::{Context, PollSlot, ROUND_TIMEOUT};
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
}

struct Round {
    started: Instant,
    rpcs: Vec<Rpc>,
    online: Option<Result<u64, String>>,
    overlay: Option<Result<String, String>>,
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
        });
        let poll = super::poll_every(&inner.ctx, &inner, poll_interval, start_round)?;
        *inner.poll.borrow_mut() = Some(poll);
        Ok(BrokerCollector { _inner: inner })
    }
}

type OnAnswer = fn(&Rc<Inner>, Result<String, Error>);

fn start_round(inner: &Rc<Inner>) {
    match super::poll_slot(inner.round.borrow().as_ref().map(|r| r.started)) {
        PollSlot::Busy => return,
        PollSlot::Expired => {
            inner.round.borrow_mut().take();
            inner.ctx.failed(
                NAME,
                &format!(
                    "no answer from groups.get or overlay.health within {}s",
                    ROUND_TIMEOUT.as_secs()
                ),
                |_| {},
            );
        }
        PollSlot::Free => {}
    }
    *inner.round.borrow_mut() = Some(Round {
        started: Instant::now(),
        rpcs: Vec::new(),
        online: None,
        overlay: None,
    });
    let requests: [(&str, &str, OnAnswer); 2] = [
        (
            "groups.get",
            r#"{"name": "broker.online"}"#,
            |inner, answer| {
                let parsed = answer
                    .map_err(|e| e.message)
                    .and_then(|p| broker::parse_group_count(&p));
                if let Some(round) = inner.round.borrow_mut().as_mut() {
                    round.online = Some(parsed);
                }
                finish(inner);
            },
        ),
        ("overlay.health", "{}", |inner, answer| {
            let parsed = answer
                .map_err(|e| e.message)
                .and_then(|p| broker::parse_overlay_status(&p));
            if let Some(round) = inner.round.borrow_mut().as_mut() {
                round.overlay = Some(parsed);
            }
            finish(inner);
        }),
    ];
    for (topic, payload, on_answer) in requests {
        let weak = Rc::downgrade(inner);
        match inner.ctx.handle.rpc(topic, payload, false, move |answer| {
            if let Some(inner) = weak.upgrade() {
                on_answer(&inner, answer);
            }
        }) {
            Ok(rpc) => {
                if let Some(round) = inner.round.borrow_mut().as_mut() {
                    round.rpcs.push(rpc);
                }
            }
            Err(err) => {
                inner.round.borrow_mut().take();
                inner.ctx.failed(NAME, &err.message, |_| {});
                return;
            }
        }
    }
}

fn process_samples(process: &ProcessCollector) -> Vec<ProcessSample> {
    let mut out = Vec::new();
    for family in process.collect() {
        let counter = family.get_field_type() == MetricType::COUNTER;
        for metric in family.get_metric() {
            let value = if counter {
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

fn finish(inner: &Rc<Inner>) {
    let complete = inner
        .round
        .borrow()
        .as_ref()
        .is_some_and(|r| r.online.is_some() && r.overlay.is_some());
    if !complete {
        return;
    }
    let Some(round) = inner.round.borrow_mut().take() else {
        return;
    };
    let (Some(online), Some(overlay)) = (round.online, round.overlay) else {
        return;
    };
    let mut info = inner.info.clone();
    let mut errors = Vec::new();
    match online {
        Ok(n) => info.online = Some(n),
        Err(e) => errors.push(e),
    }
    match overlay {
        Ok(s) => info.overlay_status = Some(s),
        Err(e) => errors.push(e),
    }
    let process = process_samples(&inner.process);
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
    drop(round.rpcs);
}
