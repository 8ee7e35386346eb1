//! Private mode (crate::access): what a scraper not cleared for series
//! naming users and jobs is served of the recorded sets. It must name no
//! user, project, bank, job or drain reason, keep every other series as it
//! is, and add up to what the same instance shows without user labels.

mod common;

use std::collections::BTreeMap;

use common::{fixture, samples};
use flux_prometheus::access::{Audience, View, AGGREGATE_COMMENT};
use flux_prometheus::collectors::{jobflow as jobflow_collector, render_for};
use flux_prometheus::exposition::Format;
use flux_prometheus::model::jobflow::{
    JobFlow, LabelOptions, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS,
};
use flux_prometheus::state::State;

const AGGREGATE: Audience = Audience {
    private: true,
    view: View::Aggregate,
};
const CLEARED: Audience = Audience {
    private: true,
    view: View::Full,
};

/// The families whose every series is private.
const PRIVATE_FAMILIES: [&str; 2] = ["flux_node_drain_info", "flux_resource_drain_reason_nodes"];

fn names_anyone(key: &str) -> bool {
    let (name, labels) = key.split_once('{').unwrap_or((key, ""));
    if PRIVATE_FAMILIES.contains(&name) {
        return true;
    }
    // The instance's own job ID names no user's job.
    name != "flux_instance_info"
        && ["user=", "project=", "bank=", "jobid="]
            .iter()
            .any(|l| labels.starts_with(l) || labels.contains(&format!(",{l}")))
}

#[test]
fn an_anonymous_scrape_names_no_user_job_or_drain_reason() {
    common::each_set(|| {
        let state = common::recorded_state();
        let full = samples(&render_for(&state, CLEARED, Format::Text));
        let text = render_for(&state, AGGREGATE, Format::Text);
        let aggregate = samples(&text);
        // The set has them, so their absence means something.
        for label in ["user=", "jobid=", "reason="] {
            assert!(
                full.keys().any(|k| k.contains(label) && names_anyone(k)),
                "the recorded set has no {label} series to keep private"
            );
        }
        let named: Vec<&String> = aggregate.keys().filter(|k| names_anyone(k)).collect();
        assert!(named.is_empty(), "served to anyone: {named:#?}");
        // Everything else is served as it is.
        for (key, value) in &full {
            if names_anyone(key) || key.starts_with("flux_prometheus_access_info") {
                continue;
            }
            assert_eq!(aggregate.get(key), Some(value), "{key}");
        }
        assert!(text.starts_with(AGGREGATE_COMMENT), "{text}");
        assert_eq!(
            aggregate["flux_prometheus_access_info{mode=\"private\",view=\"aggregate\"}"],
            1.0
        );
        assert_eq!(
            full["flux_prometheus_access_info{mode=\"private\",view=\"full\"}"],
            1.0
        );
    });
}

#[test]
fn the_openmetrics_aggregate_view_is_well_formed() {
    common::each_set(|| {
        let state = common::recorded_state();
        let text = render_for(&state, AGGREGATE, Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"));
        // OpenMetrics has no comments: the view says what it is in
        // flux_prometheus_access_info alone.
        for line in text.lines().filter(|l| l.starts_with('#')) {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF",
                "{line}"
            );
        }
        assert!(
            text.contains("flux_prometheus_access_info{mode=\"private\",view=\"aggregate\"} 1\n")
        );
        assert!(!text.contains("user=\""));
    });
}

/// The recorded journal as the module is sent it with every opt-in, its
/// jobs' owners and projects spread over three users and two projects,
/// so that folding has something to add up.
fn replay(labels: LabelOptions) -> JobFlow {
    let allowed: Vec<&str> = jobflow_collector::ALLOWED_EVENTS
        .iter()
        .chain(&jobflow_collector::WAIT_PHASE_EVENTS)
        .chain(&jobflow_collector::REASON_EVENTS)
        .copied()
        .collect();
    let mut all: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("parses");
    for response in &mut all {
        let id = response["id"].as_u64().unwrap_or(0);
        let Some(events) = response["events"].as_array_mut() else {
            continue;
        };
        events.retain(|e| e["name"].as_str().is_some_and(|n| allowed.contains(&n)));
        for event in events.iter_mut().filter(|e| e["name"] == "submit") {
            event["context"]["userid"] = (1000 + id % 3).into();
        }
        if let Some(system) = response["jobspec"]["attributes"]["system"].as_object_mut() {
            system.insert("project".into(), ["p", "q"][(id % 2) as usize].into());
        }
    }
    let mut flow = JobFlow::with_labels(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS, labels);
    flow.time_wait_phases();
    flow.explain_pending();
    flow.begin_backlog();
    for r in &all {
        flow.apply(&r.to_string()).expect("journal response parses");
    }
    flow
}

fn jobflow_samples(flow: &JobFlow, audience: Audience) -> BTreeMap<String, f64> {
    let mut state = State::with_collectors(&["jobflow"]);
    state.set(jobflow_collector::SECTION, flow.summary());
    samples(&render_for(&state, audience, Format::Text))
        .into_iter()
        .filter(|(k, _)| !k.starts_with("flux_prometheus_"))
        .collect()
}

#[test]
fn the_aggregate_of_user_labelled_series_is_the_series_without_them() {
    common::each_set(|| {
        let labelled = replay(LabelOptions {
            user: true,
            project: true,
            limit: 100,
        });
        let plain = replay(LabelOptions::default());
        let full = jobflow_samples(&labelled, CLEARED);
        let users: std::collections::BTreeSet<&str> = full
            .keys()
            .filter_map(|k| k.split("user=\"").nth(1)?.split('"').next())
            .collect();
        assert!(users.len() > 1, "the replay has one user: {users:?}");
        let folded = jobflow_samples(&labelled, AGGREGATE);
        let expected = jobflow_samples(&plain, CLEARED);
        // Per-job series have no aggregate of their own.
        let expected: BTreeMap<String, f64> = expected
            .into_iter()
            .filter(|(k, _)| !k.contains("jobid="))
            .collect();
        let missing: Vec<&String> = expected
            .keys()
            .filter(|k| !folded.contains_key(*k))
            .collect();
        let extra: Vec<&String> = folded
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing {missing:#?}\nextra {extra:#?}"
        );
        for (key, want) in &expected {
            let got = folded[key];
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0) || (got.is_nan() && want.is_nan()),
                "{key}: folded {got}, without labels {want}"
            );
        }
    });
}
