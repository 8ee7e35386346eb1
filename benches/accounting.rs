//! Criterion bench for the accounting collector's own work at a large
//! site's size (BENCHMARKS.md, "flux-accounting at size"): the priority
//! plugin's answer with 10,000 associations (5,000 users in two banks) and
//! 500 held jobs, read, then counted into what is exported (100 apart, the
//! rest folded), then rendered.
//!
//!   cargo bench --bench accounting

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use flux_prometheus::collectors::accounting::{self as collector};
use flux_prometheus::model::accounting;
use flux_prometheus::state::State;
use serde_json::json;

const USERS: u32 = 5_000;
const HELD: usize = 500;

/// The plugin's answer, in the shape of flux-accounting 0.60's.
fn answer() -> String {
    let bank = |name: &str, held: usize| {
        let held_jobs: serde_json::Map<String, serde_json::Value> = (0..held)
            .map(|i| {
                (
                    (1_000_000 + i).to_string(),
                    json!({"nnodes": 1, "ncores": 1, "queue": "batch",
                           "deps": ["max-running-jobs-user-limit"]}),
                )
            })
            .collect();
        json!({"bank_name": name, "fairshare": 0.5, "max_run_jobs": 5, "cur_run_jobs": 1,
            "max_active_jobs": 7, "cur_active_jobs": 1, "queues": [], "queue_factor": 0,
            "projects": ["*"], "def_project": "*", "max_nodes": 2147483647,
            "max_cores": 2147483647, "cur_nodes": 1, "cur_cores": 1, "active": 1,
            "cur_sched_jobs": 0, "max_sched_jobs": 2147483647,
            "queue_usage": {"batch": {"cur_run_jobs": 1, "cur_nodes": 1, "cur_sched_jobs": 0,
                "cur_sched_nodes": 0, "cur_sched_cores": 0}},
            "held_jobs": held_jobs})
    };
    let users: Vec<serde_json::Value> = (0..USERS)
        .map(|i| {
            let held = if i == 0 { HELD } else { 0 };
            json!({"userid": 10_000 + i, "banks": [bank("a", held), bank("b", 0)]})
        })
        .collect();
    let queue = |name: &str| {
        json!({"name": name, "min_nodes_per_job": 1, "max_nodes_per_job": 2147483647,
            "max_time_per_job": 2147483647, "priority": 0, "max_running_jobs": 100,
            "max_nodes_per_assoc": 2147483647, "max_sched_jobs": 2147483647,
            "max_sched_nodes_per_assoc": 2147483647, "max_sched_cores_per_assoc": 2147483647})
    };
    json!({"name": "mf_priority.so", "path": "/usr/lib/flux/job-manager/plugins/mf_priority.so",
        "mf_priority_map": users, "queues": {"batch": queue("batch"), "debug": queue("debug")},
        "projects": ["*"]})
    .to_string()
}

fn bench(c: &mut Criterion) {
    let payload = answer();
    let found = accounting::parse(&payload).expect("reads");
    assert_eq!(found.associations.len(), 2 * USERS as usize);
    let names = |uid: u32| format!("user{uid}");
    let mut g = c.benchmark_group("accounting");
    g.sample_size(20);
    g.bench_function("read the answer (10,000 associations)", |b| {
        b.iter(|| accounting::parse(black_box(&payload)).expect("reads"))
    });
    g.bench_function("count (100 apart)", |b| {
        b.iter(|| collector::count(black_box(&found), &names, 100, 0))
    });
    let mut state = State::with_collectors(&["accounting"]);
    state.set(collector::SECTION, collector::count(&found, &names, 100, 0));
    g.bench_function("render", |b| {
        b.iter(|| flux_prometheus::collectors::render(black_box(&state)))
    });
    g.finish();
    eprintln!("answer: {} bytes", payload.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
