//! Job-flow metrics from the recorded job-manager journal
//! (`{"full": true}` on the recorded instance; see the fixtures' README)
//! agree with what `flux jobs` printed for that instance.

mod common;

use common::{fixture, samples};
use flux_prometheus::collectors::jobflow as jobflow_collector;
use flux_prometheus::model::jobflow::{
    Applied, JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS,
};
use flux_prometheus::state::State;

/// The recorded journal, with every event.
fn all_responses() -> Vec<String> {
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("fixture parses");
    all.iter().map(|r| r.to_string()).collect()
}

/// The recorded journal as the job manager sends it to the module: only
/// the events the module's subscription allows.
fn responses() -> Vec<String> {
    let mut all: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("fixture parses");
    for response in &mut all {
        if let Some(events) = response["events"].as_array_mut() {
            events.retain(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|name| jobflow_collector::ALLOWED_EVENTS.contains(&name))
            });
        }
    }
    all.iter().map(|r| r.to_string()).collect()
}

/// Replays the journal the module is sent into a model counting events
/// after `since`.
fn replay(since: f64) -> JobFlow {
    replay_of(since, responses())
}

fn replay_of(since: f64, responses: Vec<String>) -> JobFlow {
    let mut flow = JobFlow::new(since, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    flow.begin_backlog();
    for (i, r) in responses.iter().enumerate() {
        let applied = flow.apply(r).expect("journal response parses");
        assert_eq!(applied == Applied::EndOfBacklog, i == responses.len() - 1);
    }
    flow
}

/// The whole recorded journal into a model set up by `opt_in`, as the
/// module is sent it with an option that asks for `extra` events too.
fn replay_opted_in(extra: &[&str], opt_in: fn(&mut JobFlow)) -> JobFlow {
    let allowed: Vec<&str> = jobflow_collector::ALLOWED_EVENTS
        .iter()
        .chain(extra)
        .copied()
        .collect();
    let mut all: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("parses");
    for response in &mut all {
        if let Some(events) = response["events"].as_array_mut() {
            events.retain(|e| e["name"].as_str().is_some_and(|n| allowed.contains(&n)));
        }
    }
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    opt_in(&mut flow);
    flow.begin_backlog();
    for r in &all {
        flow.apply(&r.to_string()).expect("journal response parses");
    }
    flow
}

/// `flux jobs -a -no '{id.f58} {queue} {state} {result} {nnodes} {ntasks}'`
/// as (queue, state, result, nnodes).
fn cli_jobs() -> Vec<(String, String, String, u64)> {
    fixture("cli.jobs.txt")
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // Pending and running jobs have no result column.
            let (state, result, nnodes) = if w[2] == "INACTIVE" {
                (w[2], w[3], w[4])
            } else {
                (w[2], "", if w.len() == 5 { w[3] } else { "0" })
            };
            (
                w[1].to_string(),
                state.to_string(),
                result.to_lowercase(),
                nnodes.parse().unwrap_or(0),
            )
        })
        .collect()
}

fn rendered(flow: &JobFlow) -> std::collections::BTreeMap<String, f64> {
    let mut state = State::with_collectors(&["jobflow"]);
    state.set(
        flux_prometheus::collectors::jobflow::SECTION,
        flow.summary(),
    );
    samples(&flux_prometheus::collectors::render(&state))
}

#[test]
fn counters_equal_the_instances_jobs_when_every_event_is_new() {
    common::each_set(|| {
        let s = rendered(&replay(0.0));
        let jobs = cli_jobs();
        for queue in ["batch", "debug"] {
            let in_queue: Vec<_> = jobs.iter().filter(|j| j.0 == queue).collect();
            assert_eq!(
                s[&format!("flux_jobs_submitted_total{{queue=\"{queue}\"}}")],
                in_queue.len() as f64,
                "{queue} submitted"
            );
            for result in ["completed", "failed", "canceled", "timeout"] {
                let n = in_queue.iter().filter(|j| j.2 == result).count();
                assert_eq!(
                    s[&format!(
                        "flux_jobs_finished_total{{queue=\"{queue}\",result=\"{result}\"}}"
                    )],
                    n as f64,
                    "{queue} {result}"
                );
                // Every inactive job here started, so each has a run time.
                assert_eq!(
                    s[&format!(
                        "flux_jobs_run_seconds_count{{queue=\"{queue}\",result=\"{result}\"}}"
                    )],
                    n as f64
                );
            }
            let started = in_queue
                .iter()
                .filter(|j| j.1 == "RUN" || j.1 == "INACTIVE")
                .count();
            assert_eq!(
                s[&format!("flux_jobs_started_total{{queue=\"{queue}\"}}")],
                started as f64
            );
            assert_eq!(
                s[&format!("flux_jobs_queue_wait_seconds_count{{queue=\"{queue}\"}}")],
                started as f64
            );
            assert_eq!(
                s[&format!("flux_jobs_queue_wait_seconds_bucket{{queue=\"{queue}\",le=\"+Inf\"}}")],
                started as f64
            );
        }
        assert_eq!(
            s["flux_jobs_exceptions_total{queue=\"batch\",type=\"cancel\"}"],
            1.0
        );
        assert_eq!(
            s["flux_jobs_exceptions_total{queue=\"batch\",type=\"timeout\"}"],
            1.0
        );
    });
}

