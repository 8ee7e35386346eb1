//! Resource metrics rendered from recorded payloads agree, row for row, with
//! what `flux resource list` and `flux resource status` printed.

mod common;

use std::collections::BTreeMap;

use common::{fixture, samples, value};
use flux_prometheus::model::allocations::{self, Allocations};
use flux_prometheus::model::jobflow::{
    Applied, JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS,
};
use flux_prometheus::model::resources;
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
    state.set(
        flux_prometheus::collectors::resources::SECTION,
        flux_prometheus::collectors::resources::ResourcesState {
            summary,
            node_events: Default::default(),
            queue_node_events: Vec::new(),
            at: 0.0,
        },
    );
    samples(&flux_prometheus::collectors::render(&state))
}

#[test]
fn config_fixture_is_what_the_test_assumes() {
    common::each_set(|| {
        let toml = fixture("instance-config.toml");
        assert!(
            toml.contains("[queues.batch]\nrequires = [\"batch\"]")
                && toml.contains("[queues.debug]\nrequires = [\"debug\"]")
        );
    });
}

#[test]
fn per_queue_rows_equal_flux_resource_list() {
    common::each_set(|| {
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
    });
}

#[test]
fn instance_rows_equal_the_sum_of_disjoint_queues() {
    common::each_set(|| {
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
    });
}

#[test]
fn capacity_equals_flux_resource_list_all_for_the_instance_and_each_queue() {
    common::each_set(|| {
        let s = rendered();
        let row = |line: &str| -> [f64; 3] {
            let f: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .map(|w| w.parse().expect("a count"))
                .collect();
            [f[0], f[1], f[2]]
        };
        let all = row(fixture("cli.resource-list-all.txt").trim());
        for (i, kind) in ["nodes", "cores", "gpus"].iter().enumerate() {
            assert_eq!(
                value(&s, &format!("flux_resource_capacity_{kind}")),
                all[i],
                "{kind}"
            );
        }
        for line in fixture("cli.resource-list-all-by-queue.txt").lines() {
            let (queue, rest) = line.split_once(": ").expect("QUEUE: row");
            let want = row(rest);
            for (i, kind) in ["nodes", "cores", "gpus"].iter().enumerate() {
                let key = format!("flux_queue_resource_capacity_{kind}{{queue=\"{queue}\"}}");
                assert_eq!(value(&s, &key), want[i], "{key}");
            }
        }
        // "all" is no state: it has its own families.
        assert!(!s.contains_key("flux_resource_nodes{state=\"all\"}"));
    });
}

#[test]
fn node_health_equals_flux_resource_status() {
    common::each_set(|| {
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
        // flux prints "exclude" for the state exported as "excluded".
        for (st, flux_name) in [
            ("drained", "drained"),
            ("draining", "draining"),
            ("excluded", "exclude"),
            ("torpid", "torpid"),
        ] {
            let want = by_state.get(flux_name).copied().unwrap_or(0.0);
            assert_eq!(get(st), want, "{st}");
        }
    });
}

#[test]
fn bad_payloads_are_refused_with_a_message_naming_them() {
    common::each_set(|| {
        let err = resources::summarize("{\"all\": {\"version\": 2}}", "{}", "{}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("resource.sched-status: all: unsupported R version"),
            "{err}"
        );
        let err = resources::summarize(
            &fixture("resource.sched-status.json"),
            "{\"offline\": \"x\"}",
            "{}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("resource.status") && err.contains("invalid idset 'x'"),
            "{err}"
        );
    });
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
    common::each_set(|| {
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
        assert_rows_as_recorded(derived);
    });
}

/// The rows summarized from `derived` equal those from the recorded
/// sched-status, instance and queues alike.
fn assert_rows_as_recorded(derived: resources::SchedStatus) {
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
    common::each_set(|| {
        let mut status: serde_json::Value =
            serde_json::from_str(&fixture("resource.status.json")).expect("fixture parses");
        status["offline"] = "".into();
        status["exclude"] = "0-1".into();
        let derived = resources::SchedStatus::derive(&status.to_string(), &job_manager_allocated())
            .expect("parses")
            .expect("no rank offline");
        let ranks: Vec<u32> = derived.all.nodes.keys().collect();
        assert_eq!(ranks, [2, 3, 4, 5]);
    });
}

/// The journal without the `free` and `clean` events of the job the
/// recorder ran last, after configuring housekeeping: its node stays there.
fn without_housekeeping_clean(mut responses: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let clean_time = |response: &serde_json::Value| {
        response["events"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["name"] == "clean"))
            .and_then(|e| e["timestamp"].as_f64())
    };
    let last = (0..responses.len())
        .filter_map(|i| clean_time(&responses[i]).map(|t| (t, i)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, i)| i)
        .expect("a job was cleaned up");
    if let Some(events) = responses[last]["events"].as_array_mut() {
        events.retain(|e| e["name"] != "free" && e["name"] != "clean");
    }
    responses
}

