//! Passing running jobs' samples up the overlay tree to rank 0.
//!
//! Sent straight to rank 0, each rank's batch would be a message of its
//! own: at 16,384 ranks and the default 30 s period, 546 a second, each
//! waking rank 0's module thread alone (BENCHMARKS.md, "Running jobs'
//! samples at rank 0"). Instead the module on every rank other than 0
//! serves `NAME.samples` as rank 0 does. It holds its own batch and those
//! its children's modules send it, and a while after the first (a tenth of
//! its period, between 0.05 and 3 s) sends them all on upstream in one
//! bundle. Rank 0 then takes a few bundles a second, whatever the size of
//! the instance.
//!
//! A relay sends to its parent in the overlay, whose rank it asks the
//! parent broker once (`attr.get` of `rank`, upstream). Where the parent's
//! module is not loaded, or takes no samples (another build), the broker
//! or the module says ENOSYS: the bundle goes to rank 0 directly, and so do
//! the next ones for ten periods before the parent is tried again. A
//! bundle is in flight one at a time; what comes meanwhile waits for the
//! next.
//!
//! The batches are passed on as they came: a relay reads only the
//! bundle's outline and version, and rank 0 reads and checks each batch
//! (a bad one is refused there alone). Only the instance owner's modules
//! may send them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

use flux::{Error, Handle, Level, MsgHandler, Request, Rpc, Timer};
use serde_json::value::RawValue;
use usage::live;

use crate::stats::RelayStats;

/// The most batch text a relay holds while its upstream does not answer;
/// past it, the oldest are given up (a rank's next batch replaces them at
/// rank 0 in any case).
pub const MAX_HELD_BYTES: usize = 64 << 20;

/// Refusals logged before they are only counted.
const REFUSALS_LOGGED: u32 = 10;

/// How long a relay waits after its first held batch before sending them
/// on: a tenth of the sampling period, between 0.05 and 3 s. Rank 0 then
/// takes at most ten bundles a period from each of its children, and a
/// batch reaches it within a few seconds through a tree of any depth the
/// overlay has.
pub fn delay(period: f64) -> f64 {
    (period / 10.0).clamp(0.05, 3.0)
}

/// How long a message of samples waits for its answer before it is given
/// up: a period, and at least 5 s. A module removed with a message in
/// hand never answers it.
pub fn answer_within(period: f64) -> Duration {
    Duration::from_secs_f64(period.max(5.0))
}

#[derive(Default)]
struct Held {
    batches: VecDeque<Box<RawValue>>,
    bytes: usize,
}

struct Inner {
    h: Handle,
    topic: String,
    period: Cell<f64>,
    delay: Cell<f64>,
    held: RefCell<Held>,
    timer: RefCell<Option<Timer>>,
    in_flight: RefCell<Option<Rpc>>,
    /// The last bundle was not taken, and that was logged.
    failure_logged: Cell<bool>,
    /// The parent's rank, once its broker has said it.
    parent: Cell<Option<u32>>,
    parent_ask: RefCell<Option<Rpc>>,
    /// Until when bundles go to rank 0 directly, the parent having said
    /// ENOSYS.
    parent_deaf_until: Cell<f64>,
    /// A bundle went to rank 0 directly, and that was logged.
    direct_logged: Cell<bool>,
    /// Refusals logged; past [`REFUSALS_LOGGED`], only counted.
    refusals_logged: Cell<u32>,
    stats: RefCell<RelayStats>,
}

/// The relay on this rank; dropping it stops it, and what it holds is
/// given up.
pub struct Relay {
    inner: Rc<Inner>,
    _samples: MsgHandler,
}

