//! Collectors: one file each. They talk to Flux through the safe handle,
//! record what they learn in the shared [`State`], and know nothing of HTTP.

pub mod broker;
pub mod jobflow;
pub mod jobs;
pub mod queues;
pub mod resources;

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Instant;

use crate::exposition::Shared;
use crate::flux::{Error, Handle, Rpc, Timer};
use crate::model::allocations::Allocations;
use crate::render;
use crate::state::State;

/// Updates that arrive within this many seconds are rendered together. A
/// busy instance changes state hundreds of times a second; rendering each
/// time would take CPU from the broker for nothing, since Prometheus
/// scrapes every few seconds. A scrape is at most this much behind.
const PUBLISH_DELAY: f64 = 0.1;

/// What every collector shares: the handle, the state, and publication.
pub struct Context {
    pub handle: Handle,
    state: RefCell<State>,
    shared: Arc<Shared>,
    publish_timer: RefCell<Option<Timer>>,
    publish_pending: Cell<bool>,
    /// The allocated set as the job-flow collector reads it from the
    /// journal, for the resources collector.
    pub allocations: RefCell<Allocations>,
    /// Run before each render; each says whether to keep it (false once its
    /// collector is gone).
    before_publish: RefCell<Vec<Box<dyn Fn() -> bool>>>,
}

impl Context {
    pub fn new(
        handle: Handle,
        shared: Arc<Shared>,
        collectors: &[&'static str],
    ) -> Result<Rc<Context>, Error> {
        let ctx = Rc::new(Context {
            handle,
            state: RefCell::new(State::with_collectors(collectors)),
            shared,
            publish_timer: RefCell::new(None),
            publish_pending: Cell::new(false),
            allocations: RefCell::new(Allocations::default()),
            before_publish: RefCell::new(Vec::new()),
        });
        let weak: Weak<Context> = Rc::downgrade(&ctx);
        let timer = handle.timer(PUBLISH_DELAY, 0.0, move || {
            if let Some(ctx) = weak.upgrade() {
                ctx.publish_now();
            }
        })?;
        *ctx.publish_timer.borrow_mut() = Some(timer);
        Ok(ctx)
    }

    pub fn state(&self) -> std::cell::Ref<'_, State> {
        self.state.borrow()
    }

    /// Changes the state and schedules a new snapshot.
    pub fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.borrow_mut());
        if !self.publish_pending.replace(true) {
            if let Some(timer) = self.publish_timer.borrow().as_ref() {
                timer.restart(PUBLISH_DELAY, 0.0);
            }
        }
    }

    /// Has `hook` run before every render, for state derived from what
    /// other collectors keep (the resources collector recounts the journal's
    /// allocated set, so that a job that runs is allocated in the same
    /// publish). The hook returns false once it is no longer wanted.
    pub fn before_publish(&self, hook: impl Fn() -> bool + 'static) {
        self.before_publish.borrow_mut().push(Box::new(hook));
    }

    /// Changes the state inside a [`before_publish`](Self::before_publish)
    /// hook: the render under way includes the change.
    pub fn update_in_publish(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.borrow_mut());
    }

    /// Renders the state and hands it to the HTTP thread.
    pub fn publish_now(&self) {
        self.publish_pending.set(false);
        let hooks = std::mem::take(&mut *self.before_publish.borrow_mut());
        let kept: Vec<_> = hooks.into_iter().filter(|hook| hook()).collect();
        self.before_publish.borrow_mut().splice(0..0, kept);
        let state = self.state.borrow();
        let text = render::text(&state);
        self.shared.publish(text, state.all_reported());
    }

    /// Records a successful update of `collector` that began at `started`.
    pub fn succeeded(&self, collector: &str, started: Instant, change: impl FnOnce(&mut State)) {
        let now = self.handle.now();
        self.update(|state| {
            change(state);
            if let Some(c) = state.collector_mut(collector) {
                c.up = true;
                c.last_success = Some(now);
                c.duration = started.elapsed().as_secs_f64();
                c.updates += 1;
                c.last_error = None;
            }
        });
    }

    /// Records a failed update; `change` drops whatever is no longer true.
    pub fn failed(&self, collector: &str, error: &str, change: impl FnOnce(&mut State)) {
        let first = self
            .state()
            .collectors
            .iter()
            .find(|c| c.name == collector)
            .is_none_or(|c| c.up || c.last_error.is_none());
        if first {
            self.handle.log(
                crate::flux::Level::Warning,
                &format!("{collector} collector: {error}"),
            );
        }
        self.update(|state| {
            change(state);
            if let Some(c) = state.collector_mut(collector) {
                c.up = false;
                c.last_error = Some(error.to_string());
            }
        });
    }
}