#[test]
fn demand_equals_the_pending_jobs_of_flux_jobs() {
    common::each_set(|| {
        let s = rendered(&replay(0.0));
        let jobs = cli_jobs();
        let pending = |queue: &str, state: &str| {
            jobs.iter()
                .filter(|j| j.0 == queue && j.1 == state)
                .collect::<Vec<_>>()
        };
        // One batch job in SCHED is held (--urgency=0); the README says so.
        let sched = pending("batch", "SCHED");
        assert_eq!(
            s["flux_queue_pending_jobs{queue=\"batch\",status=\"held\"}"],
            1.0
        );
        assert_eq!(
            s["flux_queue_pending_jobs{queue=\"batch\",status=\"eligible\"}"],
            (sched.len() - 1) as f64
        );
        assert_eq!(
            s["flux_queue_pending_jobs{queue=\"batch\",status=\"blocked\"}"],
            pending("batch", "DEPEND").len() as f64
        );
        assert_eq!(
            s["flux_queue_pending_jobs{queue=\"debug\",status=\"eligible\"}"],
            pending("debug", "SCHED").len() as f64
        );
        // Nodes: only the -N2 --exclusive job names nodes; flux jobs prints
        // its count and nothing for the rest.
        let named: u64 = sched.iter().map(|j| j.3).sum();
        let largest = sched.iter().map(|j| j.3).max().unwrap_or(0);
        assert_eq!(
            s["flux_queue_pending_requested_nodes{queue=\"batch\",status=\"eligible\"}"],
            named as f64
        );
        assert_eq!(
            s["flux_queue_pending_largest_job_nodes{queue=\"batch\",status=\"eligible\"}"],
            largest as f64
        );
        assert!(s.contains_key(
        "flux_queue_pending_oldest_submit_timestamp_seconds{queue=\"batch\",status=\"eligible\"}"
    ));
    });
}

#[test]
fn a_backlog_from_before_the_module_counts_nothing_but_shows_demand() {
    common::each_set(|| {
        let before = rendered(&replay(0.0));
        let after = rendered(&replay(f64::MAX));
        for (key, v) in &after {
            if key.starts_with("flux_jobs_") {
                assert_eq!(*v, 0.0, "{key}");
            }
            if key.starts_with("flux_queue_pending_") {
                assert_eq!(Some(v), before.get(key), "{key}");
            }
        }
    });
}

#[test]
fn a_replayed_backlog_after_resubscribing_counts_nothing_twice() {
    common::each_set(|| {
        let mut flow = replay(0.0);
        let once = rendered(&flow);
        flow.begin_backlog();
        for r in responses() {
            flow.apply(&r).expect("parses");
        }
        assert_eq!(rendered(&flow), once);
    });
}

#[test]
fn the_events_left_out_of_the_subscription_change_nothing() {
    common::each_set(|| {
        let every_event = rendered(&replay_of(0.0, all_responses()));
        assert_eq!(rendered(&replay(0.0)), every_event);
        // The recorded instance has a job blocked on a dependency, so the
        // comparison covers the blocked status.
        assert_eq!(
            every_event["flux_queue_pending_jobs{queue=\"batch\",status=\"blocked\"}"],
            1.0
        );
    });
}

#[test]
fn only_active_jobs_are_kept() {
    common::each_set(|| {
        let flow = replay(0.0);
        let active = cli_jobs().iter().filter(|j| j.1 != "INACTIVE").count();
        assert_eq!(flow.active_jobs(), active);
    });
}

#[test]
fn a_bad_response_is_refused_by_name_and_loses_nothing() {
    common::each_set(|| {
        let mut flow = replay(0.0);
        let before = rendered(&flow);
        let err = flow
            .apply("{\"id\": 1, \"events\": 7}")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("job-manager.events-journal: malformed response"),
            "{err}"
        );
        assert_eq!(rendered(&flow), before);
    });
}

