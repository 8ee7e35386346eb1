//! The broker and the instance: attributes read once at load, online brokers
//! from a streaming `groups.get broker.online` (the broker answers again on
//! every change), overlay health (`overlay.health`) polled every poll
//! interval, and the broker process's own resource use from the prometheus
//! crate's process collector (the module runs inside the broker).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Instant;

use prometheus::core::Collector as _;
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricType;

use super::{About, Collector, Context, Settings, Spec};
use crate::model::broker::{self, InstanceInfo};
use crate::reactor::poll::{Opened, PollLoop, ROUND_TIMEOUT};
use crate::reactor::subscription::{StreamEvent, Subscription};
use crate::render::{Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::Error;

pub const NAME: &str = "broker";
pub const SECTION: Section<BrokerState> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "The instance (version, size, online brokers, start time, overlay health) and the broker process's CPU, memory, descriptors and threads.",
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

/// What the broker collector keeps in the state.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerState {
    pub instance: InstanceInfo,
    /// The broker process's samples, named and described for export.
    pub process: Vec<ProcessSample>,
}

/// One sample of the broker process (CPU, memory, descriptors, threads).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSample {
    pub doc: &'static Doc,
    pub value: f64,
}

impl Collector for Inner {}

struct Inner {
    ctx: Rc<Context>,
    info: InstanceInfo,
    process: ProcessCollector,
    poll: PollLoop<()>,
    online_stream: Subscription,
    /// The last count the stream gave, or why there is none.
    online: RefCell<Online>,
    /// A poll that finished before the stream's first answer: reported
    /// when that answer comes, so the first report is never a false alarm.
    report_pending: Cell<Option<Instant>>,
}

enum Online {
    NotYet,
    Count(u64),
    Lost(String),
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
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
        poll: PollLoop::new(),
        online_stream: Subscription::new("groups.get", "broker"),
        online: RefCell::new(Online::NotYet),
        report_pending: Cell::new(None),
    });
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    let on_event = {
        let weak = weak.clone();
        move |event| {
            if let Some(inner) = weak.upgrade() {
                on_online(&inner, event);
            }
        }
    };
    inner
        .online_stream
        .start(h, || r#"{"name": "broker.online"}"#.to_string(), on_event)?;
    inner.poll.start(h, settings.poll_interval, move || {
        if let Some(inner) = weak.upgrade() {
            start_round(&inner);
        }
    })?;
    Ok(Box::new(inner))
}

