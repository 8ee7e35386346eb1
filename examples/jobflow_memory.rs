//! Memory of the job-flow model after N jobs have gone by (BENCHMARKS.md):
//! feeds the live journal events of N one-core jobs, 100 active at a time,
//! through `JobFlow` and prints the process's resident memory.
//!
//!   cargo run --release --example jobflow_memory -- 1000
//!   cargo run --release --example jobflow_memory -- 1000000

use flux_prometheus::model::jobflow::{JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS};
use serde_json::json;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn event(id: i64, name: &str, t: f64, context: serde_json::Value) -> String {
    json!({"id": id, "events": [{"name": name, "timestamp": t, "context": context}]}).to_string()
}

fn main() {
    let jobs: i64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let jobspec = json!({"attributes": {"system": {"queue": "batch"}},
        "resources": [{"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}]}]});
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    let start_rss = rss_kb();
    let window = 100;
    for id in 1..=jobs + window {
        let t = id as f64;
        if id <= jobs {
            let mut submit: serde_json::Value = serde_json::from_str(&event(
                id,
                "submit",
                t,
                json!({"urgency": 16, "userid": 1000}),
            ))
            .expect("json");
            submit["jobspec"] = jobspec.clone();
            for e in [
                submit.to_string(),
                event(id, "depend", t, json!(null)),
                event(id, "alloc", t, json!(null)),
                event(id, "start", t, json!(null)),
            ] {
                flow.apply(&e).expect("applies");
            }
        }
        // The job submitted `window` jobs ago finishes: 100 stay active.
        let done = id - window;
        if done >= 1 {
            for e in [
                event(done, "finish", t, json!({"status": 0})),
                event(done, "clean", t, json!(null)),
            ] {
                flow.apply(&e).expect("applies");
            }
        }
    }
    let summary = flow.summary();
    let finished: u64 = summary
        .queues
        .values()
        .map(|q| q.finished["completed"])
        .sum();
    println!(
        "jobs {jobs}: finished {finished}, active {}, RSS {} kB (at start {start_rss} kB)",
        flow.active_jobs(),
        rss_kb()
    );
}
