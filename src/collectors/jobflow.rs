//! Job flow: one streaming `job-manager.events-journal` RPC, whose events
//! feed the counters, histograms and pending-job demand of
//! [`crate::model::jobflow`].
//!
//! The first subscription asks for the active jobs only (`full: false`):
//! what finished before the module loaded is not counted. When the stream
//! ends (job-manager reloaded, say) the collector subscribes again with
//! backoff, asking for inactive jobs too (`full: true`), so jobs that ended
//! in between are counted; the model's watermark keeps anything from being
//! counted twice.
//!
//! The same stream keeps the allocated set in [`Context::allocations`] for
//! the resources collector (`alloc` events carry R, `clean` gives it back).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use super::{Backoff, Context};
use crate::flux::{Error, Rpc, Timer};
use crate::model::jobflow::{Applied, JobFlow, LabelOptions};

pub const NAME: &str = "jobflow";
const TOPIC: &str = "job-manager.events-journal";
/// The events the models read. The journal leaves out the rest (validate,
/// priority, release, free, memo...), which spares the job manager sending
/// about 40% of a job's events: every event is a message the broker carries,
/// and those messages are nearly all the module costs the broker. The
/// allocated set gives a job's resources back at `clean`, which the job
/// manager posts in the same pass as `free` once the job's cleanup is done
/// (with housekeeping, which holds resources past both, the resources
/// collector asks the job manager instead).
const ALLOWED_EVENTS: [&str; 9] = [
    "submit",
    "depend",
    "urgency",
    "jobspec-update",
    "alloc",
    "start",
    "exception",
    "finish",
    "clean",
];

/// Events arriving within this many seconds update the state together (the
/// summary walks every active job, so not once per event).
const SUMMARY_DELAY: f64 = 0.1;

pub struct JobFlowCollector {
    _inner: Rc<Inner>,
}

struct Inner {
    ctx: Rc<Context>,
    model: RefCell<JobFlow>,
    stream: RefCell<Option<Rpc>>,
    /// The backlog of the current stream is over.
    live: Cell<bool>,
    subscribed_once: Cell<bool>,
    retry: RefCell<Option<Timer>>,
    summary: RefCell<Option<Timer>>,
    summary_pending: Cell<bool>,
    backoff: Cell<Backoff>,
}

impl JobFlowCollector {
    pub fn start(
        ctx: Rc<Context>,
        wait_buckets: &[f64],
        run_buckets: &[f64],
        labels: LabelOptions,
    ) -> Result<JobFlowCollector, Error> {
        let since = ctx.handle.now();
        let inner = Rc::new(Inner {
            ctx,
            model: RefCell::new(JobFlow::with_labels(
                since,
                wait_buckets,
                run_buckets,
                labels,
            )),
            stream: RefCell::new(None),
            live: Cell::new(false),
            subscribed_once: Cell::new(false),
            retry: RefCell::new(None),
            summary: RefCell::new(None),
            summary_pending: Cell::new(false),
            backoff: Cell::new(Backoff::new()),
        });
        *inner.retry.borrow_mut() = Some(super::weak_timer(
            &inner.ctx,
            &inner,
            Backoff::FIRST,
            0.0,
            subscribe,
        )?);
        *inner.summary.borrow_mut() = Some(super::weak_timer(
            &inner.ctx,
            &inner,
            SUMMARY_DELAY,
            0.0,
            publish_summary,
        )?);
        subscribe(&inner);
        Ok(JobFlowCollector { _inner: inner })
    }

    /// Gives every queue in `names` ("" for the anonymous queue)
    /// zero-valued series until its jobs move: the instance's queues as the
    /// broker config defines them, at start and after `flux config reload`.
    pub fn know_queues(&self, names: &[String]) {
        self._inner.model.borrow_mut().know_queues(names);
        if self._inner.live.get() {
            publish_summary(&self._inner);
        }
    }
}

impl Drop for JobFlowCollector {
    fn drop(&mut self) {
        // Nobody follows the journal any more: the allocated set kept from
        // it goes stale, so the resources collector must stop using it.
        self._inner.ctx.allocations.borrow_mut().stream_lost();
    }
}

fn subscribe(inner: &Rc<Inner>) {
    inner.stream.borrow_mut().take();
    inner.live.set(false);
    inner.model.borrow_mut().begin_backlog();
    inner.ctx.allocations.borrow_mut().begin_backlog();
    let full = inner.subscribed_once.replace(true);
    let allow: serde_json::Map<String, serde_json::Value> = ALLOWED_EVENTS
        .iter()
        .map(|&name| (name.to_string(), serde_json::json!(1)))
        .collect();
    let payload = serde_json::json!({ "full": full, "allow": allow }).to_string();
    let sent = super::weak_rpc(&inner.ctx, inner, TOPIC, &payload, true, on_response);
    match sent {
        Ok(rpc) => *inner.stream.borrow_mut() = Some(rpc),
        Err(err) => stream_lost(inner, &err),
    }
}

fn on_response(inner: &Rc<Inner>, response: Result<String, Error>) {
    let payload = match response {
        Ok(payload) => payload,
        Err(err) => return stream_lost(inner, &err),
    };
    let applied = inner
        .model
        .borrow_mut()
        .apply_tracking(&payload, Some(&mut inner.ctx.allocations.borrow_mut()));
    match applied {
        Ok(Applied::EndOfBacklog) => {
            inner.ctx.allocations.borrow_mut().end_backlog();
            inner.live.set(true);
            inner.backoff.set(Backoff::new());
            publish_summary(inner);
        }
        Ok(Applied::Events) if inner.live.get() => {
            if !inner.summary_pending.replace(true) {
                if let Some(timer) = inner.summary.borrow().as_ref() {
                    timer.restart(SUMMARY_DELAY, 0.0);
                }
            }
        }
        Ok(Applied::Events) => {}
        // One unreadable event is reported; the stream and the counts go on,
        // but the allocated set may have missed an allocation, so the
        // resources collector goes back to asking the job manager.
        Err(msg) => {
            inner.ctx.allocations.borrow_mut().stream_lost();
            inner.ctx.failed(NAME, &msg, |_| {})
        }
    }
}

fn publish_summary(inner: &Rc<Inner>) {
    inner.summary_pending.set(false);
    let started = Instant::now();
    let summary = inner.model.borrow().summary();
    inner
        .ctx
        .succeeded(NAME, started, |state| state.jobflow = Some(summary));
}

/// The stream ended: report it, keep the counts (they stay true), and
/// subscribe again after a backoff delay.
fn stream_lost(inner: &Rc<Inner>, err: &Error) {
    let message = super::stream_end_message(TOPIC, "job-manager", err);
    inner.stream.borrow_mut().take();
    inner.live.set(false);
    inner.ctx.allocations.borrow_mut().stream_lost();
    inner.ctx.failed(NAME, &message, |_| {});
    super::retry_after_backoff(&inner.backoff, &inner.retry);
}
