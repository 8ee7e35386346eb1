//! Queues: polls `job-manager.queue-list`, then `job-manager.queue-status`
//! for each queue, every poll interval, so that queues added or removed by
//! `flux config reload` appear and disappear at the next poll.

use std::rc::{Rc, Weak};

use serde_json::json;

use super::{About, Collector, Context, Settings, Spec};
use crate::model::error::ParseError;
use crate::model::queues::{self, QueueStatus};
use crate::reactor::poll::{Opened, PollLoop, ROUND_TIMEOUT};
use crate::render::{Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::Error;

pub const NAME: &str = "queues";
pub const SECTION: Section<Vec<QueueStatus>> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "Whether each queue is enabled and started, as flux queue list shows it.",
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

impl Collector for Inner {}

struct Inner {
    ctx: Rc<Context>,
    /// A round keeps one slot per queue asked about, filled as answers
    /// arrive.
    poll: PollLoop<Vec<Option<Result<QueueStatus, ParseError>>>>,
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let handle = ctx.handle;
    let inner = Rc::new(Inner {
        ctx,
        poll: PollLoop::new(),
    });
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    inner.poll.start(handle, settings.poll_interval, move || {
        if let Some(inner) = weak.upgrade() {
            start_round(&inner);
        }
    })?;
    Ok(Box::new(inner))
}

fn fail(inner: &Rc<Inner>, message: &str) {
    let _round = inner.poll.close();
    inner
        .ctx
        .failed(NAME, message, |state| state.clear(SECTION));
}

fn start_round(inner: &Rc<Inner>) {
    match inner.poll.open(Vec::new()) {
        Opened::Busy => return,
        Opened::AfterTimeout => {
            let message = format!(
                "no answer from job-manager within {}s",
                ROUND_TIMEOUT.as_secs()
            );
            inner
                .ctx
                .failed(NAME, &message, |state| state.clear(SECTION));
        }
        Opened::Fresh => {}
    }
    let weak = Rc::downgrade(inner);
    let sent = inner
        .poll
        .send("job-manager.queue-list", "{}", move |answer| {
            if let Some(inner) = weak.upgrade() {
                on_list(&inner, answer);
            }
        });
    if let Err(err) = sent {
        fail(inner, &err.message);
    }
}

fn on_list(inner: &Rc<Inner>, answer: Result<String, Error>) {
    let names = match answer
        .map_err(|e| e.message)
        .and_then(|payload| queues::parse_list(&payload).map_err(|e| e.to_string()))
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
    inner
        .poll
        .with(|answers| *answers = vec![None; asked.len()]);
    for (slot, name) in asked.into_iter().enumerate() {
        let payload = match &name {
            Some(n) => json!({ "name": n }).to_string(),
            None => "{}".to_string(),
        };
        let weak = Rc::downgrade(inner);
        let sent = inner
            .poll
            .send("job-manager.queue-status", &payload, move |answer| {
                if let Some(inner) = weak.upgrade() {
                    let status = answer
                        .map_err(|e| ParseError::invalid(e.message))
                        .and_then(|p| queues::parse_status(name.as_deref(), &p));
                    on_status(&inner, slot, status);
                }
            });
        if let Err(err) = sent {
            return fail(inner, &err.message);
        }
    }
}

fn on_status(inner: &Rc<Inner>, slot: usize, status: Result<QueueStatus, ParseError>) {
    let complete = inner.poll.with(|answers| {
        if let Some(entry) = answers.get_mut(slot) {
            *entry = Some(status);
        }
        answers.iter().all(Option::is_some)
    });
    if complete != Some(true) {
        return;
    }
    let Some(round) = inner.poll.close() else {
        return;
    };
    let started = round.started;
    let outcome: Result<Vec<QueueStatus>, ParseError> =
        round.into_data().into_iter().flatten().collect();
    match outcome {
        // Set only when changed: the jobflow collector's render reads
        // whether each queue is started, and need not be made again at
        // every poll.
        Ok(list) => inner.ctx.succeeded(NAME, started, |state| {
            if state.get(SECTION) != Some(&list) {
                state.set(SECTION, list);
            }
        }),
        Err(msg) => inner.ctx.failed(NAME, &msg, |state| state.clear(SECTION)),
    }
}

fn render(state: &State, out: &mut Rendered) {
    let Some(queues) = state.get(SECTION) else {
        return;
    };
    for (doc, started) in [(&QUEUE_ENABLED, false), (&QUEUE_STARTED, true)] {
        let mut f = Family::of(out, doc);
        for q in queues {
            let v = f64::from(u8::from(if started { q.started } else { q.enabled }));
            match &q.name {
                Some(name) => f.sample(&[("queue", name)], v),
                None => f.sample(&[], v),
            };
        }
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[QUEUE_ENABLED, QUEUE_STARTED];

const QUEUE_ENABLED: Doc = Doc::gauge(
    "flux_queue_enabled",
    "Whether the queue accepts jobs (1) or not (0), as flux queue list shows (EN).",
    &["queue"],
);

const QUEUE_STARTED: Doc = Doc::gauge(
    "flux_queue_started",
    "Whether the queue schedules jobs (1) or not (0), as flux queue list shows (ST).",
    &["queue"],
);
