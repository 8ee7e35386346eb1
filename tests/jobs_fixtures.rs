//! The jobs metrics rendered from recorded job-list payloads agree with what
//! `flux jobs --stats-only` printed at the same instant.

mod common;

use common::{fixture, parse_stats_line, samples, value};
use flux_prometheus::model::jobs;
use flux_prometheus::state::State;

fn rendered() -> std::collections::BTreeMap<String, f64> {
    let mut state = State::with_collectors(&["jobs"]);
    state.set(
        flux_prometheus::collectors::jobs::SECTION,
        jobs::parse(&fixture("job-list.job-stats.json")).expect("fixture parses"),
    );
    samples(&flux_prometheus::collectors::render(&state))
}

/// The `flux jobs --stats-only` columns, computed from exported samples.
fn cli_columns(s: &std::collections::BTreeMap<String, f64>, queue: Option<&str>) -> [u64; 5] {
    let (active, inactive, purged) = match queue {
        None => (
            "flux_jobs{state=\"".to_string(),
            "flux_jobs_inactive{result=\"".to_string(),
            "flux_jobs_purged_total".to_string(),
        ),
        Some(q) => (
            format!("flux_queue_jobs{{queue=\"{q}\",state=\""),
            format!("flux_queue_jobs_inactive{{queue=\"{q}\",result=\""),
            format!("flux_queue_jobs_purged_total{{queue=\"{q}\"}}"),
        ),
    };
    let a = |st: &str| value(s, &format!("{active}{st}\"}}"));
    let i = |r: &str| value(s, &format!("{inactive}{r}\"}}"));
    [
        a("run") + a("cleanup"),
        i("completed"),
        i("failed") + i("canceled") + i("timeout"),
        a("depend") + a("priority") + a("sched"),
        value(s, &purged),
    ]
    .map(|v| v as u64)
}

#[test]
fn instance_counts_equal_flux_jobs_stats_only() {
    common::each_set(|| {
        let expected = parse_stats_line(fixture("cli.jobs-stats.txt").trim());
        assert_eq!(cli_columns(&rendered(), None), expected);
    });
}

#[test]
fn per_queue_counts_equal_flux_jobs_stats_only_by_queue() {
    common::each_set(|| {
        let s = rendered();
        let text = fixture("cli.jobs-stats-by-queue.txt");
        let mut checked = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (queue, stats) = line.split_once(':').expect("QUEUE: stats");
            assert_eq!(
                cli_columns(&s, Some(queue.trim())),
                parse_stats_line(stats.trim()),
                "queue {queue}"
            );
            checked += 1;
        }
        assert_eq!(checked, 2);
    });
}

#[test]
fn failed_excludes_canceled_and_timeout_and_every_result_has_a_series() {
    common::each_set(|| {
        let s = rendered();
        // cli.jobs.txt lists one job of each result; job-list's failed is only
        // the plain failure.
        let cli = fixture("cli.jobs.txt");
        for (result, series) in [
            ("COMPLETED", "completed"),
            ("FAILED", "failed"),
            ("CANCELED", "canceled"),
            ("TIMEOUT", "timeout"),
        ] {
            let n = cli
                .lines()
                .filter(|l| l.split_whitespace().nth(3) == Some(result))
                .count() as f64;
            assert_eq!(
                value(&s, &format!("flux_jobs_inactive{{result=\"{series}\"}}")),
                n,
                "{result}"
            );
        }
    });
}

#[test]
fn active_states_match_the_job_listing() {
    common::each_set(|| {
        let s = rendered();
        let cli = fixture("cli.jobs.txt");
        for state in ["DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP"] {
            let n = cli
                .lines()
                .filter(|l| l.split_whitespace().nth(2) == Some(state))
                .count() as f64;
            let series = format!("flux_jobs{{state=\"{}\"}}", state.to_lowercase());
            assert_eq!(value(&s, &series), n, "{state}");
        }
    });
}

#[test]
fn malformed_payload_is_refused_with_a_message() {
    common::each_set(|| {
        let err = jobs::parse("{\"job_states\": 3}").unwrap_err().to_string();
        assert!(
            err.contains("job-list.job-stats") && err.contains("malformed"),
            "{err}"
        );
    });
}

#[test]
fn without_job_stats_no_job_series_are_exported_but_the_exporter_reports_why() {
    common::each_set(|| {
        let mut state = State::with_collectors(&["jobs"]);
        state.collectors[0].last_error = Some("job-list is not loaded".into());
        let s = samples(&flux_prometheus::collectors::render(&state));
        assert!(!s.keys().any(|k| k.starts_with("flux_jobs")), "{s:?}");
        assert_eq!(
            value(&s, "flux_prometheus_collector_up{collector=\"jobs\"}"),
            0.0
        );
    });
}