#[test]
fn user_and_project_labels_are_opt_in_and_capped() {
    common::each_set(|| {
        use flux_prometheus::model::jobflow::LabelOptions;
        // Off by default: no user or project label anywhere.
        let plain = rendered(&replay(0.0));
        assert!(plain
            .keys()
            .all(|k| !k.contains("user=") && !k.contains("project=")));

        let submit = |id: i64, uid: i64, project: &str| {
            serde_json::json!({"id": id, "jobspec": {"attributes": {"system": {"queue": "batch", "project": project}},
            "resources": [{"type": "slot", "count": 1, "with": [{"type": "core", "count": 1}]}]},
            "events": [{"name": "submit", "timestamp": 10.0 + id as f64, "context": {"userid": uid, "urgency": 16}}]})
        .to_string()
        };
        let labels = LabelOptions {
            user: true,
            project: true,
            limit: 2,
        };
        let mut flow = JobFlow::with_labels(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS, labels);
        for (id, uid, project) in [
            (1, 1000, "a"),
            (2, 1001, "b"),
            (3, 1002, "c"),
            (4, 1000, "a"),
        ] {
            flow.apply(&submit(id, uid, project)).expect("parses");
        }
        let s = rendered(&flow);
        assert_eq!(
            s["flux_jobs_submitted_total{queue=\"batch\",user=\"1000\",project=\"a\"}"],
            2.0
        );
        assert_eq!(
            s["flux_jobs_submitted_total{queue=\"batch\",user=\"1001\",project=\"b\"}"],
            1.0
        );
        // The third distinct user and project are over the cap of 2.
        assert_eq!(
            s["flux_jobs_submitted_total{queue=\"batch\",user=\"other\",project=\"other\"}"],
            1.0
        );
    });
}

