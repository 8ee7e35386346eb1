//! The scheduler from the recorded instances (one under Fluxion, one under
//! sched-simple): what the scrape shows equals `flux module stats` of the
//! loaded scheduler (cli.module-stats.json), job IDs never appear, and
//! counters never go down when the scheduler starts its own again.

mod common;

use common::{fixture, samples};
use flux_prometheus::collectors::scheduler::{self, Monotonic};
use flux_prometheus::state::State;

fn rendered() -> std::collections::BTreeMap<String, f64> {
    let mut state = State::with_collectors(&["scheduler"]);
    state.set(scheduler::SECTION, common::recorded_scheduler());
    samples(&flux_prometheus::collectors::render(&state))
}

fn cli_stats(module: &str) -> serde_json::Value {
    let all: serde_json::Value =
        serde_json::from_str(&fixture("cli.module-stats.json")).expect("parses");
    all[module].clone()
}

#[test]
fn the_scheduler_equals_flux_module_stats_of_the_loaded_one() {
    common::each_set(|| {
        let s = rendered();
        let module = scheduler::sched_module(&fixture("module.list.json"))
            .unwrap()
            .unwrap();
        assert_eq!(s[&format!("flux_scheduler_info{{name=\"{module}\"}}")], 1.0);
        let cli = cli_stats(&module);
        if module == "sched-fluxion-qmanager" {
            for (queue, q) in cli["queues"].as_object().unwrap() {
                for (action, n) in q["action_counts"].as_object().unwrap() {
                    let key = format!(
                        "flux_scheduler_actions_total{{queue=\"{queue}\",action=\"{action}\"}}"
                    );
                    assert_eq!(s[&key], n.as_f64().unwrap(), "{key}");
                }
                let pending = q["pending_queues"]["pending"].as_array().unwrap().len();
                let key =
                    format!("flux_scheduler_queue_jobs{{queue=\"{queue}\",state=\"pending\"}}");
                assert_eq!(s[&key], pending as f64);
                let key = format!("flux_scheduler_queue_depth{{queue=\"{queue}\"}}");
                assert_eq!(s[&key], q["queue_depth"].as_f64().unwrap());
            }
            let resource = cli_stats("sched-fluxion-resource");
            for result in ["succeeded", "failed"] {
                let key = format!("flux_scheduler_matches_total{{result=\"{result}\"}}");
                assert_eq!(
                    s[&key],
                    resource["match"][result]["njobs"].as_f64().unwrap()
                );
            }
            assert_eq!(
                s["flux_scheduler_graph_vertices"],
                resource["V"].as_f64().unwrap()
            );
        } else {
            assert_eq!(
                s["flux_scheduler_passes_total{kind=\"schedule\"}"],
                cli["sched_passes"].as_f64().unwrap()
            );
            assert_eq!(
                s["flux_scheduler_pending_jobs"],
                cli["pending_jobs"].as_f64().unwrap()
            );
        }
    });
}

#[test]
fn job_ids_from_the_queue_lists_are_never_exported() {
    common::each_set(|| {
        let mut state = State::with_collectors(&["scheduler"]);
        state.set(scheduler::SECTION, common::recorded_scheduler());
        let text = flux_prometheus::collectors::render(&state);
        let stats = fixture("module.stats-get.json");
        for id in ["f3LtDB67", "f2oSgQTy"] {
            if stats.contains(id) {
                assert!(!text.contains(id), "{id} exported");
            }
        }
    });
}

#[test]
fn a_stats_clear_or_reload_is_a_reset_not_a_negative_rate() {
    common::each_set(|| {
        let stats: serde_json::Value =
            serde_json::from_str(&fixture("module.stats-get.json")).unwrap();
        let Some(resource) = stats.get("sched-fluxion-resource") else {
            return;
        };
        let mut counters = Monotonic::default();
        let before =
            scheduler::parse_fluxion_resource(&resource.to_string(), &mut counters).unwrap();
        // Reloaded Fluxion: njobs starts again from 1.
        let mut reloaded = resource.clone();
        reloaded["match"]["succeeded"]["njobs"] = 1.into();
        reloaded["match"]["succeeded"]["njobs-reset"] = 0.into();
        let after =
            scheduler::parse_fluxion_resource(&reloaded.to_string(), &mut counters).unwrap();
        assert_eq!(after.succeeded.total, before.succeeded.total + 1.0);
        // No match since the reset: no match-time statistics to show.
        assert_eq!(after.succeeded.max_seconds, None);
    });
}

#[test]
fn a_scheduler_without_statistics_of_its_own_is_no_error() {
    // A module's generic stats-get (message counters) has none of the
    // scheduler fields: only flux_scheduler_info is exported.
    let mut counters = Monotonic::default();
    let generic = r#"{"tx-request": 3, "rx-response": 3}"#;
    assert_eq!(scheduler::parse_passes(generic, &mut counters), Ok(None));
    let err = scheduler::parse_passes("[1,2", &mut counters)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("malformed response"), "{err}");
}
