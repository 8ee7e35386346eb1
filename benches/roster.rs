//! Criterion bench for the users and jobmap refreshes at the largest
//! system's load (BENCHMARKS.md, "The largest system"): 60,000 active jobs
//! on 16,384 nodes, 50,000 of them running, owned by 200 users in 20
//! projects. Each refresh is measured as it was (everything counted or
//! mapped again) and as it is (the roster's tallies, and the map changed
//! where jobs changed), in one run.
//!
//!   cargo bench --bench roster

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use flux_prometheus::collectors::jobmap::Mapper;
use flux_prometheus::collectors::users::{self, Folded};
use flux_prometheus::model::journal::EventContext;
use flux_prometheus::model::resources::JobR;
use flux_prometheus::model::roster::{Changes, Roster};
use flux_prometheus::model::usage::Tallies;
use serde_json::value::RawValue;

const NODES: i64 = 16_384;
const RUNNING: i64 = 50_000;
const PENDING: i64 = 10_000;

/// A one-core job's R on the node of rank `rank`.
fn r(rank: i64) -> Box<RawValue> {
    RawValue::from_string(format!(
        r#"{{"version":1,"execution":{{"R_lite":[{{"rank":"{rank}","children":{{"core":"{}"}}}}],"nodelist":["node{rank}"],"starttime":0,"expiration":0}}}}"#,
        rank % 96
    ))
    .expect("valid JSON")
}

fn submit(roster: &mut Roster, id: i64) {
    let uid = 1000 + (id % 200) as u32;
    roster.submit(
        id,
        Some(uid),
        Some(&format!("project{}", id % 20)),
        Some("batch"),
    );
}

/// The largest system's roster, read to the present, with changes
/// watched (as with the jobmap collector on).
fn loaded() -> Roster {
    let mut roster = Roster::default();
    roster.begin_backlog();
    for id in 1..=RUNNING {
        submit(&mut roster, id);
        roster.event(
            id,
            "alloc",
            &EventContext::default(),
            Some(Ok(&JobR::read(&r(id % NODES)).expect("R"))),
        );
    }
    for id in RUNNING + 1..=RUNNING + PENDING {
        submit(&mut roster, id);
    }
    roster.end_backlog();
    roster.watch_changes();
    roster
}

fn name(uid: u32) -> String {
    format!("user{uid}")
}

/// The oldest running job, and the next job ID.
struct Churn {
    oldest: i64,
    next: i64,
}

impl Churn {
    fn new() -> Churn {
        Churn {
            oldest: 1,
            next: RUNNING + PENDING + 1,
        }
    }

    /// The 100 oldest running jobs end and 100 start: a busy interval's
    /// changes. The active jobs stay at 60,000.
    fn step(&mut self, roster: &mut Roster, allocs: &[Box<RawValue>]) {
        for alloc in allocs {
            if (RUNNING + 1..=RUNNING + PENDING).contains(&self.oldest) {
                // The pending jobs stay pending.
                self.oldest = RUNNING + PENDING + 1;
            }
            roster.event(self.oldest, "clean", &EventContext::default(), None);
            self.oldest += 1;
            submit(roster, self.next);
            // R is read as the job-flow collector reads it, once per alloc.
            let job_r = JobR::read(alloc).expect("R");
            roster.event(
                self.next,
                "alloc",
                &EventContext::default(),
                Some(Ok(&job_r)),
            );
            self.next += 1;
        }
    }
}

fn benches(c: &mut Criterion) {
    let mut roster = loaded();
    let mut group = c.benchmark_group("roster at 60000 active jobs");
    group.sample_size(20);
    group.bench_function("users: every job counted again (before)", |b| {
        b.iter(|| {
            let (_, jobs) = roster.current().expect("current");
            let mut by_uid = Tallies::default();
            let mut by_project = Tallies::default();
            for job in jobs.values() {
                by_uid.add(job.uid, job);
                by_project.add(job.project.clone(), job);
            }
            users::count(&by_uid, &by_project, &name, 100, &mut Folded::default())
        })
    });
    group.bench_function("users: the roster's tallies (now)", |b| {
        b.iter(|| {
            let (by_uid, by_project) = roster.usage().expect("current");
            users::count(by_uid, by_project, &name, 100, &mut Folded::default())
        })
    });
    let everything = Changes {
        all: true,
        jobs: Default::default(),
    };
    group.bench_function("jobmap: every job mapped again (before)", |b| {
        b.iter(|| {
            let (_, jobs) = roster.current().expect("current");
            let mut mapper = Mapper::default();
            mapper.update(jobs, black_box(&everything), &name);
            mapper.map()
        })
    });
    let allocs: Vec<Box<RawValue>> = (0..100).map(|k| r(k * 97 % NODES)).collect();
    let mut churn = Churn::new();
    group.bench_function(
        "100 jobs end and 100 start: the roster's events alone",
        |b| {
            b.iter(|| {
                churn.step(&mut roster, &allocs);
                roster.take_changes()
            })
        },
    );
    group.bench_function(
        "100 jobs end and 100 start: the events, then the map changed where they changed (now)",
        |b| {
            let (_, jobs) = roster.current().expect("current");
            let mut mapper = Mapper::default();
            mapper.update(jobs, &everything, &name);
            roster.take_changes();
            b.iter(|| {
                churn.step(&mut roster, &allocs);
                let changes = roster.take_changes();
                let (_, jobs) = roster.current().expect("current");
                mapper.update(jobs, &changes, &name);
                mapper.map()
            })
        },
    );
    group.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
