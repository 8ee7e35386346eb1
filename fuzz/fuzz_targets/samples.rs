//! Lines of text as what the ranks' modules send rank 0 (`NAME.samples`: a
//! rank's batch, or a bundle of batches) and what a job shell registers,
//! through the readers and into the job flow's sums of running jobs' use.
//! Four jobs are running (IDs 1 to 4, user 1000); a line `end N` ends job
//! N. A panic is a finding, and so are sums that do not come back to zero
//! once every batch has gone stale.
#![no_main]

use flux_prometheus::model::jobflow::{
    JobFlow, LiveFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS,
};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use usage::live;

/// The journal events of job `id`, from its submission to its start
/// (`running`), or from its finish to its cleanup.
fn events(id: u64, running: bool) -> Vec<String> {
    let ev = |name: &str, context: serde_json::Value| {
        json!({"id": id, "events": [{"name": name, "timestamp": 1000.0, "context": context}]})
    };
    if !running {
        return [
            ev("finish", json!({"status": 0})),
            ev("release", json!({"ranks": "all", "final": true})),
            ev("free", json!(null)),
            ev("clean", json!(null)),
        ]
        .iter()
        .map(|e| e.to_string())
        .collect();
    }
    let mut submit = ev(
        "submit",
        json!({"urgency": 16, "userid": 1000, "flags": 0, "version": 1}),
    );
    submit["jobspec"] = json!({"attributes": {"system": {"duration": 0, "queue": "batch"}},
        "resources": [{"count": 1, "label": "task", "type": "slot", "with": [{"count": 1, "type": "core"}]}],
        "tasks": [{"command": ["true"], "count": {"per_slot": 1}, "slot": "task"}], "version": 1});
    let mut alloc = ev("alloc", json!({}));
    alloc["R"] = json!({"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "0"}}],
        "nodelist": ["node0"], "starttime": 1000.0, "expiration": 0.0}});
    [
        submit,
        ev("validate", json!(null)),
        ev("depend", json!(null)),
        ev("priority", json!({"priority": 16})),
        alloc,
        ev("start", json!(null)),
    ]
    .iter()
    .map(|e| e.to_string())
    .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    flow.know_queues(&["batch"]);
    for id in 1..=4 {
        for e in events(id, true) {
            flow.apply(&e).expect("a job's own events read");
        }
    }
    flow.show_live_jobs(2);
    let mut now = 2000.0;
    for line in text.lines().take(256) {
        now += 1.0;
        if let Some(id) = line.strip_prefix("end ") {
            if let Ok(id @ 1..=4) = id.trim().parse::<u64>() {
                for e in events(id, false) {
                    let _ = flow.apply(&e);
                }
            }
            continue;
        }
        let _ = live::read_registration(line);
        if let Ok(batches) = live::split_samples(line) {
            for batch in batches {
                let _ = live::read_batch(batch.get());
            }
        }
        if let Ok(batches) = live::read_samples(line) {
            for batch in batches.into_iter().flatten() {
                flow.take_live(now, batch, 0);
            }
        }
        let _ = flow.live_job(1, now, 1000, 0);
        let _ = flow.summary();
    }
    // A day's three periods later, every batch is stale, and the sums of
    // what running jobs use are nothing again.
    flow.expire_live(now + 3.0 * live::MAX_PERIOD + 1.0);
    let summary = flow.summary();
    assert_eq!(summary.live_ranks, 0);
    for (key, sums) in &summary.live {
        assert_eq!(*sums, LiveFlow::default(), "{key:?}");
    }
});
