//! Job counts from job-list: one streaming `job-list.job-stats` RPC, whose
//! responses job-list sends (batched) whenever a count changes.
//!
//! job-list drops its stream watchers without a response when it is unloaded
//! or reloaded, so a dead stream looks like a quiet one. A watchdog therefore
//! asks once per poll interval for the counts without streaming. A live
//! stream delivers any difference within job-list's batch delay (0.2 s); if
//! it does not, the stream is dead and is replaced.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Backoff, Context};
use crate::flux::{Error, Rpc, Timer};
use crate::model::jobs::{self, JobStats};

pub const NAME: &str = "jobs";
const TOPIC: &str = "job-list.job-stats";
/// How long a live stream may take to deliver a change the watchdog saw.
const STREAM_GRACE: f64 = 0.6;

pub struct JobsCollector {
    _inner: Rc<Inner>,
}

struct Inner {
    ctx: Rc<Context>,
    stream: RefCell<Option<Rpc>>,
    last_streamed: RefCell<Option<JobStats>>,
    probe: RefCell<Option<Rpc>>,
    /// Set when the watchdog saw counts the stream had not delivered.
    mismatch_since: Cell<Option<Instant>>,
    retry: RefCell<Option<Timer>>,
    watchdog: RefCell<Option<Timer>>,
    verify: RefCell<Option<Timer>>,
    backoff: Cell<Backoff>,
}

impl JobsCollector {
    pub fn start(ctx: Rc<Context>, poll_interval: Duration) -> Result<JobsCollector, Error> {
        let inner = Rc::new(Inner {
            ctx,
            stream: RefCell::new(None),
            last_streamed: RefCell::new(None),
            probe: RefCell::new(None),
            mismatch_since: Cell::new(None),
            retry: RefCell::new(None),
            watchdog: RefCell::new(None),
            verify: RefCell::new(None),
            backoff: Cell::new(Backoff::new()),
        });
        let period = poll_interval.as_secs_f64();
        *inner.retry.borrow_mut() = Some(super::weak_timer(
            &inner.ctx,
            &inner,
            Backoff::FIRST,
            0.0,
            subscribe,
        )?);
        *inner.verify.borrow_mut() = Some(super::weak_timer(
            &inner.ctx,
            &inner,
            STREAM_GRACE,
            0.0,
            verify_stream,
        )?);
        let watchdog = super::weak_timer(&inner.ctx, &inner, period, period, send_probe)?;
        watchdog.start();
        *inner.watchdog.borrow_mut() = Some(watchdog);
        subscribe(&inner);
        Ok(JobsCollector { _inner: inner })
    }
}

fn subscribe(inner: &Rc<Inner>) {
    inner.mismatch_since.set(None);
    inner.stream.borrow_mut().take();
    let sent = super::weak_rpc(&inner.ctx, inner, TOPIC, "{}", true, on_stream_response);
    match sent {
        Ok(rpc) => *inner.stream.borrow_mut() = Some(rpc),
        Err(err) => stream_lost(inner, &err),
    }
}

fn on_stream_response(inner: &Rc<Inner>, response: Result<String, Error>) {
    let started = Instant::now();
    inner.mismatch_since.set(None);
    match response {
        Ok(payload) => match jobs::parse(&payload) {
            Ok(stats) => {
                inner.backoff.set(Backoff::new());
                *inner.last_streamed.borrow_mut() = Some(stats.clone());
                inner
                    .ctx
                    .succeeded(NAME, started, |state| state.jobs = Some(stats));
            }
            // A response we cannot read is reported; the stream goes on, and
            // the last good counts are dropped rather than left stale.
            Err(msg) => inner.ctx.failed(NAME, &msg, |state| state.jobs = None),
        },
        Err(err) => stream_lost(inner, &err),
    }
}

/// The stream ended (job-list unloaded, or an error): report it, drop the
/// counts, and subscribe again after a backoff delay.
fn stream_lost(inner: &Rc<Inner>, err: &Error) {
    let message = super::stream_end_message(TOPIC, "job-list", err);
    inner.stream.borrow_mut().take();
    inner.last_streamed.borrow_mut().take();
    inner.ctx.failed(NAME, &message, |state| state.jobs = None);
    super::retry_after_backoff(&inner.backoff, &inner.retry);
}

fn send_probe(inner: &Rc<Inner>) {
    // Nothing to check while a resubscription is pending, or a probe is out.
    if inner.stream.borrow().is_none() || inner.probe.borrow().is_some() {
        return;
    }
    let sent = super::weak_rpc(&inner.ctx, inner, TOPIC, "{}", false, on_probe_response);
    if let Ok(rpc) = sent {
        *inner.probe.borrow_mut() = Some(rpc);
    }
}

fn on_probe_response(inner: &Rc<Inner>, response: Result<String, Error>) {
    inner.probe.borrow_mut().take();
    match response {
        Ok(payload) => {
            let Ok(probed) = jobs::parse(&payload) else {
                return;
            };
            // The grace period runs from the first unexplained difference:
            // restarting it on every probe would postpone it forever when
            // the poll interval is shorter than the grace.
            if inner.last_streamed.borrow().as_ref() != Some(&probed)
                && inner.stream.borrow().is_some()
                && inner.mismatch_since.get().is_none()
            {
                inner.mismatch_since.set(Some(Instant::now()));
                if let Some(verify) = inner.verify.borrow().as_ref() {
                    verify.restart(STREAM_GRACE, 0.0);
                }
            }
        }
        Err(err) if inner.stream.borrow().is_some() => stream_lost(inner, &err),
        Err(_) => {}
    }
}

fn verify_stream(inner: &Rc<Inner>) {
    if inner.mismatch_since.get().is_some() {
        inner.ctx.handle.log(
            crate::flux::Level::Info,
            &format!("{TOPIC}: stream went quiet while counts changed (job-list reloaded?); subscribing again"),
        );
        subscribe(inner);
    }
}
