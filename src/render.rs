//! Rendering: a pure function from collected [`State`] to metric families,
//! encoded by the prometheus crate.

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::model::jobs::JobCounts;
use crate::state::State;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One metric family under construction.
pub struct Family {
    family: MetricFamily,
    metrics: Vec<Metric>,
}

impl Family {
    pub fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(kind);
        Family {
            family,
            metrics: Vec::new(),
        }
    }

    pub fn gauge(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::GAUGE)
    }

    pub fn counter(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::COUNTER)
    }

    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let mut metric = Metric::from_label(
            labels
                .iter()
                .map(|(name, value)| {
                    let mut pair = LabelPair::default();
                    pair.set_name((*name).to_string());
                    pair.set_value((*value).to_string());
                    pair
                })
                .collect(),
        );
        match self.family.get_field_type() {
            MetricType::COUNTER => {
                let mut counter = Counter::default();
                counter.set_value(value);
                metric.set_counter(counter);
            }
            _ => {
                let mut gauge = Gauge::default();
                gauge.set_value(value);
                metric.set_gauge(gauge);
            }
        }
        self.metrics.push(metric);
        self
    }

    /// Adds the family to `out`, unless it has no samples (an empty family
    /// is not valid exposition).
    pub fn finish(mut self, out: &mut Vec<MetricFamily>) {
        if !self.metrics.is_empty() {
            self.family.set_metric(self.metrics);
            out.push(self.family);
        }
    }
}

fn job_families(out: &mut Vec<MetricFamily>, state: &State) {
    let Some(jobs) = &state.jobs else { return };
    let mut active = Family::gauge(
        "flux_jobs",
        "Active jobs by state, as flux jobs --stats-only counts them.",
    );
    let mut inactive = Family::gauge(
        "flux_jobs_inactive",
        "Retained inactive jobs by result; goes down when jobs are purged.",
    );
    let mut purged = Family::counter(
        "flux_jobs_purged_total",
        "Inactive jobs purged from job-list.",
    );
    let mut q_active = Family::gauge("flux_queue_jobs", "Active jobs in a named queue, by state.");
    let mut q_inactive = Family::gauge(
        "flux_queue_jobs_inactive",
        "Retained inactive jobs in a named queue, by result.",
    );
    let mut q_purged = Family::counter(
        "flux_queue_jobs_purged_total",
        "Inactive jobs of a named queue purged from job-list.",
    );

    let add = |counts: &JobCounts,
               queue: Option<&str>,
               a: &mut Family,
               i: &mut Family,
               p: &mut Family| {
        for (state, n) in counts.active() {
            match queue {
                Some(q) => a.sample(&[("queue", q), ("state", state)], n as f64),
                None => a.sample(&[("state", state)], n as f64),
            };
        }
        for (result, n) in counts.inactive() {
            match queue {
                Some(q) => i.sample(&[("queue", q), ("result", result)], n as f64),
                None => i.sample(&[("result", result)], n as f64),
            };
        }
        match queue {
            Some(q) => p.sample(&[("queue", q)], counts.inactive_purged as f64),
            None => p.sample(&[], counts.inactive_purged as f64),
        };
    };
    add(&jobs.all, None, &mut active, &mut inactive, &mut purged);
    for q in &jobs.queues {
        add(
            &q.counts,
            Some(&q.name),
            &mut q_active,
            &mut q_inactive,
            &mut q_purged,
        );
    }
    for family in [active, inactive, purged, q_active, q_inactive, q_purged] {
        family.finish(out);
    }
}

