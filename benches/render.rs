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
    largest_recount(c);
    c.bench_function("resources refresh, 4096x64x4, 5000 jobs", |b| {
        b.iter(|| {
            resources::summarize(black_box(&sched), black_box(&status), black_box(&config))
                .expect("parses")
        })
    });
}

/// The resources collector's work before a publish on the largest system
/// (BENCHMARKS.md, "The largest system"): 16,384 nodes x 96 cores x 4 GPUs
/// in two queues, 2,048 whole-node jobs, 8,333 of a core and a GPU and
/// 39,619 of a core; after one job more is allocated or freed, the ranks it
/// touched are counted again and the summary made.
fn largest_recount(c: &mut Criterion) {
    const NODES: u32 = 16_384;
    let r = json!({"version": 1, "execution": {
        "R_lite": [{"rank": format!("0-{}", NODES - 1), "children": {"core": "0-95", "gpu": "0-3"}}],
        "properties": {"batch": format!("0-{}", NODES / 2 - 1), "debug": format!("{}-{}", NODES / 2, NODES - 1)},
        "nodelist": [format!("fake[0-{}]", NODES - 1)], "starttime": 0.0, "expiration": 0.0}});
    let status = json!({"R": r, "online": format!("0-{}", NODES - 1), "offline": "",
        "exclude": "", "torpid": "", "drain": {"100-104": {"reason": "bad dimm", "timestamp": 1.0}}})
    .to_string();
    let config =
        json!({"queues": {"batch": {"requires": ["batch"]}, "debug": {"requires": ["debug"]}}})
            .to_string();
    let job = |rank: u32, cores: String, gpus: Option<u32>| {
        let mut children = json!({"core": cores});
        if let Some(g) = gpus {
            children["gpu"] = g.to_string().into();
        }
        let r = json!({"version": 1, "execution": {"R_lite": [{"rank": rank.to_string(), "children": children}]}});
        let r = serde_json::value::RawValue::from_string(r.to_string()).expect("json");
        flux_prometheus::model::resources::JobR::read(&r).ok()
    };
    let mut allocations = Allocations::default();
    allocations.begin_backlog();
    let mut id = 0i64;
    // Whole nodes: every eighth.
    for n in (0..NODES).step_by(8) {
        allocations.alloc(id, false, job(n, "0-95".into(), Some(0)));
        id += 1;
    }
    // Then a core (and a GPU for the first 8,333) on the other nodes.
    let mut placed = 0u32;
    'fill: for core in 0..96u32 {
        for n in (0..NODES).filter(|n| n % 8 != 0) {
            if placed == 8_333 + 39_619 {
                break 'fill;
            }
            let gpu = (placed < 8_333).then_some(placed / (NODES - NODES / 8) + 1);
            allocations.alloc(id, false, job(n, core.to_string(), gpu));
            id += 1;
            placed += 1;
        }
    }
    allocations.end_backlog();
    let sets = resources::StatusSets::derive(&status)
        .expect("parses")
        .expect("no rank offline");
    let (generation, set) = allocations.current().expect("complete");
    let view = resources::SchedView {
        all: &sets.all,
        down: &sets.down,
        allocated: set,
    };
    let mut kept = (
        generation,
        resources::Tally::new(view, &status, &config).expect("parses"),
    );
    let extra = id;
    let mut on = false;
    c.bench_function(
        "resources recount after one change, 16384x96x4, 50000 jobs",
        |b| {
            b.iter(|| {
                if on {
                    allocations.free(extra);
                } else {
                    allocations.alloc(extra, false, job(5, "95".into(), None));
                }
                on = !on;
                let (generation, set) = allocations.current().expect("complete");
                let view = resources::SchedView {
                    all: &sets.all,
                    down: &sets.down,
                    allocated: set,
                };
                let changed = allocations
                    .ranks_changed_since(kept.0)
                    .expect("kept changes");
                kept.1.recount(view, black_box(&changed));
                kept.0 = generation;
                kept.1.summary(set)
            })
        },
    );
}

criterion_group!(group, benches);
criterion_main!(group);