fn journal() -> Vec<serde_json::Value> {
    serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("fixture parses")
}

/// Replays journal responses the way the job-flow collector does.
fn allocations_from(responses: &[serde_json::Value]) -> Allocations {
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    let mut allocations = Allocations::default();
    flow.begin_backlog();
    allocations.begin_backlog();
    for r in responses {
        let applied = flow
            .apply_tracking(&r.to_string(), Some(&mut allocations), None, None)
            .expect("journal response parses");
        if applied == Applied::EndOfBacklog {
            allocations.end_backlog();
        }
    }
    allocations
}

#[test]
fn allocated_set_from_the_journal_equals_the_schedulers() {
    common::each_set(|| {
        let recorded = resources::SchedStatus::parse(&fixture("resource.sched-status.json"))
            .expect("fixture parses");
        // The job that ran last is in housekeeping, which holds its
        // resources after `clean` (the collector asks the job manager when
        // housekeeping is configured): replayed without that event, the
        // journal gives the scheduler's allocated set.
        let allocations = allocations_from(&without_housekeeping_clean(journal()));
        let (_, set) = allocations.current().expect("backlog read to its end");
        assert_eq!(set.nodes, recorded.allocated.nodes);
        // The running jobs and the one in housekeeping hold resources.
        let running = fixture("cli.jobs.txt")
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some("RUN"))
            .count();
        assert_eq!(allocations.jobs(), running + 1);
        // And the counts rendered from it are those flux resource list printed.
        let mut moved: serde_json::Value =
            serde_json::from_str(&fixture("resource.status.json")).expect("fixture parses");
        moved["torpid"] = moved["offline"].clone();
        moved["offline"] = "".into();
        let derived = resources::SchedStatus::derive_with(&moved.to_string(), set.clone())
            .expect("parses")
            .expect("no rank offline");
        assert_rows_as_recorded(derived);
    });
}

#[test]
fn journal_allocated_set_is_withheld_until_it_is_known_to_be_complete() {
    common::each_set(|| {
        let responses = journal();
        // Backlog not yet over: nothing to offer, the job manager is asked.
        let partial = allocations_from(&responses[..responses.len() - 1]);
        assert!(partial.current().is_none());
        let mut allocations = allocations_from(&responses);
        assert!(allocations.current().is_some());
        allocations.stream_lost();
        assert!(allocations.current().is_none());
    });
}

#[test]
fn free_gives_back_and_bypass_jobs_are_not_counted() {
    common::each_set(|| {
        let r = |rank: &str, cores: &str, gpus: &str| {
            serde_json::json!({"version": 1, "execution": {"R_lite": [
            {"rank": rank, "children": {"core": cores, "gpu": gpus}}]}})
        };
        let event =
            |id: i64, name: &str, context: serde_json::Value, r: Option<serde_json::Value>| {
                let mut o = serde_json::json!({"id": id, "events": [
            {"name": name, "timestamp": 1.0, "context": context}]});
                if let Some(r) = r {
                    o["R"] = r;
                }
                o
            };
        let sentinel = serde_json::json!({"id": -1, "events": []});
        let mut responses = vec![
            sentinel,
            event(
                1,
                "alloc",
                serde_json::json!({}),
                Some(r("0-1", "0-3", "0")),
            ),
            event(2, "alloc", serde_json::json!({}), Some(r("1", "4-7", "1"))),
            event(
                3,
                "alloc",
                serde_json::json!({"bypass": true}),
                Some(r("2", "0-7", "0-1")),
            ),
        ];
        let allocations = allocations_from(&responses);
        let (before, set) = allocations.current().expect("complete");
        let cores =
            |set: &resources::ResourceSet, rank| set.nodes.get(&rank).map(|n| n.cores.count());
        assert_eq!(
            [cores(set, 0), cores(set, 1), cores(set, 2)],
            [Some(4), Some(8), None]
        );
        responses.push(event(1, "free", serde_json::json!({}), None));
        let allocations = allocations_from(&responses);
        let (after, set) = allocations.current().expect("complete");
        assert_ne!(before, after);
        // Rank 0 held only job 1's cores, so it is no longer allocated at all.
        assert_eq!([cores(set, 0), cores(set, 1)], [None, Some(4)]);
        assert_eq!(set.nodes.get(&1).map(|n| n.gpus.count()), Some(1));
    });
}

