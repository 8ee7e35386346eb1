//! What the aggregate view of private mode (crate::access) costs the HTTP
//! thread, made once per published snapshot that an uncleared scraper asks
//! for (BENCHMARKS.md, "The aggregate view of private mode"):
//!
//!   cargo bench --bench access
//!
//! The exposition is that of a large instance with every per-user option
//! on: job flow by 20 queues x 100 users (counters, wait histograms,
//! pending demand), 60,000 running jobs' node series, and 16,384 nodes'
//! series, which name no one and are copied as they are.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use flux_prometheus::model::jobflow::Histogram;
use flux_prometheus::render::{Doc, Family, Fold, Rendered};

const QUEUES: usize = 20;
const USERS: usize = 100;
const JOBS: usize = 60_000;
const NODES: usize = 16_384;

const SUBMITTED: Doc = Doc::counter(
    "flux_jobs_submitted_total",
    "Jobs submitted.",
    &["queue", "user", "project"],
);
const WAIT: Doc = Doc::histogram(
    "flux_jobs_queue_wait_seconds",
    "Wait.",
    &["queue", "user", "project"],
);
const PENDING: Doc = Doc::gauge(
    "flux_queue_pending_jobs",
    "Pending.",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Sum);
const OLDEST: Doc = Doc::gauge(
    "flux_queue_pending_oldest_submit_timestamp_seconds",
    "Oldest.",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Min);
const JOB_NODE: Doc = Doc::info(
    "flux_job_node_info",
    "Job nodes.",
    &["jobid", "user", "node"],
);
const NODE_UP: Doc = Doc::gauge("flux_node_up", "Up.", &["node", "rank"]);

fn exposition() -> Rendered {
    let mut out = Rendered::default();
    let users: Vec<String> = (0..USERS).map(|u| format!("user{u}")).collect();
    let queues: Vec<String> = (0..QUEUES).map(|q| format!("queue{q}")).collect();
    let mut h = Histogram::new(&[
        0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
        86400.0,
    ]);
    for i in 0..50 {
        h.observe(i as f64 * 37.0);
    }
    let mut f = Family::of(&mut out, &SUBMITTED);
    for q in &queues {
        for u in &users {
            f.sample(&[("queue", q), ("user", u), ("project", "none")], 12.0);
        }
    }
    let mut f = Family::of(&mut out, &WAIT);
    for q in &queues {
        for u in &users {
            f.observations(&[("queue", q), ("user", u), ("project", "none")], &h);
        }
    }
    for doc in [&PENDING, &OLDEST] {
        let mut f = Family::of(&mut out, doc);
        for q in &queues {
            for u in &users {
                for status in ["eligible", "held", "blocked"] {
                    f.sample(
                        &[
                            ("queue", q),
                            ("user", u),
                            ("project", "none"),
                            ("status", status),
                        ],
                        1.795e9,
                    );
                }
            }
        }
    }
    let mut f = Family::of(&mut out, &JOB_NODE);
    for j in 0..JOBS {
        f.sample(
            &[
                ("jobid", &format!("ƒ{j:x}")),
                ("user", &users[j % USERS]),
                ("node", &format!("node{}", j % NODES)),
            ],
            1.0,
        );
    }
    let mut f = Family::of(&mut out, &NODE_UP);
    for n in 0..NODES {
        f.sample(
            &[("node", &format!("node{n}")), ("rank", &n.to_string())],
            1.0,
        );
    }
    out
}

fn benches(c: &mut Criterion) {
    let rendered = exposition();
    let (text, families) = rendered.into_parts();
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    let view = flux_prometheus::access::aggregate(&text, &families);
    let kept = view.text().lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "{series} series ({} MB) become {kept} ({} MB)",
        text.len() / 1_000_000,
        view.len() / 1_000_000
    );
    c.bench_function(&format!("aggregate view of {series} series"), |b| {
        b.iter(|| flux_prometheus::access::aggregate(black_box(&text), black_box(&families)))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
