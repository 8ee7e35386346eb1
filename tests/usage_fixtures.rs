//! Usage by user and project, the job map and the per-node rows, from the
//! payloads recorded from real brokers, against what `flux jobs -A` and
//! `flux resource status -s all` printed for the same instance.

mod common;

use std::collections::BTreeMap;

use common::{fixture, samples};
use flux_prometheus::collectors::users::{self, Folded};
use flux_prometheus::collectors::{jobmap, nodes as nodes_collector};
use flux_prometheus::model::idset::IdSet;
use flux_prometheus::model::jobflow::{JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS};
use flux_prometheus::model::nested::f58;
use flux_prometheus::model::nodes;
use flux_prometheus::model::resources::ResourceSet;
use flux_prometheus::model::roster::Roster;
use flux_prometheus::render::Rendered;
use serde_json::Value;

/// The recorded journal replayed into a roster, as the jobflow collector
/// keeps it.
fn roster() -> Roster {
    let all: Vec<Value> =
        serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("fixture parses");
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    let mut roster = Roster::default();
    flow.begin_backlog();
    roster.begin_backlog();
    for r in &all {
        flow.apply_tracking(&r.to_string(), None, None, Some(&mut roster))
            .expect("journal response parses");
    }
    roster.end_backlog();
    roster
}

