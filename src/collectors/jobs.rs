//! Job counts from job-list: one streaming `job-list.job-stats` RPC, whose
//! responses job-list sends (batched) whenever a count changes.
//!
//! job-list drops its stream watchers without a response when it is unloaded
//! or reloaded, so a dead stream looks like a quiet one. A watchdog therefore
//! asks once per poll interval for the counts without streaming. A live
//! stream delivers any difference within job-list's batch delay (0.2 s); if
//! it does not, the stream is dead and is replaced.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Instant;

use super::{About, Collector, Context, Settings, Spec};
use crate::model::jobs::{self, JobCounts, JobStats};
use crate::reactor::deferred::Deferred;
use crate::reactor::poll::{Opened, PollLoop};
use crate::reactor::subscription::{StreamEvent, Subscription};
use crate::render::{queue_label, Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::Error;

pub const NAME: &str = "jobs";
pub const SECTION: Section<JobStats> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "Job counts by state and result, for the instance and each queue, as flux jobs --stats-only -a counts them (a streaming job-list.job-stats).",
    about: About {
        name: NAME,
        on_by_default: true,
        options: &[],
        needs: &[],
    },
    start,
    restart_needed: super::restart_on_new_interval,
    render: super::Render::Now(render),
    reads: &[],
    families: FAMILIES,
};

const TOPIC: &str = "job-list.job-stats";
/// How long a live stream may take to deliver a change the watchdog saw.
const STREAM_GRACE: f64 = 0.6;

impl Collector for Inner {}

struct Inner {
    ctx: Rc<Context>,
    stream: Subscription,
    last_streamed: RefCell<Option<JobStats>>,
    /// The watchdog's one-shot asks, one at a time.
    probe: PollLoop<()>,
    /// Set when the watchdog saw counts the stream had not delivered.
    mismatch_since: Cell<Option<Instant>>,
    verify: Deferred,
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let handle = ctx.handle;
    let inner = Rc::new(Inner {
        ctx,
        stream: Subscription::new(TOPIC, "job-list"),
        last_streamed: RefCell::new(None),
        probe: PollLoop::new(),
        mismatch_since: Cell::new(None),
        verify: Deferred::new(),
    });
    let weak = Rc::downgrade(&inner);
    inner.verify.start(handle, with(&weak, verify_stream))?;
    // The watchdog's first ask comes one interval in, when the stream has
    // had its chance to answer.
    let period = settings.poll_interval;
    inner
        .probe
        .start_in(handle, period, period, with(&weak, send_probe))?;
    let on_subscribe = {
        let weak = weak.clone();
        move || {
            if let Some(inner) = weak.upgrade() {
                inner.mismatch_since.set(None);
            }
            "{}".to_string()
        }
    };
    inner.stream.start(handle, on_subscribe, move |event| {
        if let Some(inner) = weak.upgrade() {
            on_stream_event(&inner, event);
        }
    })?;
    Ok(Box::new(inner))
}

/// A callback that runs `f` while the collector lives.
fn with(weak: &Weak<Inner>, f: fn(&Rc<Inner>)) -> impl FnMut() + 'static {
    let weak = weak.clone();
    move || {
        if let Some(inner) = weak.upgrade() {
            f(&inner);
        }
    }
}

fn on_stream_event(inner: &Rc<Inner>, event: StreamEvent) {
    let started = Instant::now();
    inner.mismatch_since.set(None);
    match event {
        StreamEvent::Response(payload) => match jobs::parse(&payload) {
            Ok(stats) => {
                inner.stream.healthy();
                *inner.last_streamed.borrow_mut() = Some(stats.clone());
                inner
                    .ctx
                    .succeeded(NAME, started, |state| state.set(SECTION, stats));
            }
            // A response we cannot read is reported; the stream goes on, and
            // the last good counts are dropped rather than left stale.
            Err(msg) => inner.ctx.failed(NAME, &msg, |state| state.clear(SECTION)),
        },
        // The stream ended (job-list unloaded, or an error): the counts are
        // dropped until a new stream answers.
        StreamEvent::Ended { message, .. } => {
            inner.last_streamed.borrow_mut().take();
            inner
                .ctx
                .failed(NAME, &message, |state| state.clear(SECTION));
        }
    }
}

fn send_probe(inner: &Rc<Inner>) {
    // Nothing to check while a resubscription is pending, or a probe is out.
    if !inner.stream.is_open() || inner.probe.open(()) == Opened::Busy {
        return;
    }
    let weak = Rc::downgrade(inner);
    let sent = inner.probe.send(TOPIC, "{}", move |answer| {
        if let Some(inner) = weak.upgrade() {
            on_probe_response(&inner, answer);
        }
    });
    if sent.is_err() {
        inner.probe.close();
    }
}