impl Relay {
    /// Serves `NAME.samples` on this rank, passing batches on every
    /// [`delay`]`(period)`.
    pub fn start(h: Handle, period: Duration) -> Result<Rc<Relay>, Error> {
        let name = h.module_name().unwrap_or_else(|| "prometheus".into());
        let topic = format!("{name}.{}", live::SAMPLES_METHOD);
        let inner = Rc::new(Inner {
            h,
            topic: topic.clone(),
            period: Cell::new(period.as_secs_f64()),
            delay: Cell::new(delay(period.as_secs_f64())),
            held: RefCell::new(Held::default()),
            timer: RefCell::new(None),
            in_flight: RefCell::new(None),
            failure_logged: Cell::new(false),
            parent: Cell::new(None),
            parent_ask: RefCell::new(None),
            parent_deaf_until: Cell::new(0.0),
            direct_logged: Cell::new(false),
            refusals_logged: Cell::new(0),
            stats: RefCell::new(RelayStats::default()),
        });
        let weak: Weak<Inner> = Rc::downgrade(&inner);
        let timer = h.timer(inner.delay.get(), 0.0, move || {
            if let Some(inner) = weak.upgrade() {
                flush(&inner);
            }
        })?;
        *inner.timer.borrow_mut() = Some(timer);
        ask_parent(&inner)?;
        let weak = Rc::downgrade(&inner);
        // Only the instance owner's requests: the modules of other ranks.
        let samples = h.handle_requests(&topic, false, move |request| {
            if let Some(inner) = weak.upgrade() {
                on_samples(&inner, request);
            }
        })?;
        Ok(Rc::new(Relay {
            inner,
            _samples: samples,
        }))
    }

    /// Holds this rank's own batch to be sent on with the others.
    pub fn push(&self, batch: Box<RawValue>) {
        hold(&self.inner, std::iter::once(batch));
    }

    /// A new sampling period (`flux config reload`).
    pub fn set_period(&self, period: Duration) {
        self.inner.period.set(period.as_secs_f64());
        self.inner.delay.set(delay(period.as_secs_f64()));
    }

    pub fn stats(&self) -> RelayStats {
        let mut stats = self.inner.stats.borrow().clone();
        stats.held = self.inner.held.borrow().batches.len();
        stats.delay = self.inner.delay.get();
        stats.parent = self.inner.parent.get();
        stats
    }
}

/// A child's batch or bundle: held to be sent on, or refused as a whole
/// where its outline cannot be read.
fn on_samples(inner: &Rc<Inner>, request: &Request<'_>) {
    let payload = request.payload_str().ok().flatten().unwrap_or_default();
    let batches = match live::split_samples(&payload) {
        Ok(batches) => batches,
        Err(e) => {
            inner.stats.borrow_mut().refused += 1;
            let logged = inner.refusals_logged.get();
            if logged < REFUSALS_LOGGED {
                inner.refusals_logged.set(logged + 1);
                inner.h.log(
                    Level::Warning,
                    &format!("usage relay: samples from a rank below refused: {e}"),
                );
            }
            return request.respond_error(libc::EPROTO, &e.to_string());
        }
    };
    inner.stats.borrow_mut().batches_taken += batches.len() as u64;
    hold(inner, batches.into_iter().map(RawValue::to_owned));
    request.respond("{}");
}

fn hold(inner: &Rc<Inner>, batches: impl Iterator<Item = Box<RawValue>>) {
    let mut held = inner.held.borrow_mut();
    let was_empty = held.batches.is_empty();
    for batch in batches {
        held.bytes += batch.get().len();
        held.batches.push_back(batch);
    }
    let mut given_up = 0;
    while held.bytes > MAX_HELD_BYTES {
        let Some(oldest) = held.batches.pop_front() else {
            break;
        };
        held.bytes -= oldest.get().len();
        given_up += 1;
    }
    drop(held);
    if given_up > 0 {
        inner.stats.borrow_mut().batches_lost += given_up;
    }
    // With a bundle in flight, its answer arms the timer for what waits.
    if was_empty && inner.in_flight.borrow().is_none() {
        arm(inner);
    }
}

fn arm(inner: &Inner) {
    if let Some(timer) = inner.timer.borrow().as_ref() {
        timer.restart(inner.delay.get(), 0.0);
    }
}

/// Asks the parent broker its rank. Until it answers, bundles go to rank
/// 0 directly.
fn ask_parent(inner: &Rc<Inner>) -> Result<(), Error> {
    let weak = Rc::downgrade(inner);
    let asked = inner.h.rpc_upstream(
        "attr.get",
        r#"{"name":"rank"}"#,
        Some(answer_within(inner.period.get())),
        move |answer| {
            let Some(inner) = weak.upgrade() else { return };
            inner.parent_ask.borrow_mut().take();
            let rank = answer.ok().and_then(|text| parent_rank(&text));
            if rank.is_none() {
                inner.h.log(
                    Level::Info,
                    "usage relay: the parent broker did not say its rank: samples go to rank 0 directly",
                );
            }
            inner.parent.set(rank);
        },
    )?;
    *inner.parent_ask.borrow_mut() = Some(asked);
    Ok(())
}

