//! Criterion bench for the job-flow bar: the module's CPU per journal
//! event (parse + apply), on the live event stream of one job's life.
//!
//!   cargo bench --bench jobflow

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use flux_prometheus::model::jobflow::{JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS};
use serde_json::json;

/// The live journal responses of one job, as job-manager sends them: one
/// event each, the jobspec with submit and R with alloc.
fn one_job(id: i64, t: f64) -> Vec<String> {
    let jobspec = json!({"attributes": {"system": {"cwd": "/home/user", "duration": 0, "queue": "batch",
        "shell": {"options": {"rlimit": {"as": -1, "core": 0, "cpu": -1}}}}},
        "resources": [{"count": 1, "label": "task", "type": "slot", "with": [{"count": 1, "type": "core"}]}],
        "tasks": [{"command": ["true"], "count": {"per_slot": 1}, "slot": "task"}], "version": 1});
    let r = json!({"version": 1, "execution": {"R_lite": [{"rank": "0", "children": {"core": "3"}}],
        "nodelist": ["node0"], "starttime": t, "expiration": 0.0}});
    let ev = |name: &str, dt: f64, context: serde_json::Value| json!({"id": id, "events": [{"name": name, "timestamp": t + dt, "context": context}]});
    let mut submit = ev(
        "submit",
        0.0,
        json!({"urgency": 16, "userid": 1000, "flags": 0, "version": 1}),
    );
    submit["jobspec"] = jobspec;
    let mut alloc = ev(
        "alloc",
        0.004,
        json!({"annotations": {"sched": {"resource_summary": "rank0/core3"}}}),
    );
    alloc["R"] = r;
    [
        submit,
        ev("validate", 0.001, json!(null)),
        ev("depend", 0.002, json!(null)),
        ev("priority", 0.003, json!({"priority": 16})),
        alloc,
        ev("start", 0.005, json!(null)),
        ev("finish", 0.105, json!({"status": 0})),
        ev("release", 0.106, json!({"ranks": "all", "final": true})),
        ev("free", 0.107, json!(null)),
        ev("clean", 0.108, json!(null)),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

fn benches(c: &mut Criterion) {
    let events: Vec<String> = (0..1000)
        .flat_map(|i| one_job(i + 1, 1000.0 + i as f64))
        .collect();
    let n = events.len() as u64;
    let mut group = c.benchmark_group("jobflow");
    group.throughput(criterion::Throughput::Elements(n));
    group.bench_function(format!("apply {n} journal events (1000 jobs)"), |b| {
        b.iter(|| {
            let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
            for e in &events {
                flow.apply(black_box(e)).expect("parses");
            }
            flow
        })
    });
    group.finish();

    // The summary the collector publishes at most ten times a second under
    // churn, at the largest system's load: 60,000 active jobs, 40,000 of
    // them allocated and 20,000 pending (10,000 eligible, 10,000 blocked).
    // The same with the opt-in pending reasons and wait split, whose
    // tallies the summary also reads.
    let load = |opt_in: bool| {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        if opt_in {
            flow.explain_pending();
            flow.time_wait_phases();
        }
        for i in 0..60_000i64 {
            let events = one_job(i + 1, 1000.0 + i as f64);
            let upto = match i % 3 {
                0 | 1 if i < 40_000 => 6, // through start
                _ if i % 2 == 0 => 4,     // through priority: eligible
                _ => 1,                   // submitted: blocked on depend
            };
            for e in &events[..upto] {
                flow.apply(e).expect("parses");
            }
        }
        flow
    };
    let flow = load(false);
    let opted = load(true);
    let mut group = c.benchmark_group("jobflow summary");
    group.bench_function("60000 active jobs, 20000 pending", |b| {
        b.iter(|| black_box(&flow).summary())
    });
    group.bench_function(
        "60000 active jobs, 20000 pending, with pending-reasons and wait-phases",
        |b| b.iter(|| black_box(&opted).summary()),
    );
    group.finish();

    // Rank 0 at 16,384 ranks with 4 running jobs each: one sampling
    // period's batches, each read and taken as the samples service does,
    // then the summary a publish reads with every job's samples in it.
    let ranks = 16_384u32;
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    for i in 0..i64::from(ranks) * 4 {
        for e in &one_job(i + 1, 1000.0 + i as f64)[..6] {
            flow.apply(e).expect("parses");
        }
    }
    let batches: Vec<String> = (0..ranks)
        .map(|rank| {
            let jobs: Vec<serde_json::Value> = (0..4u64)
                .map(|j| {
                    // Its figures in the order usage::live::SAMPLE_FORM gives.
                    json!([u64::from(rank) * 4 + j + 1, 1000, 16, 1, 64, 12345.6, 13.2,
                        34_359_738_368u64, 40_000_000_000u64, "processes"])
                })
                .collect();
            json!({"version": 1, "rank": rank, "hostname": format!("node{rank}"), "period": 30.0, "jobs": jobs})
                .to_string()
        })
        .collect();
    let mut group = c.benchmark_group("live samples at rank 0");
    group.sample_size(10);
    group.bench_function(
        "one period: 16384 ranks' batches of 4 jobs, read and taken",
        |b| {
            b.iter(|| {
                for text in &batches {
                    let batch = usage::live::read_batch(black_box(text)).expect("reads");
                    flow.take_live(2000.0, batch, 0);
                }
            })
        },
    );
    // The same batches as rank 0 takes them through the relays of a
    // kary:32 tree (as scripts/send-samples sends them): each of rank 0's
    // 32 children sends a bundle a tenth of the period, with the batches of
    // the ranks of its part of the tree whose look fell in that tenth (the
    // module places each rank's look by Fibonacci hashing); 321 messages.
    let bundles = kary_bundles(&batches, 32);
    group.bench_function(
        "one period: 16384 ranks' batches of 4 jobs in 321 bundles, read and taken",
        |b| {
            b.iter(|| {
                for text in &bundles {
                    let batches = usage::live::read_samples(black_box(text)).expect("reads");
                    flow.prefetch_live(batches.iter().flatten().map(|b| b.rank));
                    for batch in batches {
                        flow.take_live(2000.0, batch.expect("reads"), 0);
                    }
                }
            })
        },
    );
    // The same, with what the module keeps out of the caches, as it is in
    // a broker when a period's batches come 30 s after the last: a 1 GiB
    // buffer is written before each period (not timed); the bundles are
    // fresh, as a message just received is.
    let mut evict = vec![0u8; 1 << 30];
    group.bench_function(
        "one period: 16384 ranks' batches of 4 jobs in 321 bundles, read and taken, caches cold",
        |b| {
            b.iter_batched(
                || {
                    for (i, byte) in evict.iter_mut().enumerate().step_by(64) {
                        *byte = byte.wrapping_add(i as u8);
                    }
                    black_box(&evict);
                    bundles.clone()
                },
                |bundles| {
                    for text in &bundles {
                        let batches = usage::live::read_samples(black_box(text)).expect("reads");
                        flow.prefetch_live(batches.iter().flatten().map(|b| b.rank));
                        for batch in batches {
                            flow.take_live(2000.0, batch.expect("reads"), 0);
                        }
                    }
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.bench_function("summary with 65536 sampled jobs", |b| {
        b.iter(|| black_box(&flow).summary())
    });
    group.finish();
}

/// The bundles rank 0 takes in a period from the relays of a kary:`k`
/// tree, in the order they come: rank 0's own batch, then for each tenth
/// of the period, each child's bundle of its part of the tree's batches
/// whose look fell in that tenth.
fn kary_bundles(batches: &[String], k: u64) -> Vec<String> {
    let tenth = |rank: u64| {
        let frac = (rank.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
        ((frac * 10.0) as usize).min(9)
    };
    let top = |mut rank: u64| {
        while rank > k {
            rank = (rank - 1) / k;
        }
        rank
    };
    let mut held: std::collections::BTreeMap<(usize, u64), Vec<&str>> = Default::default();
    for (rank, batch) in batches.iter().enumerate().skip(1) {
        let rank = rank as u64;
        held.entry((tenth(rank), top(rank)))
            .or_default()
            .push(batch);
    }
    std::iter::once(batches[0].clone())
        .chain(
            held.into_values()
                .map(|part| format!(r#"{{"version":1,"bundle":[{}]}}"#, part.join(","))),
        )
        .collect()
}

criterion_group!(group, benches);
criterion_main!(group);