fn on_probe_response(inner: &Rc<Inner>, response: Result<String, Error>) {
    let _probe = inner.probe.close();
    match response {
        Ok(payload) => {
            let Ok(probed) = jobs::parse(&payload) else {
                return;
            };
            // The grace period runs from the first unexplained difference:
            // restarting it on every probe would postpone it forever when
            // the poll interval is shorter than the grace.
            if inner.last_streamed.borrow().as_ref() != Some(&probed)
                && inner.stream.is_open()
                && inner.mismatch_since.get().is_none()
            {
                inner.mismatch_since.set(Some(Instant::now()));
                inner.verify.arm(STREAM_GRACE);
            }
        }
        // job-list went away: the stream is as good as gone.
        Err(err) if inner.stream.is_open() => {
            let message = crate::reactor::subscription::end_message(TOPIC, "job-list", &err);
            inner.last_streamed.borrow_mut().take();
            inner.stream.drop_and_retry();
            inner
                .ctx
                .failed(NAME, &message, |state| state.clear(SECTION));
        }
        Err(_) => {}
    }
}

fn verify_stream(inner: &Rc<Inner>) {
    if inner.mismatch_since.get().is_some() {
        inner.ctx.handle.log(
            flux::Level::Info,
            &format!("{TOPIC}: stream went quiet while counts changed (job-list reloaded?); subscribing again"),
        );
        inner.stream.resubscribe();
    }
}

fn render(state: &State, out: &mut Rendered) {
    let Some(jobs) = state.get(SECTION) else {
        return;
    };
    // An instance without named queues has the anonymous one, which holds
    // every job: its flux_queue_* series carry no queue label, as every
    // flux_queue_* family's do, so per-queue panels work on any instance.
    let anonymous = [("", &jobs.all)];
    let queues = || -> Box<dyn Iterator<Item = (&str, &JobCounts)>> {
        if jobs.queues.is_empty() {
            Box::new(anonymous.iter().copied())
        } else {
            Box::new(jobs.queues.iter().map(|q| (q.name.as_str(), &q.counts)))
        }
    };
    let active = |f: &mut Family, counts: &JobCounts, queue: Option<&str>| {
        let queue = queue.filter(|q| !q.is_empty());
        for (st, n) in counts.active() {
            match queue {
                Some(q) => f.sample(&[("queue", q), ("state", st)], n as f64),
                None => f.sample(&[("state", st)], n as f64),
            };
        }
    };
    let inactive = |f: &mut Family, counts: &JobCounts, queue: Option<&str>| {
        let queue = queue.filter(|q| !q.is_empty());
        for (result, n) in counts.inactive() {
            match queue {
                Some(q) => f.sample(&[("queue", q), ("result", result)], n as f64),
                None => f.sample(&[("result", result)], n as f64),
            };
        }
    };
    active(&mut Family::of(out, &JOBS), &jobs.all, None);
    inactive(&mut Family::of(out, &JOBS_INACTIVE), &jobs.all, None);
    Family::of(out, &JOBS_PURGED_TOTAL).sample(&[], jobs.all.inactive_purged as f64);
    let mut f = Family::of(out, &QUEUE_JOBS);
    for (name, counts) in queues() {
        active(&mut f, counts, Some(name));
    }
    let mut f = Family::of(out, &QUEUE_JOBS_INACTIVE);
    for (name, counts) in queues() {
        inactive(&mut f, counts, Some(name));
    }
    let mut f = Family::of(out, &QUEUE_JOBS_PURGED_TOTAL);
    for (name, counts) in queues() {
        f.sample(queue_label(name).as_slice(), counts.inactive_purged as f64);
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    JOBS,
    JOBS_INACTIVE,
    JOBS_PURGED_TOTAL,
    QUEUE_JOBS,
    QUEUE_JOBS_INACTIVE,
    QUEUE_JOBS_PURGED_TOTAL,
];

const JOBS: Doc = Doc::gauge(
    "flux_jobs",
    "Active jobs by state, as flux jobs --stats-only counts them.",
    &["state"],
);

const JOBS_INACTIVE: Doc = Doc::gauge(
    "flux_jobs_inactive",
    "Retained inactive jobs by result; goes down when jobs are purged.",
    &["result"],
);

const JOBS_PURGED_TOTAL: Doc = Doc::counter(
    "flux_jobs_purged_total",
    "Inactive jobs purged from job-list.",
    &[],
);

const QUEUE_JOBS: Doc = Doc::gauge(
    "flux_queue_jobs",
    "Active jobs by queue and state; an instance without named queues has one anonymous queue, without a queue label.",
    &["queue", "state"],
);

const QUEUE_JOBS_INACTIVE: Doc = Doc::gauge(
    "flux_queue_jobs_inactive",
    "Retained inactive jobs by queue and result (the anonymous queue has no queue label).",
    &["queue", "result"],
);

const QUEUE_JOBS_PURGED_TOTAL: Doc = Doc::counter(
    "flux_queue_jobs_purged_total",
    "Inactive jobs purged from job-list, by queue (the anonymous queue has no queue label).",
    &["queue"],
);