#[test]
fn live_events_count_even_when_they_share_a_timestamp() {
    common::each_set(|| {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        flow.begin_backlog();
        flow.apply(r#"{"id": -1, "events": []}"#).expect("sentinel");
        for id in [1, 2] {
            let submit = format!(
                r#"{{"id": {id}, "events": [{{"name": "submit", "timestamp": 5.0, "context": {{"urgency": 16}}}}]}}"#
            );
            flow.apply(&submit).expect("parses");
        }
        assert_eq!(rendered(&flow)["flux_jobs_submitted_total"], 2.0);
    });
}

/// With `wait-phases`, the time each started job spent in DEPEND, PRIORITY
/// and SCHED adds up, per queue, to what `flux jobs` printed for it
/// (`t_depend`, `t_priority`, `t_sched`, `t_run`).
#[test]
fn wait_phases_add_up_to_the_timestamps_of_flux_jobs() {
    common::each_set(|| {
        let flow = replay_opted_in(
            &jobflow_collector::WAIT_PHASE_EVENTS,
            JobFlow::time_wait_phases,
        );
        let s = rendered(&flow);
        let cli: serde_json::Value =
            serde_json::from_str(&fixture("cli.jobs.json")).expect("parses");
        let jobs = cli["jobs"].as_array().expect("a list of jobs");
        let t = |job: &serde_json::Value, key: &str| job[key].as_f64().unwrap_or(0.0);
        let mut checked = 0;
        for queue in ["batch", "debug"] {
            let started: Vec<_> = jobs
                .iter()
                .filter(|j| j["queue"] == queue && t(j, "t_run") > 0.0)
                .collect();
            let stamps = ["t_depend", "t_priority", "t_sched", "t_run"];
            for (i, phase) in ["dependency", "priority", "scheduler"].iter().enumerate() {
                let want: f64 = started
                    .iter()
                    .map(|j| t(j, stamps[i + 1]) - t(j, stamps[i]))
                    .sum();
                let labels = format!("{{queue=\"{queue}\",phase=\"{phase}\"}}");
                let count = s
                    .get(&format!("flux_jobs_wait_phase_seconds_count{labels}"))
                    .copied()
                    .unwrap_or(0.0);
                assert_eq!(count, started.len() as f64, "{queue} {phase} count");
                let sum = s
                    .get(&format!("flux_jobs_wait_phase_seconds_sum{labels}"))
                    .copied()
                    .unwrap_or(0.0);
                assert!(
                    (sum - want).abs() < 1e-6,
                    "{queue} {phase}: {sum} against {want}"
                );
                checked += started.len();
            }
        }
        // The recorded instance's seven jobs that ran, in each phase.
        assert_eq!(checked, 7 * 3);
    });
}

/// With `pending-reasons`, each queue's pending jobs by reason are those
/// `flux jobs` printed (state, urgency, priority, dependencies, the
/// scheduler's reason), the stopped debug queue's as `queue-stopped`; the
/// annotations the backlog lacks come from the recorded job-list answer.
#[test]
fn pending_reasons_are_those_of_flux_jobs() {
    common::each_set(|| {
        check_pending_reasons();
    });
}

/// The same with flux-accounting's plugin holding jobs over its limits:
/// each counts under the limit's own name.
#[test]
fn pending_reasons_name_flux_accountings_limits() {
    common::each_accounting_set(|| {
        let got = check_pending_reasons();
        let batch = |reason: &str| got.get(&("batch".to_string(), reason.to_string())).copied();
        assert_eq!(batch("max-running-jobs-user-limit"), Some(2.0));
        assert_eq!(batch("max-run-jobs-queue"), Some(1.0));
        assert_eq!(batch("held"), Some(1.0));
        assert_eq!(batch("resources"), Some(1.0));
        assert_eq!(
            got.get(&("debug".to_string(), "queue-stopped".to_string())),
            Some(&1.0)
        );
    });
}

/// Checks the set's pending reasons against flux jobs; returns them by
/// (queue, reason).
fn check_pending_reasons() -> std::collections::BTreeMap<(String, String), f64> {
    use flux_prometheus::collectors::queues;
    use flux_prometheus::model::jobflow::ACCOUNTING_LIMITS;
    use flux_prometheus::model::queues::parse_status;
    use std::collections::BTreeMap;
    let mut flow = replay_opted_in(&jobflow_collector::REASON_EVENTS, JobFlow::explain_pending);
    flow.recall_annotations(&fixture("job-list.list.json"))
        .expect("job-list's answer parses");
    let recorded: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&fixture("job-manager.queue-status.json")).expect("parses");
    let statuses: Vec<_> = recorded
        .iter()
        .filter(|(_, s)| s.get("__error__").is_none())
        .map(|(name, s)| parse_status(Some(name), &s.to_string()).expect("status parses"))
        .collect();
    let stopped: Vec<String> = statuses
        .iter()
        .filter(|s| !s.started)
        .filter_map(|s| s.name.clone())
        .collect();
    let mut state = State::with_collectors(&["jobflow", "queues"]);
    state.set(jobflow_collector::SECTION, flow.summary());
    state.set(queues::SECTION, statuses);
    let s = samples(&flux_prometheus::collectors::render(&state));

    let cli: serde_json::Value = serde_json::from_str(&fixture("cli.jobs.json")).expect("parses");
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for job in cli["jobs"].as_array().expect("a list of jobs") {
        let state = job["state"].as_str().unwrap_or("");
        if !matches!(state, "DEPEND" | "PRIORITY" | "SCHED") {
            continue;
        }
        let queue = job["queue"].as_str().unwrap_or("").to_string();
        let dependencies: Vec<&str> = job["dependencies"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d.as_str()).collect())
            .unwrap_or_default();
        let reason = if job["urgency"] == 0 || job["priority"] == 0 {
            "held".to_string()
        } else if !dependencies.is_empty() {
            let limit = dependencies.iter().find(|d| ACCOUNTING_LIMITS.contains(d));
            let begin = dependencies.iter().any(|d| d.starts_with("begin-time"));
            match (limit, begin) {
                (Some(limit), _) => limit.to_string(),
                (None, true) => "begin-time".to_string(),
                (None, false) => "dependency".to_string(),
            }
        } else if state != "SCHED" {
            "priority".to_string()
        } else if stopped.contains(&queue) {
            "queue-stopped".to_string()
        } else {
            job["annotations"]["sched"]["reason_pending"]
                .as_str()
                .unwrap_or("resources")
                .to_string()
        };
        *want.entry((queue, reason)).or_default() += 1.0;
    }
    assert!(
        want.len() >= 4,
        "the recorded mix has held, dependent, stopped and waiting jobs"
    );
    let mut got: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (series, v) in &s {
        let Some(labels) = series.strip_prefix("flux_queue_pending_reason_jobs{") else {
            continue;
        };
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
            let end = labels[start..].find('"')? + start;
            Some(labels[start..end].to_string())
        };
        if *v > 0.0 {
            got.insert(
                (
                    label("queue").unwrap_or_default(),
                    label("reason").unwrap_or_default(),
                ),
                *v,
            );
        }
    }
    assert_eq!(got, want);
    got
}
