//! Criterion benches for two CPU bars (BENCHMARKS.md, "Render and resources
//! refresh"):
//! rendering 10,000 series, and one resources refresh (parse + count) on a
//! 4096 nodes x 64 cores x 4 GPUs instance with 5,000 single-core jobs.
//!
//!   cargo bench --bench render

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use flux_prometheus::model::allocations::Allocations;
use flux_prometheus::model::jobs::{JobCounts, JobStats, QueueJobCounts};
use flux_prometheus::model::resources::{self, ResourceSummary};
use flux_prometheus::state::State;
use serde_json::json;

const NODES: u32 = 4096;
const CORES: u32 = 64;
const JOBS: u32 = 5000;
const QUEUES: usize = 460;

/// resource.sched-status, resource.status and config.get payloads for the
/// fake cluster: every job holds one core, ten nodes are down.
fn payloads() -> (String, String, String) {
    let all = json!({"version": 1, "execution": {
        "R_lite": [{"rank": format!("0-{}", NODES - 1), "children": {"core": format!("0-{}", CORES - 1), "gpu": "0-3"}}],
        "properties": {"batch": format!("0-{}", NODES / 2 - 1), "debug": format!("{}-{}", NODES / 2, NODES - 1)},
        "nodelist": [format!("fake[0-{}]", NODES - 1)], "starttime": 0.0, "expiration": 0.0}});
    let allocated: Vec<_> = (0..JOBS)
        .map(|i| json!({"rank": (i % NODES).to_string(), "children": {"core": (i / NODES).to_string()}}))
        .collect();
    let sched = json!({
        "all": all,
        "allocated": {"version": 1, "execution": {"R_lite": allocated, "starttime": 0.0, "expiration": 0.0}},
        "down": {"version": 1, "execution": {"R_lite": [{"rank": "100-109", "children": {"core": format!("0-{}", CORES - 1), "gpu": "0-3"}}], "starttime": 0.0, "expiration": 0.0}},
    });
    let status = json!({"R": all, "online": format!("0-99,110-{}", NODES - 1), "offline": "100-109",
        "exclude": "", "torpid": "", "drain": {"100-104": {"reason": "bad dimm", "timestamp": 1.0}}});
    let config =
        json!({"queues": {"batch": {"requires": ["batch"]}, "debug": {"requires": ["debug"]}}});
    (sched.to_string(), status.to_string(), config.to_string())
}

/// A state rendering to just over 10,000 series: the job and resource rows
/// of 460 queues (drained nodes are the nodes collector's, not rendered
/// here).
fn ten_thousand_series() -> State {
    let counts = JobCounts {
        successful: 10,
        failed: 2,
        ..Default::default()
    };
    let mut state = State::with_collectors(&["jobs", "resources", "queues"]);
    state.set(
        flux_prometheus::collectors::jobs::SECTION,
        JobStats {
            all: counts.clone(),
            queues: (0..QUEUES)
                .map(|i| QueueJobCounts {
                    name: format!("queue{i}"),
                    counts: counts.clone(),
                })
                .collect(),
        },
    );
    let (sched, status, config) = payloads();
    let mut summary: ResourceSummary =
        resources::summarize(&sched, &status, &config).expect("payloads parse");
    let rows = summary.totals.clone();
    summary.queues = (0..QUEUES)
        .map(|i| (format!("queue{i}"), rows.clone()))
        .collect();
    state.set(
        flux_prometheus::collectors::resources::SECTION,
        flux_prometheus::collectors::resources::ResourcesState {
            summary,
            node_events: Default::default(),
            queue_node_events: Vec::new(),
            at: 0.0,
        },
    );
    state
}

fn benches(c: &mut Criterion) {
    let state = ten_thousand_series();
    let series = flux_prometheus::collectors::render(&state)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    assert!(series >= 10_000, "only {series} series");
    c.bench_function(&format!("render {series} series"), |b| {
        b.iter(|| flux_prometheus::collectors::render(black_box(&state)))
    });

    let (sched, status, config) = payloads();
    // The same instance as the module computes it when no rank is offline:
    // the down ranks torpid rather than offline, the allocated set in the
    // shape job-manager.resource-status answers with.
    let mut status_all_online: serde_json::Value = serde_json::from_str(&status).expect("json");
    status_all_online["torpid"] = status_all_online["offline"].take();
    status_all_online["offline"] = "".into();
    let status_all_online = status_all_online.to_string();
    let sched_value: serde_json::Value = serde_json::from_str(&sched).expect("json");
    let allocated = json!({ "allocated": sched_value["allocated"] }).to_string();
    let computed = |status: &str, allocated: &str, config: &str| {
        let derived = resources::SchedStatus::derive(status, allocated)
            .expect("parses")
            .expect("no rank offline");
        resources::summarize_from(derived, status, config).expect("parses")
    };
    assert_eq!(
        computed(&status_all_online, &allocated, &config).totals,
        resources::summarize(&sched, &status, &config)
            .expect("parses")
            .totals
    );
    c.bench_function("resources refresh computed, 4096x64x4, 5000 jobs", |b| {
        b.iter(|| {
            computed(
                black_box(&status_all_online),
                black_box(&allocated),
                black_box(&config),
            )
        })
    });
    // The module's own path after an allocation change: all and down kept
    // from an unchanged resource.status, the allocated set kept from the
    // journal; only the counting is done again.
    let mut allocations = Allocations::default();
    allocations.begin_backlog();
    for (id, entry) in sched_value["allocated"]["execution"]["R_lite"]
        .as_array()
        .expect("R_lite")
        .iter()
        .enumerate()
    {
        let r = json!({"version": 1, "execution": {"R_lite": [entry]}}).to_string();
        let r = serde_json::value::RawValue::from_string(r).expect("json");
        allocations.alloc(
            id as i64,
            false,
            flux_prometheus::model::resources::JobR::read(&r).ok(),
        );
    }
    allocations.end_backlog();
    let (_, journal_set) = allocations.current().expect("complete");
    let sets = resources::StatusSets::derive(&status_all_online)
        .expect("parses")
        .expect("no rank offline");
    let from_journal = |status: &str, config: &str| {
        let view = resources::SchedView {
            all: &sets.all,
            down: &sets.down,
            allocated: journal_set,
        };
        resources::summarize_view(view, status, config).expect("parses")
    };
    assert_eq!(
        from_journal(&status_all_online, &config).totals,
        computed(&status_all_online, &allocated, &config).totals
    );
    c.bench_function(
        "resources refresh from the journal's allocated set, 4096x64x4, 5000 jobs",
        |b| b.iter(|| from_journal(black_box(&status_all_online), black_box(&config))),
    );
    c.bench_function("resources refresh, 4096x64x4, 5000 jobs", |b| {
        b.iter(|| {
            resources::summarize(black_box(&sched), black_box(&status), black_box(&config))
                .expect("parses")
        })
    });
}

criterion_group!(group, benches);
criterion_main!(group);
