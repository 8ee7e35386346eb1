//! Broker internals from the recorded instance: what the scrape shows equals
//! what `flux module list` and `flux module stats` showed of the same
//! instance (cli.module-stats.json), and a module that answers badly costs
//! only its own series.

mod common;

use common::{fixture, samples};
use flux::Error;
use flux_prometheus::collectors::internals;
use flux_prometheus::state::State;

fn cli_stats() -> serde_json::Value {
    serde_json::from_str(&fixture("cli.module-stats.json")).expect("parses")
}

fn rendered() -> std::collections::BTreeMap<String, f64> {
    let mut state = State::with_collectors(&["internals"]);
    state.set(internals::SECTION, common::recorded_internals());
    samples(&flux_prometheus::collectors::render(&state))
}

#[test]
fn the_content_store_and_cache_equal_flux_module_stats() {
    common::each_set(|| {
        let s = rendered();
        let cli = cli_stats();
        let sqlite = &cli["content-sqlite"];
        assert_eq!(
            s["flux_content_store_objects"],
            sqlite["object_count"].as_f64().unwrap()
        );
        assert_eq!(
            s["flux_content_store_size_bytes"],
            sqlite["dbfile_size"].as_f64().unwrap()
        );
        assert_eq!(
            s["flux_content_store_operations_total{operation=\"store\"}"],
            sqlite["store_time"]["count"].as_f64().unwrap()
        );
        // flux module stats shows milliseconds; the metric is in seconds.
        let max_ms = sqlite["store_time"]["max"].as_f64().unwrap();
        let max_s = s["flux_content_store_operation_max_seconds{operation=\"store\"}"];
        assert!(
            (max_s * 1000.0 - max_ms).abs() < 1e-9,
            "{max_s} s vs {max_ms} ms"
        );
        // Free space moves between the two recordings; it is a real number.
        assert!(s["flux_content_store_free_bytes"] > 0.0);
        let content = &cli["content"];
        assert_eq!(
            s["flux_content_cache_objects"],
            content["count"].as_f64().unwrap()
        );
        assert_eq!(
            s["flux_content_cache_bytes"],
            content["size"].as_f64().unwrap()
        );
        assert_eq!(
            s["flux_content_cache_dirty_objects"],
            content["dirty"].as_f64().unwrap()
        );
    });
}

#[test]
fn the_job_manager_and_kvs_equal_flux_module_stats() {
    common::each_set(|| {
        let s = rendered();
        let cli = cli_stats();
        let jm = &cli["job-manager"];
        assert_eq!(
            s["flux_jobmanager_jobs{state=\"active\"}"],
            jm["active_jobs"].as_f64().unwrap()
        );
        assert_eq!(
            s["flux_jobmanager_journal_listeners"],
            jm["journal"]["listeners"].as_f64().unwrap()
        );
        // The nodes in housekeeping as flux resource status -s all printed
        // them ("housekeeping NNODES RANKS NODELIST").
        let cli_nodes: f64 = fixture("cli.resource-status-all.txt")
            .lines()
            .filter_map(|l| l.strip_prefix("housekeeping "))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .sum();
        assert!(
            cli_nodes > 0.0,
            "the recorded instance has a node in housekeeping"
        );
        assert_eq!(s["flux_jobmanager_housekeeping_nodes"], cli_nodes);
        let kvs = &cli["kvs"]["cache"];
        assert_eq!(
            s["flux_kvs_cache_objects"],
            kvs["obj size (KiB)"]["count"].as_f64().unwrap()
        );
    });
}

#[test]
fn every_listed_module_has_idle_queue_and_cpu_series() {
    common::each_set(|| {
        let s = rendered();
        let list: serde_json::Value =
            serde_json::from_str(&fixture("module.list.json")).expect("parses");
        let rusage: serde_json::Value =
            serde_json::from_str(&fixture("module.rusage.json")).expect("parses");
        for m in list["mods"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            let key = |family: &str, rest: &str| format!("{family}{{module=\"{name}\"{rest}}}");
            assert_eq!(
                s[&key("flux_module_queue_messages", ",queue=\"send\"")],
                m["sendqueue"].as_f64().unwrap()
            );
            assert_eq!(
                s[&key("flux_module_idle_seconds", "")],
                m["idle"].as_f64().unwrap()
            );
            assert_eq!(
                s[&key("flux_module_cpu_seconds_total", ",mode=\"user\"")],
                rusage[name]["utime"].as_f64().unwrap()
            );
        }
    });
}

#[test]
fn a_module_that_answers_badly_costs_only_its_own_series_and_is_named() {
    common::each_set(|| {
        let module_stats: serde_json::Value =
            serde_json::from_str(&fixture("module.stats-get.json")).expect("parses");
        let modules = internals::parse_module_list(&fixture("module.list.json")).unwrap();
        let n = modules.len();
        let mut answers: Vec<Result<String, Error>> = vec![
            Ok(module_stats["content"].to_string()),
            // content-sqlite answers with something that is not JSON.
            Ok("{not json".to_string()),
            // kvs is not loaded: no series, no error.
            Err(Error::new(
                libc::ENOSYS,
                "kvs.stats-get: Function not implemented",
            )),
            Ok(module_stats["job-manager"].to_string()),
        ];
        answers.extend((0..n).map(|_| Ok(r#"{"utime": 1.5, "stime": 0.5}"#.to_string())));
        let (found, errors) = internals::combine(modules, &answers);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("content-sqlite.stats-get: malformed response"),
            "{errors:?}"
        );
        assert!(found.content_store.is_none() && found.kvs_cache.is_none());
        assert!(found.content_cache.is_some() && found.job_manager.is_some());
        assert_eq!(found.modules.len(), n);
        assert!(found.modules.iter().all(|m| m.cpu == Some((1.5, 0.5))));
    });
}
