//! The OpenMetrics form of a full exposition, rendered from every recorded
//! payload: what a strict OpenMetrics 1.0.0 parser (Prometheus's, when it
//! scrapes with its default Accept header) requires of it.

mod common;

use std::collections::BTreeMap;

use common::fixture;
use flux_prometheus::exposition::openmetrics;
use flux_prometheus::model::broker::{InstanceInfo, ProcessSample};
use flux_prometheus::model::jobflow::{JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS};
use flux_prometheus::model::{jobs, queues, resources};
use flux_prometheus::render;
use flux_prometheus::state::State;

const CONFIG: &str =
    r#"{"queues": {"batch": {"requires": ["batch"]}, "debug": {"requires": ["debug"]}}}"#;

fn full_state() -> State {
    let mut state = State::with_collectors(&["jobs", "resources", "queues", "broker", "jobflow"]);
    state.jobs = Some(jobs::parse(&fixture("job-list.job-stats.json")).expect("fixture parses"));
    state.resources = Some(
        resources::summarize(
            &fixture("resource.sched-status.json"),
            &fixture("resource.status.json"),
            CONFIG,
        )
        .expect("fixtures parse"),
    );
    let names = queues::parse_list(&fixture("job-manager.queue-list.json")).expect("parses");
    let statuses: serde_json::Value =
        serde_json::from_str(&fixture("job-manager.queue-status.json")).expect("parses");
    state.queues = Some(
        names
            .iter()
            .map(|n| queues::parse_status(Some(n), &statuses[n].to_string()).expect("parses"))
            .collect(),
    );
    state.instance = Some(InstanceInfo {
        version: "0.88.0".into(),
        level: "1".into(),
        jobid: Some("ƒ2NxKEXFb".into()),
        size: 4,
        start_time: Some(1.7e9),
        online: Some(4),
        overlay_status: Some("full".into()),
    });
    state.process = vec![ProcessSample {
        name: "flux_broker_process_cpu_seconds_total".into(),
        help: "Broker \"process\" CPU time.".into(),
        counter: true,
        value: 1.5,
    }];
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    flow.begin_backlog();
    let journal: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("parses");
    for r in &journal {
        flow.apply(&r.to_string()).expect("parses");
    }
    state.jobflow = Some(flow.summary());
    state.per_node = true;
    state
}

/// The sample name of a sample line.
fn sample_name(line: &str) -> &str {
    line.split(['{', ' ']).next().unwrap_or("")
}

#[test]
fn every_family_is_typed_and_named_as_openmetrics_requires() {
    common::each_set(|| {
        let text = render::text(&full_state());
        let om = openmetrics(&text);
        assert!(om.ends_with("\n# EOF\n"), "no # EOF at the end");
        assert_eq!(om.matches("# EOF").count(), 1);
        assert!(!om.contains("\n\n"), "OpenMetrics allows no blank lines");

        let mut family = String::new();
        let mut kind = String::new();
        let mut kinds: BTreeMap<String, String> = BTreeMap::new();
        for line in om.lines().filter(|l| *l != "# EOF") {
            if let Some(help) = line.strip_prefix("# HELP ") {
                let (name, doc) = help.split_once(' ').expect("HELP has a text");
                family = name.to_string();
                // Quotes and backslashes escaped, no raw newline possible.
                let unescaped_quote = doc
                    .char_indices()
                    .any(|(i, c)| c == '"' && !doc[..i].ends_with('\\'));
                assert!(!unescaped_quote, "unescaped quote in HELP of {name}: {doc}");
                continue;
            }
            if let Some(t) = line.strip_prefix("# TYPE ") {
                let (name, k) = t.split_once(' ').expect("TYPE has a kind");
                assert_eq!(name, family, "TYPE follows its family's HELP");
                kind = k.to_string();
                assert!(
                    kinds.insert(name.to_string(), kind.clone()).is_none(),
                    "family {name} declared twice"
                );
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let name = sample_name(line);
            let suffix = name
                .strip_prefix(family.as_str())
                .unwrap_or_else(|| panic!("sample {name} outside its family {family}"));
            let allowed: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                "gauge" => &[""],
                other => panic!("family {family} has type {other}"),
            };
            assert!(
                allowed.contains(&suffix),
                "{kind} {family} has a sample named {name}"
            );
        }
        // Counters are declared without _total, and the samples are unchanged.
        assert_eq!(
            kinds.get("flux_jobs_submitted").map(String::as_str),
            Some("counter")
        );
        assert_eq!(kinds.get("flux_instance").map(String::as_str), Some("info"));
        let samples = |s: &str| {
            let mut v: Vec<String> = s
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        assert_eq!(samples(&text), samples(&om));
    });
}