/// A poll whose answers have not all come in this long is given up, so a
/// service that never answers cannot stop a collector for good.
pub const ROUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether a poll may start, given when the one in flight (if any) began.
pub enum PollSlot {
    Free,
    /// The poll in flight is still within ROUND_TIMEOUT: do not double up.
    Busy,
    /// The poll in flight has waited too long: give it up, report, go on.
    Expired,
}

pub fn poll_slot(in_flight_since: Option<std::time::Instant>) -> PollSlot {
    match in_flight_since {
        None => PollSlot::Free,
        Some(t) if t.elapsed() > ROUND_TIMEOUT => PollSlot::Expired,
        Some(_) => PollSlot::Busy,
    }
}

/// A timer that calls `on_fire` with `target` for as long as it lives (it
/// holds only a weak reference, so the collector owning it can be dropped).
pub fn weak_timer<T: 'static>(
    ctx: &Context,
    target: &Rc<T>,
    after: f64,
    repeat: f64,
    on_fire: fn(&Rc<T>),
) -> Result<Timer, Error> {
    let weak: Weak<T> = Rc::downgrade(target);
    ctx.handle.timer(after, repeat, move || {
        if let Some(target) = weak.upgrade() {
            on_fire(&target);
        }
    })
}

/// An RPC whose answers (one, or a stream) go to `on_answer` with `target`
/// for as long as the target lives; like [`weak_timer`], it holds only a
/// weak reference.
pub fn weak_rpc<T: 'static>(
    ctx: &Context,
    target: &Rc<T>,
    topic: &str,
    payload: &str,
    streaming: bool,
    on_answer: fn(&Rc<T>, Result<String, Error>),
) -> Result<Rpc, Error> {
    let weak: Weak<T> = Rc::downgrade(target);
    ctx.handle.rpc(topic, payload, streaming, move |answer| {
        if let Some(target) = weak.upgrade() {
            on_answer(&target, answer);
        }
    })
}

/// Starts polling `target` with `on_tick` now and then every `interval`.
pub fn poll_every<T: 'static>(
    ctx: &Context,
    target: &Rc<T>,
    interval: std::time::Duration,
    on_tick: fn(&Rc<T>),
) -> Result<Timer, Error> {
    let timer = weak_timer(ctx, target, 0.0, interval.as_secs_f64(), on_tick)?;
    timer.start();
    Ok(timer)
}

/// Restarts `retry` after the next delay of `backoff`: how every streaming
/// collector subscribes again once its stream has ended.
pub fn retry_after_backoff(backoff: &Cell<Backoff>, retry: &RefCell<Option<Timer>>) {
    let mut next = backoff.get();
    let delay = next.next_delay();
    backoff.set(next);
    if let Some(timer) = retry.borrow().as_ref() {
        timer.restart(delay, 0.0);
    }
}

/// Why a stream from `topic` ended: its `service` is not loaded (ENOSYS),
/// or the error it ended with.
pub fn stream_end_message(topic: &str, service: &str, err: &Error) -> String {
    if err.errno == libc::ENOSYS {
        format!("{topic}: {service} is not loaded")
    } else {
        format!("{topic}: stream ended: {}", err.message)
    }
}

/// Retry delays for a source that is missing or failed: 1 s doubling to 30 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    next: f64,
}

impl Backoff {
    pub const FIRST: f64 = 1.0;
    pub const MAX: f64 = 30.0;

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The delay to wait now; the one after it is twice as long.
    pub fn next_delay(&mut self) -> f64 {
        let delay = self.next;
        self.next = (self.next * 2.0).min(Self::MAX);
        delay
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::new();
        let delays: Vec<f64> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(delays, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
        b.reset();
        assert_eq!(b.next_delay(), 1.0);
    }
}
