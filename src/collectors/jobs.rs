//! Job counts from job-list: one streaming `job-list.job-stats` RPC, whose
//! responses job-list sends (batched) whenever a count changes.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Instant;

use super::{Backoff, Context};
use crate::flux::{Error, Rpc, Timer};
use crate::model::jobs;

pub const NAME: &str = "jobs";
const TOPIC: &str = "job-list.job-stats";

pub struct JobsCollector {
    _inner: Rc<Inner>,
}

struct Inner {
    ctx: Rc<Context>,
    stream: RefCell<Option<Rpc>>,
    retry: RefCell<Option<Timer>>,
    backoff: Cell<Backoff>,
}

impl JobsCollector {
    pub fn start(ctx: Rc<Context>) -> Result<JobsCollector, Error> {
        let inner = Rc::new(Inner {
            ctx: Rc::clone(&ctx),
            stream: RefCell::new(None),
            retry: RefCell::new(None),
            backoff: Cell::new(Backoff::new()),
        });
        let weak = Rc::downgrade(&inner);
        let retry = ctx.handle.timer(Backoff::FIRST, 0.0, move || {
            if let Some(inner) = weak.upgrade() {
                subscribe(&inner);
            }
        })?;
        *inner.retry.borrow_mut() = Some(retry);
        subscribe(&inner);
        Ok(JobsCollector { _inner: inner })
    }
}

fn subscribe(inner: &Rc<Inner>) {
    let weak: Weak<Inner> = Rc::downgrade(inner);
    let sent = inner.ctx.handle.rpc(TOPIC, "{}", true, move |response| {
        if let Some(inner) = weak.upgrade() {
            on_response(&inner, response);
        }
    });
    match sent {
        Ok(rpc) => *inner.stream.borrow_mut() = Some(rpc),
        Err(err) => stream_lost(inner, &err),
    }
}

fn on_response(inner: &Rc<Inner>, response: Result<String, Error>) {
    let started = Instant::now();
    match response {
        Ok(payload) => match jobs::parse(&payload) {
            Ok(stats) => {
                inner.backoff.set(Backoff::new());
                inner.ctx.succeeded(NAME, started, |state| state.jobs = Some(stats));
            }
            // A response we cannot read is reported; the stream goes on, and
            // the last good counts are dropped rather than left stale.
            Err(msg) => inner.ctx.failed(NAME, &msg, |state| state.jobs = None),
        },
        Err(err) => stream_lost(inner, &err),
    }
}

/// The stream ended (job-list unloaded or reloaded, or an error): report it,
/// drop the counts, and subscribe again after a backoff delay.
fn stream_lost(inner: &Rc<Inner>, err: &Error) {
    let message = if err.errno == libc::ENOSYS {
        format!("{TOPIC}: job-list is not loaded")
    } else {
        format!("{TOPIC}: stream ended: {}", err.message)
    };
    inner.stream.borrow_mut().take();
    inner.ctx.failed(NAME, &message, |state| state.jobs = None);
    let mut backoff = inner.backoff.get();
    let delay = backoff.next_delay();
    inner.backoff.set(backoff);
    if let Some(retry) = inner.retry.borrow().as_ref() {
        retry.restart(delay, 0.0);
    }
}