#[test]
fn housekeeping_in_the_config_sends_the_collector_back_to_the_job_manager() {
    common::each_set(|| {
        let with = serde_json::json!({"job-manager": {"housekeeping": {"command": ["true"]}}});
        let without = serde_json::json!({"job-manager": {"journal-size-limit": 1000}});
        assert!(allocations::housekeeping_configured(&with));
        assert!(!allocations::housekeeping_configured(&without));
        assert!(!allocations::housekeeping_configured(
            &serde_json::json!({})
        ));
    });
}

#[test]
fn allocated_and_housekeeping_nodes_equal_flux_resource_status_all() {
    common::each_set(|| {
        // flux resource status -s all: "{state} {nnodes} ..." per online
        // and offline (*) line; the two add up.
        let mut cli: BTreeMap<String, f64> = BTreeMap::new();
        for line in fixture("cli.resource-status-all.txt").lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [state, n, ..] = f[..] {
                *cli.entry(state.trim_end_matches('*').into()).or_default() +=
                    n.parse::<f64>().unwrap();
            }
        }
        let s = samples(&flux_prometheus::collectors::render(
            &common::recorded_state(),
        ));
        for state in ["allocated", "housekeeping", "drained", "draining", "torpid"] {
            let key = format!("flux_resource_status_nodes{{state=\"{state}\"}}");
            assert_eq!(s[&key], cli[state], "{state}");
        }
        assert!(cli["housekeeping"] > 0.0 && cli["allocated"] > 0.0);
    });
}

#[test]
fn the_resource_journal_is_read_as_flux_core_streams_it() {
    use flux_prometheus::model::idset::IdSet;
    use flux_prometheus::reactor::resource_status::{
        journal_response, JournalResponse, NodeEvents,
    };
    common::each_set(|| {
        // The backlog (resource-define first, with R beside it), the empty
        // response that ends it, then node2 undrained live.
        let responses: Vec<serde_json::Value> =
            serde_json::from_str(&fixture("resource.journal.json")).unwrap();
        let read: Vec<JournalResponse> = responses
            .iter()
            .map(|r| journal_response(&r.to_string()).unwrap())
            .collect();
        let end = read
            .iter()
            .position(|r| *r == JournalResponse::BacklogEnd)
            .expect("the backlog ends with an empty response");
        assert!(end > 0);
        // The recorded instance's R names ranks 0-5 (node[4-5] have no
        // broker): the highest is read from the R beside resource-define.
        let highest: Vec<u32> = read[..end]
            .iter()
            .filter_map(|r| match r {
                JournalResponse::Events { highest_rank, .. } => *highest_rank,
                JournalResponse::BacklogEnd => None,
            })
            .collect();
        assert_eq!(highest, [5]);
        // The nodes its events name: node0 and node1-3 online, node2
        // drained in the backlog; node2 undrained live.
        let mut backlog = NodeEvents::default();
        for r in &read[..end] {
            if let JournalResponse::Events { nodes, .. } = r {
                for (name, n) in nodes.by_name() {
                    match name {
                        "online" => backlog.online += n,
                        "drain" => backlog.drain += n,
                        _ => assert_eq!(n, 0, "{name}"),
                    }
                }
            }
        }
        assert_eq!((backlog.online, backlog.drain), (4, 1));
        assert_eq!(
            read[end + 1..],
            [JournalResponse::Events {
                highest_rank: None,
                nodes: NodeEvents {
                    undrain: 1,
                    ..NodeEvents::default()
                },
                named: vec![(1, IdSet::parse("2").expect("an idset"))],
            }],
            "the undrain, live"
        );
    });
    let err = journal_response("{\"event\": []}").unwrap_err().to_string();
    assert!(
        err.starts_with("resource.journal: malformed response"),
        "{err}"
    );
}

/// The resource journal's events by queue: node2, drained in the recorded
/// instance, is a node of the batch queue (property batch), and none of
/// the debug queue's nodes was drained.
#[test]
fn node_events_by_queue_count_the_queues_nodes() {
    common::each_set(|| {
        let s = samples(&flux_prometheus::collectors::render(
            &common::recorded_state(),
        ));
        let events = |queue: &str, event: &str| {
            common::value(
                &s,
                &format!(
                    "flux_queue_resource_node_events_total{{queue=\"{queue}\",event=\"{event}\"}}"
                ),
            )
        };
        assert_eq!(events("batch", "drain"), 1.0);
        assert_eq!(events("debug", "drain"), 0.0);
        assert_eq!(
            events("batch", "drain") + events("debug", "drain"),
            common::value(&s, "flux_resource_node_events_total{event=\"drain\"}")
        );
    });
}
