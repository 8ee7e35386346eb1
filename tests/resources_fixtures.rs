//! Resource metrics rendered from recorded payloads agree, row for row, with
//! what `flux resource list` and `flux resource status` printed.

mod common;

use std::collections::BTreeMap;

use common::{fixture, samples, value};
use flux_prometheus::model::resources;
use flux_prometheus::render;
use flux_prometheus::state::State;

/// The instance config as `config.get` returns it, from the TOML recorded.
const CONFIG: &str =
    r#"{"queues": {"batch": {"requires": ["batch"]}, "debug": {"requires": ["debug"]}}}"#;

fn rendered() -> BTreeMap<String, f64> {
    let summary = resources::summarize(
        &fixture("resource.sched-status.json"),
        &fixture("resource.status.json"),
        CONFIG,
    )
    .expect("fixtures parse");
    let mut state = State::with_collectors(&["resources"]);
    state.resources = Some(summary);
    samples(&render::text(&state))
}

#[test]
fn config_fixture_is_what_the_test_assumes() {
    let toml = fixture("instance-config.toml");
    assert!(
        toml.contains("[queues.batch]\nrequires = [\"batch\"]")
            && toml.contains("[queues.debug]\nrequires = [\"debug\"]")
    );
}

#[test]
fn per_queue_rows_equal_flux_resource_list() {
    let s = rendered();
    // Rows as printed: {state} {queue} {nnodes} {ncores} {ngpus} {nodelist};
    // states flux leaves out have no resources in that queue.
    let mut expected: BTreeMap<(String, String), [f64; 3]> = BTreeMap::new();
    for q in ["batch", "debug"] {
        for st in ["free", "allocated", "down"] {
            expected.insert((q.into(), st.into()), [0.0; 3]);
        }
    }
    for line in fixture("cli.resource-list.txt")
        .lines()
        .filter(|l| !l.is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<f64>().unwrap();
        expected.insert((f[1].into(), f[0].into()), [n(2), n(3), n(4)]);
    }
    for ((queue, st), [nodes, cores, gpus]) in expected {
        for (kind, want) in [("nodes", nodes), ("cores", cores), ("gpus", gpus)] {
            let key = format!("flux_queue_resource_{kind}{{queue=\"{queue}\",state=\"{st}\"}}");
            assert_eq!(value(&s, &key), want, "{key}");
        }
    }
}

#[test]
fn instance_rows_equal_the_sum_of_disjoint_queues() {
    // The two queues' nodes are disjoint here, so flux resource list without
    // a queue column prints their sums.
    let s = rendered();
    let mut sums: BTreeMap<String, [f64; 3]> = BTreeMap::new();
    for line in fixture("cli.resource-list.txt")
        .lines()
        .filter(|l| !l.is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let row = sums.entry(f[0].into()).or_default();
        for i in 0..3 {
            row[i] += f[2 + i].parse::<f64>().unwrap();
        }
    }
    for st in ["free", "allocated", "down"] {
        let want = sums.get(st).copied().unwrap_or_default();
        for (i, kind) in ["nodes", "cores", "gpus"].iter().enumerate() {
            assert_eq!(
                value(&s, &format!("flux_resource_{kind}{{state=\"{st}\"}}")),
                want[i],
                "{kind} {st}"
            );
        }
    }
}

#[test]
fn node_health_equals_flux_resource_status() {
    let s = rendered();
    // Lines: {state} {nnodes} {ranks} {nodelist}; a trailing * marks offline.
    let mut avail = 0.0;
    let mut offline = 0.0;
    let mut by_state: BTreeMap<String, f64> = BTreeMap::new();
    for line in fixture("cli.resource-status.txt")
        .lines()
        .filter(|l| !l.is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n: f64 = f[1].parse().unwrap();
        let state = f[0].trim_end_matches('*');
        if f[0].ends_with('*') {
            offline += n;
        }
        if state == "avail" {
            avail += n;
        } else {
            *by_state.entry(state.into()).or_default() += n;
        }
    }
    let get = |st: &str| value(&s, &format!("flux_resource_status_nodes{{state=\"{st}\"}}"));
    assert_eq!(get("avail"), avail);
    assert_eq!(get("offline"), offline);
    for st in ["drained", "draining", "excluded", "torpid"] {
        assert_eq!(get(st), by_state.get(st).copied().unwrap_or(0.0), "{st}");
    }
}