/// The rank in the parent broker's answer to `attr.get`.
fn parent_rank(answer: &str) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct Attr {
        value: String,
    }
    serde_json::from_str::<Attr>(answer)
        .ok()?
        .value
        .parse()
        .ok()
}

/// Sends what is held on in one bundle.
fn flush(inner: &Rc<Inner>) {
    if inner.in_flight.borrow().is_some() {
        return;
    }
    let held = std::mem::take(&mut *inner.held.borrow_mut());
    if held.batches.is_empty() {
        return;
    }
    let batches: Vec<Box<RawValue>> = held.batches.into();
    let bundle = Rc::new(live::write_bundle(&batches));
    let to = match inner.parent.get() {
        Some(parent) if inner.h.now() >= inner.parent_deaf_until.get() => parent,
        _ => 0,
    };
    send(inner, bundle, batches.len() as u64, to);
}

/// Sends `bundle` of `count` batches to rank `to`: the parent, or 0.
fn send(inner: &Rc<Inner>, bundle: Rc<String>, count: u64, to: u32) {
    let weak = Rc::downgrade(inner);
    let payload = Rc::clone(&bundle);
    let direct = to == 0 && inner.parent.get() != Some(0);
    let on_answer = move |answer: Result<String, Error>| {
        let Some(inner) = weak.upgrade() else { return };
        inner.in_flight.borrow_mut().take();
        match answer {
            Ok(_) => {
                let mut stats = inner.stats.borrow_mut();
                stats.bundles_sent += 1;
                stats.batches_passed += count;
                stats.bundles_direct += u64::from(direct);
                drop(stats);
                if inner.failure_logged.replace(false) {
                    inner
                        .h
                        .log(Level::Info, "usage relay: samples are taken again");
                }
            }
            Err(e) if e.errno == libc::ENOSYS && to != 0 => {
                inner
                    .parent_deaf_until
                    .set(inner.h.now() + 10.0 * inner.period.get());
                if !inner.direct_logged.replace(true) {
                    inner.h.log(
                        Level::Info,
                        &format!(
                            "usage relay: the parent, rank {to}, takes no samples ({}): sending them to rank 0 directly",
                            e.message
                        ),
                    );
                }
                send(&inner, Rc::clone(&payload), count, 0);
                return;
            }
            Err(e) => {
                let hint = if e.errno == libc::ENOSYS {
                    " (is the prometheus module loaded on rank 0?)"
                } else {
                    ""
                };
                lost(
                    &inner,
                    count,
                    &format!(
                        "rank {to} did not take {count} batches of running jobs' samples: {}{hint}; said once until they are taken",
                        e.message
                    ),
                );
            }
        }
        if !inner.held.borrow().batches.is_empty() {
            arm(&inner);
        }
    };
    let within = Some(answer_within(inner.period.get()));
    match inner.h.rpc_to(to, &inner.topic, &bundle, within, on_answer) {
        Ok(rpc) => *inner.in_flight.borrow_mut() = Some(rpc),
        Err(e) => {
            lost(
                inner,
                count,
                &format!("cannot send running jobs' samples on: {e}"),
            );
            if !inner.held.borrow().batches.is_empty() {
                arm(inner);
            }
        }
    }
}

/// Counts a bundle of `count` batches that was not taken, and says why
/// once until one is.
fn lost(inner: &Inner, count: u64, why: &str) {
    let mut stats = inner.stats.borrow_mut();
    stats.bundles_failed += 1;
    stats.batches_lost += count;
    drop(stats);
    if !inner.failure_logged.replace(true) {
        inner.h.log(Level::Warning, &format!("usage relay: {why}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_a_tenth_of_the_period_within_bounds() {
        assert_eq!(delay(30.0), 3.0);
        assert_eq!(delay(60.0), 3.0);
        assert_eq!(delay(5.0), 0.5);
        assert_eq!(delay(0.1), 0.05);
        assert_eq!(answer_within(1.0), Duration::from_secs(5));
        assert_eq!(answer_within(30.0), Duration::from_secs(30));
    }

    #[test]
    fn the_parent_rank_is_read_from_its_attribute() {
        assert_eq!(parent_rank(r#"{"value":"17","flags":1}"#), Some(17));
        assert_eq!(parent_rank(r#"{"value":"x"}"#), None);
        assert_eq!(parent_rank("{"), None);
    }
}