/// `flux jobs -a --json`'s jobs that `flux jobs -A` lists (active ones).
fn active_cli_jobs() -> Vec<Value> {
    let cli: Value = serde_json::from_str(&fixture("cli.jobs.json")).expect("fixture parses");
    cli["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["state"] != "INACTIVE")
        .cloned()
        .collect()
}

fn is_running(job: &Value) -> bool {
    matches!(job["state"].as_str(), Some("RUN" | "CLEANUP"))
}

#[test]
fn jobs_and_allocations_by_user_are_those_of_flux_jobs_a() {
    common::each_set(|| {
        let roster = roster();
        let (by_uid, by_project) = roster.usage().expect("read to the present");
        let cli = active_cli_jobs();
        // The recorded uids' names, as flux jobs printed them.
        let names: BTreeMap<u32, String> = cli
            .iter()
            .map(|j| {
                (
                    j["userid"].as_u64().unwrap() as u32,
                    j["username"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let name = |uid: u32| names.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
        let found = users::count(by_uid, by_project, &name, 100, &mut Folded::default());
        let mut want: BTreeMap<&str, (u64, u64, u64, IdSet)> = BTreeMap::new();
        for j in &cli {
            let row =
                want.entry(j["username"].as_str().unwrap())
                    .or_insert((0, 0, 0, IdSet::new()));
            if is_running(j) {
                row.1 += 1;
                row.2 += j["ncores"].as_u64().unwrap_or(0);
                let ranks = j["ranks"].as_str().unwrap_or("").trim_matches(['[', ']']);
                row.3.union_with(&IdSet::parse(ranks).unwrap());
            } else {
                row.0 += 1;
            }
        }
        assert!(!want.is_empty());
        for (user, (pending, running, cores, ranks)) in &want {
            let got = found.users[*user];
            assert_eq!((got.pending, got.running), (*pending, *running), "{user}");
            assert_eq!(got.cores, *cores, "{user}");
            assert_eq!(got.nodes, ranks.count(), "{user}");
        }
        assert_eq!(found.users.len(), want.len());
        // Rendered as a user sees it.
        let mut state = flux_prometheus::state::State::with_collectors(&[users::NAME]);
        state.set(users::SECTION, found);
        let s = samples(&flux_prometheus::collectors::render(&state));
        let (user, (pending, ..)) = want.iter().next().unwrap();
        assert_eq!(
            s[&format!("flux_user_jobs{{user=\"{user}\",state=\"pending\"}}")],
            *pending as f64
        );
    });
}

#[test]
fn the_job_map_has_every_node_of_every_running_job_as_flux_jobs_shows_it() {
    common::each_set(|| {
        let mut roster = roster();
        let map = common::recorded_jobmap(&mut roster);
        let mut rendered = Rendered::default();
        jobmap::render(&map, &mut rendered);
        let out = rendered.text();
        let running: Vec<Value> = active_cli_jobs().into_iter().filter(is_running).collect();
        assert!(!running.is_empty());
        let mut expected_gpus = 0;
        for job in &running {
            let id = f58(job["id"].as_u64().unwrap());
            let nodelist = job["nodelist"].as_str().unwrap();
            for host in flux_prometheus::model::hostlist::expand(nodelist).unwrap() {
                let series = format!(
                    "flux_job_node_info{{jobid=\"{id}\",user=\"root\",node=\"{host}\"}} 1\n"
                );
                assert!(out.contains(&series), "{series} not in\n{out}");
            }
            expected_gpus += job["ngpus"].as_u64().unwrap_or(0);
        }
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with("flux_job_node_info{"))
                .count() as u64,
            running
                .iter()
                .map(|j| j["nnodes"].as_u64().unwrap())
                .sum::<u64>()
        );
        // Each GPU once, with the labels dcgm-exporter uses.
        let gpu_lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("flux_job_gpu_info{"))
            .collect();
        if expected_gpus > 0 {
            assert_eq!(gpu_lines.len() as u64, expected_gpus);
        }
        assert!(gpu_lines
            .iter()
            .all(|l| l.contains(",Hostname=\"node") && l.contains(",gpu=\"")));
    });
}

/// `flux resource status -s all -no '{state} {nnodes} {ranks} {nodelist}'`:
/// each state's ranks, and the offline ones (marked with `*`).
fn cli_states() -> BTreeMap<String, IdSet> {
    let mut states: BTreeMap<String, IdSet> = BTreeMap::new();
    for line in fixture("cli.resource-status-all.txt").lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (state, offline) = match w[0].strip_suffix('*') {
            Some(s) => (s, true),
            None => (w[0], false),
        };
        let ranks = IdSet::parse(w.get(2).copied().unwrap_or("")).unwrap();
        states
            .entry(state.to_string())
            .or_default()
            .union_with(&ranks);
        if offline {
            states
                .entry("offline".into())
                .or_default()
                .union_with(&ranks);
        }
    }
    states
}

#[test]
fn every_nodes_states_are_those_of_flux_resource_status_s_all() {
    common::each_set(|| {
        let allocated: Value =
            serde_json::from_str(&fixture("job-manager.resource-status.json")).unwrap();
        let allocated = ResourceSet::from_rv1_json(Some(
            &serde_json::value::RawValue::from_string(allocated["allocated"].to_string()).unwrap(),
        ))
        .unwrap();
        let stats: Value = serde_json::from_str(&fixture("module.stats-get.json")).unwrap();
        let housekeeping = stats["job-manager"]["housekeeping"]["running"]
            .as_object()
            .map(|r| flux_prometheus::collectors::internals::housekeeping_ranks(r).unwrap())
            .unwrap_or_default();
        let view = nodes::rows(
            &fixture("resource.status.json"),
            &allocated,
            &housekeeping,
            &mut Vec::new(),
        )
        .unwrap();
        let want = cli_states();
        for node in &view.nodes {
            let got: Vec<&str> = node.states().collect();
            for (state, ranks) in &want {
                assert_eq!(
                    got.contains(&state.as_str()),
                    ranks.contains(node.rank),
                    "rank {} ({}) state {state}: module says {got:?}",
                    node.rank,
                    node.host
                );
            }
        }
        // Totals as flux resource list -s all counts them, per node.
        let rlist = fixture("cli.resource-rlist.txt");
        assert!(!rlist.is_empty());
        let mut rendered = Rendered::default();
        nodes_collector::render(&view, &mut rendered);
        let s = samples(rendered.text());
        let drained = want["drained"].iter().next().expect("a drained node");
        let host = view.host(drained).unwrap();
        assert_eq!(
            s[&format!(
                "flux_node_drain_info{{node=\"{host}\",rank=\"{drained}\",reason=\"bad dimm\"}}"
            )],
            1.0
        );
        assert_eq!(
            s[&format!("flux_node_state{{node=\"{host}\",rank=\"{drained}\",state=\"drained\"}}")],
            1.0
        );
        let all_cores: f64 = s
            .iter()
            .filter(|(k, _)| k.starts_with("flux_node_cores{"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(all_cores, 6.0 * 8.0);
        let allocated_cores: f64 = s
            .iter()
            .filter(|(k, _)| k.starts_with("flux_node_allocated_cores{"))
            .map(|(_, v)| v)
            .sum();
        // `{state} {queue} {nnodes} {ncores} {ngpus} {nodelist}`, by queue.
        let cli_allocated: u64 = fixture("cli.resource-list.txt")
            .lines()
            .filter(|l| l.split_whitespace().next() == Some("allocated"))
            .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
            .sum();
        assert_eq!(allocated_cores, cli_allocated as f64);
    });
}

/// The core- and node-seconds by queue, user and project are the sums over
/// `flux jobs -a` of `ncores` and `nnodes` times the run time (from
/// `t_run` to `t_cleanup`, or to the instant read for running jobs), for
/// the jobs of the recorded journal, inactive ones included, read at any
/// instant.
#[test]
fn allocated_seconds_are_those_of_flux_jobs_a() {
    common::each_set(|| {
        let roster = roster();
        let accrued = roster.accrued().expect("read to the present");
        assert!(accrued.growing(), "the recorded set has running jobs");
        let cli: Value = serde_json::from_str(&fixture("cli.jobs.json")).expect("parses");
        let jobs = cli["jobs"].as_array().expect("jobs");
        let latest = jobs
            .iter()
            .filter_map(|j| j["t_run"].as_f64())
            .fold(0.0, f64::max);
        let mut inactive = 0;
        for now in [latest + 1.0, latest + 3600.0] {
            // (cores, nodes) by queue, uid and project.
            let mut want: BTreeMap<(&str, String), (f64, f64)> = BTreeMap::new();
            for job in jobs {
                let Some(t_run) = job["t_run"].as_f64() else {
                    continue;
                };
                let end = job["t_cleanup"].as_f64().unwrap_or(now);
                inactive += usize::from(job["state"] == "INACTIVE");
                let secs = end - t_run;
                let cores = job["ncores"].as_f64().expect("ncores") * secs;
                let nodes = job["nnodes"].as_f64().expect("nnodes") * secs;
                let project = job["project"]
                    .as_str()
                    .or(job["bank"].as_str())
                    .unwrap_or("")
                    .to_string();
                for key in [
                    ("queue", job["queue"].as_str().unwrap_or("").to_string()),
                    ("uid", job["userid"].to_string()),
                    ("project", project),
                ] {
                    let sum = want.entry(key).or_default();
                    sum.0 += cores;
                    sum.1 += nodes;
                }
            }
            let mut got: BTreeMap<(&str, String), (f64, f64)> = BTreeMap::new();
            for (q, a) in &accrued.by_queue {
                let s = a.at(now);
                got.insert(
                    ("queue", q.as_deref().unwrap_or("").into()),
                    (s.cores, s.nodes),
                );
            }
            for (uid, a) in &accrued.by_uid {
                let s = a.at(now);
                let uid = uid.map_or("null".to_string(), |u| u.to_string());
                got.insert(("uid", uid), (s.cores, s.nodes));
            }
            for (p, a) in &accrued.by_project {
                let s = a.at(now);
                got.insert(
                    ("project", p.as_deref().unwrap_or("").into()),
                    (s.cores, s.nodes),
                );
            }
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            );
            for (key, (cores, nodes)) in &want {
                let (got_cores, got_nodes) = got[key];
                assert!(
                    (got_cores - cores).abs() <= 1e-6 * cores.max(1.0)
                        && (got_nodes - nodes).abs() <= 1e-6 * nodes.max(1.0),
                    "{key:?} at {now}: module {got_cores} core-s {got_nodes} node-s, flux jobs {cores} {nodes}"
                );
            }
        }
        assert!(inactive > 0, "inactive jobs count too");
    });
}

/// Each node's resource journal events: node2 was drained in the recorded
/// instance and undrained live; every node with a broker came online once.
#[test]
fn node_events_per_node_are_the_journals() {
    common::each_set(|| {
        let mut out = Rendered::default();
        nodes_collector::render(&common::recorded_nodes(), &mut out);
        let s = samples(out.text());
        let key = |node: &str, rank: u32, event: &str| {
            format!("flux_node_events_total{{node=\"{node}\",rank=\"{rank}\",event=\"{event}\"}}")
        };
        assert_eq!(common::value(&s, &key("node2", 2, "drain")), 1.0);
        assert_eq!(common::value(&s, &key("node2", 2, "undrain")), 1.0);
        assert_eq!(common::value(&s, &key("node1", 1, "drain")), 0.0);
        for rank in 0..3 {
            let node = format!("node{rank}");
            assert_eq!(common::value(&s, &key(&node, rank, "online")), 1.0);
        }
    });
}