#[test]
fn per_node_drain_series_are_opt_in() {
    let summary = resources::summarize(
        &fixture("resource.sched-status.json"),
        &fixture("resource.status.json"),
        CONFIG,
    )
    .unwrap();
    let mut state = State::with_collectors(&["resources"]);
    state.resources = Some(summary);
    assert!(!render::text(&state).contains("flux_resource_drained_node_info"));
    state.per_node = true;
    let s = samples(&render::text(&state));
    assert_eq!(
        value(
            &s,
            "flux_resource_drained_node_info{rank=\"3\",reason=\"bad dimm\"}"
        ),
        1.0
    );
}

#[test]
fn bad_payloads_are_refused_with_a_message_naming_them() {
    let err = resources::summarize("{\"all\": {\"version\": 2}}", "{}", "{}").unwrap_err();
    assert!(
        err.contains("resource.sched-status: all: unsupported R version"),
        "{err}"
    );
    let err = resources::summarize(
        &fixture("resource.sched-status.json"),
        "{\"offline\": \"x\"}",
        "{}",
    )
    .unwrap_err();
    assert!(
        err.contains("resource.status") && err.contains("invalid idset 'x'"),
        "{err}"
    );
}

/// The allocated set from sched-status, in the shape job-manager.resource-status
/// answers with.
fn job_manager_allocated() -> String {
    let sched: serde_json::Value =
        serde_json::from_str(&fixture("resource.sched-status.json")).expect("fixture parses");
    serde_json::json!({ "allocated": sched["allocated"] }).to_string()
}

#[test]
fn sched_status_computed_from_cheap_sources_equals_the_resource_modules() {
    let recorded = resources::SchedStatus::parse(&fixture("resource.sched-status.json"))
        .expect("fixture parses");
    // With ranks offline the computation declines: only the resource module
    // knows whether it dropped lost ranks.
    let status = fixture("resource.status.json");
    assert_eq!(
        resources::SchedStatus::derive(&status, &job_manager_allocated()),
        Ok(None)
    );
    // Moved from offline to torpid, the same ranks are down in the same way,
    // so the computed sets must equal the recorded ones exactly.
    let mut moved: serde_json::Value = serde_json::from_str(&status).expect("fixture parses");
    moved["torpid"] = moved["offline"].clone();
    moved["offline"] = "".into();
    let derived = resources::SchedStatus::derive(&moved.to_string(), &job_manager_allocated())
        .expect("parses")
        .expect("no rank offline");
    assert_eq!(derived.all.nodes, recorded.all.nodes);
    assert_eq!(derived.down.nodes, recorded.down.nodes);
    assert_eq!(derived.allocated.nodes, recorded.allocated.nodes);
    let from_derived =
        resources::summarize_from(derived, &fixture("resource.status.json"), CONFIG).expect("ok");
    let from_recorded = resources::summarize(
        &fixture("resource.sched-status.json"),
        &fixture("resource.status.json"),
        CONFIG,
    )
    .expect("ok");
    assert_eq!(from_derived.totals, from_recorded.totals);
    assert_eq!(from_derived.queues, from_recorded.queues);
}

#[test]
fn excluded_ranks_are_left_out_of_the_computed_set() {
    let mut status: serde_json::Value =
        serde_json::from_str(&fixture("resource.status.json")).expect("fixture parses");
    status["offline"] = "".into();
    status["exclude"] = "0-1".into();
    let derived = resources::SchedStatus::derive(&status.to_string(), &job_manager_allocated())
        .expect("parses")
        .expect("no rank offline");
    let ranks: Vec<u32> = derived.all.nodes.keys().collect();
    assert_eq!(ranks, [2, 3, 4, 5]);
}