fn resource_families(out: &mut Vec<MetricFamily>, state: &State) {
    let Some(res) = &state.resources else { return };
    let kinds = [("nodes", "Nodes"), ("cores", "Cores"), ("gpus", "GPUs")];
    for (kind, what) in kinds {
        let mut total = Family::gauge(
            &format!("flux_resource_{kind}"),
            &format!("{what} by scheduler state, as flux resource list counts them (a node both allocated and down is in both)."),
        );
        for (st, c) in &res.totals {
            total.sample(&[("state", st)], pick(kind, c));
        }
        total.finish(out);
        let mut queue = Family::gauge(
            &format!("flux_queue_resource_{kind}"),
            &format!("{what} of a named queue by scheduler state, as flux resource list -q QUEUE counts them."),
        );
        for (name, rows) in &res.queues {
            for (st, c) in rows {
                queue.sample(&[("queue", name), ("state", st)], pick(kind, c));
            }
        }
        queue.finish(out);
    }
    let mut health = Family::gauge(
        "flux_resource_status_nodes",
        "Nodes by state as flux resource status counts them (avail includes offline nodes that are not drained).",
    );
    for (st, n) in res.health.by_state() {
        health.sample(&[("state", st)], n as f64);
    }
    health.finish(out);
    if state.per_node {
        let mut drained = Family::gauge(
            "flux_resource_drained_node_info",
            "A drained node and its drain reason; always 1.",
        );
        for (rank, reason) in &res.health.drains {
            drained.sample(&[("rank", &rank.to_string()), ("reason", reason)], 1.0);
        }
        drained.finish(out);
    }
}

fn pick(kind: &str, c: &crate::model::resources::Counts) -> f64 {
    (match kind {
        "nodes" => c.nnodes,
        "cores" => c.ncores,
        _ => c.ngpus,
    }) as f64
}

fn queue_families(out: &mut Vec<MetricFamily>, state: &State) {
    let Some(queues) = &state.queues else { return };
    let mut enabled = Family::gauge(
        "flux_queue_enabled",
        "Whether the queue accepts jobs (1) or not (0), as flux queue list shows (EN).",
    );
    let mut started = Family::gauge(
        "flux_queue_started",
        "Whether the queue schedules jobs (1) or not (0), as flux queue list shows (ST).",
    );
    for q in queues {
        let labels: &[(&str, &str)] = match &q.name {
            Some(name) => &[("queue", name)],
            None => &[],
        };
        enabled.sample(labels, f64::from(u8::from(q.enabled)));
        started.sample(labels, f64::from(u8::from(q.started)));
    }
    enabled.finish(out);
    started.finish(out);
}

fn exporter_families(out: &mut Vec<MetricFamily>, state: &State) {
    let mut build = Family::gauge(
        "flux_prometheus_build_info",
        "The exporter's version; the value is always 1.",
    );
    build.sample(&[("version", VERSION)], 1.0);
    build.finish(out);

    let mut up = Family::gauge(
        "flux_prometheus_collector_up",
        "Whether the collector's last update succeeded (1) or not (0).",
    );
    let mut last = Family::gauge(
        "flux_prometheus_collector_last_success_timestamp_seconds",
        "When the collector last updated successfully, in seconds since the epoch.",
    );
    let mut duration = Family::gauge(
        "flux_prometheus_collector_duration_seconds",
        "How long the collector's last update took.",
    );
    for c in &state.collectors {
        let labels = [("collector", c.name)];
        up.sample(&labels, if c.up { 1.0 } else { 0.0 });
        if let Some(t) = c.last_success {
            last.sample(&labels, t);
        }
        duration.sample(&labels, c.duration);
    }
    for family in [up, last, duration] {
        family.finish(out);
    }
}

/// All metric families for `state`, in a stable order.
pub fn families(state: &State) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    job_families(&mut out, state);
    resource_families(&mut out, state);
    queue_families(&mut out, state);
    exporter_families(&mut out, state);
    out
}

/// The Prometheus text format (0.0.4) of `families`.
pub fn text(families: &[MetricFamily]) -> String {
    let mut buf = Vec::with_capacity(families.len() * 256);
    // Encoding fails only on invalid families, which `Family` never builds;
    // a failure still yields whatever was written rather than a panic.
    let _ = TextEncoder::new().encode(families, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