fn on_online(inner: &Rc<Inner>, event: StreamEvent) {
    let count = match event {
        StreamEvent::Response(payload) => broker::parse_group_count(&payload),
        StreamEvent::Ended { error, .. } => {
            return online_lost(inner, format!("groups.get: {}", error.message))
        }
    };
    let n = match count {
        Ok(n) => n,
        Err(msg) => {
            inner.online_stream.drop_and_retry();
            return online_lost(inner, msg.to_string());
        }
    };
    inner.online_stream.healthy();
    *inner.online.borrow_mut() = Online::Count(n);
    let set_online = |state: &mut State| {
        if let Some(broker) = state.get_mut(SECTION) {
            broker.instance.online = Some(n);
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
    if inner.report_pending.take().is_some() {
        inner.ctx.failed(NAME, &message, |_| {});
    }
    *inner.online.borrow_mut() = Online::Lost(message);
}

fn start_round(inner: &Rc<Inner>) {
    match inner.poll.open(()) {
        Opened::Busy => return,
        Opened::AfterTimeout => {
            let message = format!(
                "no answer from overlay.health within {}s",
                ROUND_TIMEOUT.as_secs()
            );
            inner.ctx.failed(NAME, &message, |_| {});
        }
        Opened::Fresh => {}
    }
    let weak = Rc::downgrade(inner);
    let sent = inner.poll.send("overlay.health", "{}", move |answer| {
        if let Some(inner) = weak.upgrade() {
            finish(&inner, answer);
        }
    });
    if let Err(err) = sent {
        inner.poll.close();
        inner.ctx.failed(NAME, &err.message, |_| {});
    }
}

fn process_samples(process: &ProcessCollector) -> Vec<ProcessSample> {
    let mut out = Vec::new();
    for family in process.collect() {
        let counter = family.get_field_type() == MetricType::COUNTER;
        let Some(doc) = process_family(family.name()) else {
            continue;
        };
        for metric in family.get_metric() {
            let value = if family.name() == "process_cpu_seconds_total" {
                flux::process_cpu_seconds().unwrap_or_else(|| metric.get_counter().get_value())
            } else if counter {
                metric.get_counter().get_value()
            } else {
                metric.get_gauge().get_value()
            };
            out.push(ProcessSample { doc, value });
        }
    }
    out
}

fn finish(inner: &Rc<Inner>, answer: Result<String, Error>) {
    let Some(round) = inner.poll.close() else {
        return;
    };
    let started = round.started;
    let overlay = answer
        .map_err(|e| e.message)
        .and_then(|p| broker::parse_overlay_status(&p).map_err(|e| e.to_string()));
    let mut info = inner.info.clone();
    let mut errors = Vec::new();
    match overlay {
        Ok(s) => info.overlay_status = Some(s),
        Err(e) => errors.push(e),
    }
    let process = process_samples(&inner.process);
    let found = |info, process| {
        move |state: &mut State| {
            state.set(
                SECTION,
                BrokerState {
                    instance: info,
                    process,
                },
            )
        }
    };
    match &*inner.online.borrow() {
        Online::Count(n) => info.online = Some(*n),
        Online::Lost(e) => errors.push(e.clone()),
        Online::NotYet if errors.is_empty() => {
            inner.report_pending.set(Some(started));
            inner.ctx.update(found(info, process));
            return;
        }
        Online::NotYet => {}
    }
    // What was learned is exported even when one source failed; the
    // collector is reported down with the reason.
    if errors.is_empty() {
        inner.ctx.succeeded(NAME, started, found(info, process));
    } else {
        inner
            .ctx
            .failed(NAME, &errors.join("; "), found(info, process));
    }
}

fn render(state: &State, out: &mut Rendered) {
    let Some(BrokerState { instance, process }) = state.get(SECTION) else {
        return;
    };
    let info = instance;
    let mut labels = vec![
        ("version", info.version.as_str()),
        ("level", info.level.as_str()),
    ];
    if let Some(jobid) = &info.jobid {
        labels.push(("jobid", jobid));
    }
    Family::of(out, &INSTANCE_INFO).sample(&labels, 1.0);
    Family::of(out, &INSTANCE_BROKERS).sample(&[], f64::from(info.size));
    if let Some(n) = info.online {
        Family::of(out, &INSTANCE_ONLINE_BROKERS).sample(&[], n as f64);
    }
    if let Some(t) = info.start_time {
        Family::of(out, &INSTANCE_START_TIME_SECONDS).sample(&[], t);
    }
    if let Some(status) = &info.overlay_status {
        let mut f = Family::of(out, &OVERLAY_STATUS);
        for st in crate::model::broker::OVERLAY_STATES {
            f.sample(&[("status", st)], if st == status { 1.0 } else { 0.0 });
        }
    }
    for p in process {
        Family::of(out, p.doc).sample(&[], p.value);
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    INSTANCE_INFO,
    INSTANCE_BROKERS,
    INSTANCE_ONLINE_BROKERS,
    INSTANCE_START_TIME_SECONDS,
    OVERLAY_STATUS,
    PROCESS[0],
    PROCESS[1],
    PROCESS[2],
    PROCESS[3],
    PROCESS[4],
    PROCESS[5],
    PROCESS[6],
    PROCESS[7],
];

/// The broker process's families, by the name the prometheus crate's
/// process collector gives them; the help is the crate's, said of the
/// broker.
const PROCESS: [Doc; 8] = [
    Doc::counter(
        "flux_broker_process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds. (the broker process)",
        &[],
    ),
    Doc::gauge(
        "flux_broker_process_open_fds",
        "Number of open file descriptors. (the broker process)",
        &[],
    ),
    Doc::gauge(
        "flux_broker_process_max_fds",
        "Maximum number of open file descriptors. (the broker process)",
        &[],
    ),
    Doc::gauge(
        "flux_broker_process_virtual_memory_bytes",
        "Virtual memory size in bytes. (the broker process)",
        &[],
    ),
    Doc::gauge(
        "flux_broker_process_virtual_memory_max_bytes",
        "Maximum amount of virtual memory available in bytes. (the broker process)",
        &[],
    ),
    Doc::gauge(
        "flux_broker_process_resident_memory_bytes",
        "Resident memory size in bytes. (the broker process)",
        &[],
    ),
    Doc::gauge(
        "flux_broker_process_start_time_seconds",
        "Start time of the process since unix epoch in seconds. (the broker process)",
        &[],
    ),
    Doc::gauge(
        "flux_broker_process_threads",
        "Number of OS threads in the process. (the broker process)",
        &[],
    ),
];

/// The declared family of the process collector's family `name`
/// (`process_threads`, say).
pub fn process_family(name: &str) -> Option<&'static Doc> {
    static DOCS: [Doc; 8] = PROCESS;
    DOCS.iter()
        .find(|doc| doc.name.strip_prefix("flux_broker_") == Some(name))
}

const INSTANCE_INFO: Doc = Doc::info(
    "flux_instance_info",
    "The Flux instance: version, nesting level and, when nested, the enclosing job; always 1.",
    &["version", "level", "jobid"],
)
.public();

const INSTANCE_BROKERS: Doc = Doc::gauge(
    "flux_instance_brokers",
    "Brokers in the instance (its size).",
    &[],
);

const INSTANCE_ONLINE_BROKERS: Doc = Doc::gauge(
    "flux_instance_online_brokers",
    "Brokers online (members of the broker.online group).",
    &[],
);

const INSTANCE_START_TIME_SECONDS: Doc = Doc::gauge(
    "flux_instance_start_time_seconds",
    "When the rank 0 broker started, in seconds since the epoch.",
    &[],
);

const OVERLAY_STATUS: Doc = Doc::gauge(
    "flux_overlay_status",
    "The overlay network's health as overlay.health reports it: 1 for the current status.",
    &["status"],
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Kind;

    #[test]
    fn every_process_family_is_declared_as_the_crate_describes_it() {
        let families = ProcessCollector::for_self().collect();
        assert!(families.len() >= 6, "{families:?}");
        for family in families {
            let doc = process_family(family.name())
                .unwrap_or_else(|| panic!("{} is not declared", family.name()));
            assert_eq!(doc.help, format!("{} (the broker process)", family.help()));
            let counter = family.get_field_type() == MetricType::COUNTER;
            assert_eq!(doc.kind == Kind::Counter, counter, "{}", doc.name);
        }
    }
}
