//! Rendering: a pure function from collected [`State`] to the Prometheus
//! text exposition format (0.0.4).
//!
//! The text is written directly rather than through the prometheus crate's
//! encoder: building its per-sample label and metric objects costs about
//! 450 ns a series, four times the 1 ms budget for 10,000 series.

use std::fmt::Write;

use crate::model::jobflow::{FlowKey, Histogram};
use crate::model::jobs::JobCounts;
use crate::model::resources::{Counts, ALL};

/// How current the resource rows are, said in their help.
const FRESHNESS: &str = "Allocations follow the job-manager journal within a publish; with housekeeping configured, or the jobflow collector off, they are polled every poll-interval.";
use crate::state::State;

use crate::VERSION;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// One metric family being written; its HELP and TYPE lines are written
/// with the first sample, so a family without samples leaves no trace.
pub struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
    help: &'a str,
    kind: Kind,
    started: bool,
}

impl<'a> Family<'a> {
    pub fn gauge(out: &'a mut String, name: &'a str, help: &'a str) -> Family<'a> {
        Family {
            out,
            name,
            help,
            kind: Kind::Gauge,
            started: false,
        }
    }

    pub fn counter(out: &'a mut String, name: &'a str, help: &'a str) -> Family<'a> {
        Family {
            out,
            name,
            help,
            kind: Kind::Counter,
            started: false,
        }
    }

    pub fn histogram(out: &'a mut String, name: &'a str, help: &'a str) -> Family<'a> {
        Family {
            out,
            name,
            help,
            kind: Kind::Histogram,
            started: false,
        }
    }

    /// One histogram's `_bucket` (cumulative, `le` last), `_sum` and
    /// `_count` samples.
    pub fn observations(&mut self, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        self.header();
        for (bound, n) in h.cumulative() {
            let mut le = String::new();
            write_value(&mut le, bound);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.line("_bucket", &with_le, n as f64);
        }
        self.line("_sum", labels, h.sum);
        self.line("_count", labels, h.count as f64);
        self
    }

    fn header(&mut self) {
        if !self.started {
            self.started = true;
            let kind = match self.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            self.out.push_str("# HELP ");
            self.out.push_str(self.name);
            self.out.push(' ');
            escape_help(self.out, self.help);
            self.out.push_str("\n# TYPE ");
            self.out.push_str(self.name);
            self.out.push(' ');
            self.out.push_str(kind);
            self.out.push('\n');
        }
    }

    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.header();
        self.line("", labels, value);
        self
    }

    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(self.name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape_label(self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(self.out, value);
        self.out.push('\n');
    }
}

/// The `queue` label of a named queue; none for the anonymous queue.
fn queue_label(name: &str) -> Option<(&'static str, &str)> {
    (!name.is_empty()).then_some(("queue", name))
}

fn escape_label(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn job_families(out: &mut String, state: &State) {
    let Some(jobs) = &state.jobs else { return };
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
    active(
        &mut Family::gauge(
            out,
            "flux_jobs",
            "Active jobs by state, as flux jobs --stats-only counts them.",
        ),
        &jobs.all,
        None,
    );
    inactive(
        &mut Family::gauge(
            out,
            "flux_jobs_inactive",
            "Retained inactive jobs by result; goes down when jobs are purged.",
        ),
        &jobs.all,
        None,
    );
    Family::counter(
        out,
        "flux_jobs_purged_total",
        "Inactive jobs purged from job-list.",
    )
    .sample(&[], jobs.all.inactive_purged as f64);
    let mut f = Family::gauge(
        out,
        "flux_queue_jobs",
        "Active jobs by queue and state; an instance without named queues has one anonymous queue, without a queue label.",
    );
    for (name, counts) in queues() {
        active(&mut f, counts, Some(name));
    }
    let mut f = Family::gauge(
        out,
        "flux_queue_jobs_inactive",
        "Retained inactive jobs by queue and result (the anonymous queue has no queue label).",
    );
    for (name, counts) in queues() {
        inactive(&mut f, counts, Some(name));
    }
    let mut f = Family::counter(
        out,
        "flux_queue_jobs_purged_total",
        "Inactive jobs purged from job-list, by queue (the anonymous queue has no queue label).",
    );
    for (name, counts) in queues() {
        f.sample(queue_label(name).as_slice(), counts.inactive_purged as f64);
    }
}

fn resource_families(out: &mut String, state: &State) {
    let Some(res) = &state.resources else { return };
    // The anonymous queue of an instance without named queues has every
    // resource (see job_families).
    let anonymous = [(String::new(), res.totals.clone())];
    let queues = if res.queues.is_empty() {
        &anonymous[..]
    } else {
        &res.queues[..]
    };
    type Pick = fn(&Counts) -> u64;
    let kinds: [(&str, &str, &str, Pick); 3] = [
        (
            "flux_resource_nodes",
            "flux_queue_resource_nodes",
            "Nodes",
            |c| c.nnodes,
        ),
        (
            "flux_resource_cores",
            "flux_queue_resource_cores",
            "Cores",
            |c| c.ncores,
        ),
        (
            "flux_resource_gpus",
            "flux_queue_resource_gpus",
            "GPUs",
            |c| c.ngpus,
        ),
    ];
    for (total_name, queue_name, what, pick) in kinds {
        let help = format!(
            "{what} by scheduler state, as flux resource list counts them. The states overlap (a node both allocated and down is in both), so they do not add up to the instance: flux_resource_capacity_{} does. {FRESHNESS}",
            what.to_lowercase()
        );
        let mut total = Family::gauge(out, total_name, &help);
        for (st, c) in res.totals.iter().filter(|(st, _)| *st != ALL) {
            total.sample(&[("state", st)], pick(c) as f64);
        }
        let help = format!("{what} of a queue by scheduler state, as flux resource list -q QUEUE counts them (states overlap; the anonymous queue has no queue label). {FRESHNESS}");
        let mut queue = Family::gauge(out, queue_name, &help);
        for (name, rows) in queues {
            for (st, c) in rows.iter().filter(|(st, _)| *st != ALL) {
                let mut labels: Vec<_> = queue_label(name).into_iter().collect();
                labels.push(("state", st));
                queue.sample(&labels, pick(c) as f64);
            }
        }
    }
    for (what, pick) in kinds.map(|(_, _, what, pick)| (what, pick)) {
        let name = format!("flux_resource_capacity_{}", what.to_lowercase());
        let help = format!("All {} of the instance, down ones included, as flux resource list -s all counts them (excluded ones are not).", what.to_lowercase());
        let mut f = Family::gauge(out, &name, &help);
        for (_, c) in res.totals.iter().filter(|(st, _)| *st == ALL) {
            f.sample(&[], pick(c) as f64);
        }
        let name = format!("flux_queue_resource_capacity_{}", what.to_lowercase());
        let help = format!(
            "All {} of a queue, down ones included, as flux resource list -q QUEUE -s all counts them (the anonymous queue has no queue label).",
            what.to_lowercase()
        );
        let mut f = Family::gauge(out, &name, &help);
        for (queue, rows) in queues {
            for (_, c) in rows.iter().filter(|(st, _)| *st == ALL) {
                f.sample(queue_label(queue).as_slice(), pick(c) as f64);
            }
        }
    }
    let mut health = Family::gauge(
        out,
        "flux_resource_status_nodes",
        "Nodes by state as flux resource status counts them (avail includes offline nodes that are not drained).",
    );
    for (st, n) in res.health.by_state() {
        health.sample(&[("state", st)], n as f64);
    }
    if state.per_node {
        let mut drained = Family::gauge(
            out,
            "flux_resource_drained_node_info",
            "A drained node and its drain reason; always 1.",
        );
        let mut rank = String::new();
        for (r, reason) in &res.health.drains {
            rank.clear();
            let _ = write!(rank, "{r}");
            drained.sample(&[("rank", &rank), ("reason", reason)], 1.0);
        }
    }
}

fn queue_families(out: &mut String, state: &State) {
    let Some(queues) = &state.queues else { return };
    for (metric, help, started) in [
        (
            "flux_queue_enabled",
            "Whether the queue accepts jobs (1) or not (0), as flux queue list shows (EN).",
            false,
        ),
        (
            "flux_queue_started",
            "Whether the queue schedules jobs (1) or not (0), as flux queue list shows (ST).",
            true,
        ),
    ] {
        let mut f = Family::gauge(out, metric, help);
        for q in queues {
            let v = f64::from(u8::from(if started { q.started } else { q.enabled }));
            match &q.name {
                Some(name) => f.sample(&[("queue", name)], v),
                None => f.sample(&[], v),
            };
        }
    }
}

fn instance_families(out: &mut String, state: &State) {
    if let Some(info) = &state.instance {
        let mut labels = vec![
            ("version", info.version.as_str()),
            ("level", info.level.as_str()),
        ];
        if let Some(jobid) = &info.jobid {
            labels.push(("jobid", jobid));
        }
        Family::gauge(out, "flux_instance_info", "The Flux instance: version, nesting level and, when nested, the enclosing job; always 1.")
            .sample(&labels, 1.0);
        Family::gauge(
            out,
            "flux_instance_brokers",
            "Brokers in the instance (its size).",
        )
        .sample(&[], f64::from(info.size));
        if let Some(n) = info.online {
            Family::gauge(
                out,
                "flux_instance_online_brokers",
                "Brokers online (members of the broker.online group).",
            )
            .sample(&[], n as f64);
        }
        if let Some(t) = info.start_time {
            Family::gauge(
                out,
                "flux_instance_start_time_seconds",
                "When the rank 0 broker started, in seconds since the epoch.",
            )
            .sample(&[], t);
        }
        if let Some(status) = &info.overlay_status {
            let mut f = Family::gauge(out, "flux_overlay_status", "The overlay network's health as overlay.health reports it: 1 for the current status.");
            for st in crate::model::broker::OVERLAY_STATES {
                f.sample(&[("status", st)], if st == status { 1.0 } else { 0.0 });
            }
        }
    }
    for p in &state.process {
        let mut f = if p.counter {
            Family::counter(out, &p.name, &p.help)
        } else {
            Family::gauge(out, &p.name, &p.help)
        };
        f.sample(&[], p.value);
    }
}

fn exporter_families(out: &mut String, state: &State) {
    Family::gauge(
        out,
        "flux_prometheus_build_info",
        "The exporter's version; the value is always 1.",
    )
    .sample(&[("version", VERSION)], 1.0);
    let mut up = Family::gauge(
        out,
        "flux_prometheus_collector_up",
        "Whether the collector's last update succeeded (1) or not (0).",
    );
    for c in &state.collectors {
        up.sample(&[("collector", c.name)], if c.up { 1.0 } else { 0.0 });
    }
    let mut last = Family::gauge(
        out,
        "flux_prometheus_collector_last_success_timestamp_seconds",
        "When the collector last updated successfully, in seconds since the epoch.",
    );
    for c in &state.collectors {
        if let Some(t) = c.last_success {
            last.sample(&[("collector", c.name)], t);
        }
    }
    let mut duration = Family::gauge(
        out,
        "flux_prometheus_collector_duration_seconds",
        "How long the collector's last update took.",
    );
    for c in &state.collectors {
        duration.sample(&[("collector", c.name)], c.duration);
    }
}

/// The Prometheus text format (0.0.4) of `state`, families in a stable order.
pub fn text(state: &State) -> String {
    let mut out = String::with_capacity(4096);
    job_families(&mut out, state);
    resource_families(&mut out, state);
    queue_families(&mut out, state);
    jobflow_families(&mut out, state);
    instance_families(&mut out, state);
    exporter_families(&mut out, state);
    out
}

/// Labels `queue`, `user` and `project` first, each left out when empty
/// (the anonymous queue; user and project labels not enabled).
fn with_queue<'a>(key: &'a FlowKey, rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut labels = Vec::with_capacity(rest.len() + 3);
    for (name, value) in [
        ("queue", &key.queue),
        ("user", &key.user),
        ("project", &key.project),
    ] {
        if !value.is_empty() {
            labels.push((name, value.as_str()));
        }
    }
    labels.extend_from_slice(rest);
    labels
}

fn jobflow_families(out: &mut String, state: &State) {
    let Some(flow) = &state.jobflow else { return };
    let mut f = Family::counter(
        out,
        "flux_jobs_submitted_total",
        "Jobs submitted since the module loaded (job-manager journal).",
    );
    for (q, qf) in &flow.queues {
        f.sample(&with_queue(q, &[]), qf.submitted as f64);
    }
    let mut f = Family::counter(
        out,
        "flux_jobs_started_total",
        "Jobs started since the module loaded.",
    );
    for (q, qf) in &flow.queues {
        f.sample(&with_queue(q, &[]), qf.started as f64);
    }
    let mut f = Family::counter(
        out,
        "flux_jobs_finished_total",
        "Jobs that became inactive since the module loaded, by result as flux jobs shows it.",
    );
    for (q, qf) in &flow.queues {
        for (result, n) in &qf.finished {
            f.sample(&with_queue(q, &[("result", result)]), *n as f64);
        }
    }
    let mut f = Family::counter(
        out,
        "flux_jobs_exceptions_total",
        "Job exceptions raised since the module loaded, by type.",
    );
    for (q, qf) in &flow.queues {
        for (kind, n) in &qf.exceptions {
            f.sample(&with_queue(q, &[("type", kind)]), *n as f64);
        }
    }
    let mut f = Family::histogram(
        out,
        "flux_jobs_queue_wait_seconds",
        "Time from submit to start of jobs that started since the module loaded.",
    );
    for (q, qf) in &flow.queues {
        f.observations(&with_queue(q, &[]), &qf.wait);
    }
    let mut f = Family::histogram(
        out,
        "flux_jobs_run_seconds",
        "Time from start to finish of jobs that finished since the module loaded, by result.",
    );
    for (q, qf) in &flow.queues {
        for (result, h) in &qf.run {
            f.observations(&with_queue(q, &[("result", result)]), h);
        }
    }
    type Pick = fn(&crate::model::jobflow::Demand) -> Option<f64>;
    let demand_families: [(&str, &str, Pick); 6] = [
        ("flux_queue_pending_jobs", "Pending jobs by status: eligible to run, held (urgency 0), or blocked on dependencies.", |d| Some(d.jobs as f64)),
        ("flux_queue_pending_requested_nodes", "Nodes requested by pending jobs (jobs that ask for slots only count none).", |d| Some(d.nodes as f64)),
        ("flux_queue_pending_requested_cores", "Cores requested by pending jobs (slots times cores per slot).", |d| Some(d.cores as f64)),
        ("flux_queue_pending_requested_gpus", "GPUs requested by pending jobs.", |d| Some(d.gpus as f64)),
        ("flux_queue_pending_largest_job_nodes", "Nodes requested by the largest pending job.", |d| Some(d.largest_nodes as f64)),
        ("flux_queue_pending_oldest_submit_timestamp_seconds", "Submit time of the oldest pending job; its age is time() minus this.", |d| d.oldest_submit),
    ];
    for (name, help, pick) in demand_families {
        let mut f = Family::gauge(out, name, help);
        for ((q, status), d) in &flow.demand {
            if let Some(v) = pick(d) {
                f.sample(&with_queue(q, &[("status", status)]), v);
            }
        }
    }
}
