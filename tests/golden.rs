//! Golden expositions: for each recorded set, the full text the module
//! renders from it is committed beside the payloads (`exposition.txt`, and
//! `exposition.openmetrics.txt` for the OpenMetrics form), and must be
//! rendered again byte for byte. A change to any metric's name, help, type,
//! labels or value then shows in review as a diff of those files.
//! Regenerate them, after a deliberate change, with
//!   UPDATE_GOLDEN=1 cargo test --test golden

mod common;

fn compare(name: &str, rendered: &str) {
    let path = common::fixture_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, rendered).expect("write the golden exposition");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if rendered != committed {
        let first = rendered
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| rendered.lines().count().min(committed.lines().count()));
        panic!(
            "{} differs from what the module renders now, first at line {}:\n  committed: {:?}\n  rendered:  {:?}\nregenerate with UPDATE_GOLDEN=1 cargo test --test golden after a deliberate change",
            path.display(),
            first + 1,
            committed.lines().nth(first),
            rendered.lines().nth(first)
        );
    }
}

#[test]
fn the_text_exposition_of_each_recorded_set_is_as_committed() {
    common::each_set(|| {
        compare(
            "exposition.txt",
            &flux_prometheus::collectors::render(&common::recorded_state()),
        )
    });
}

#[test]
fn the_openmetrics_exposition_of_each_recorded_set_is_as_committed() {
    common::each_set(|| {
        compare(
            "exposition.openmetrics.txt",
            &flux_prometheus::collectors::render_openmetrics(&common::recorded_state()),
        );
    });
}

#[test]
fn counts_over_jobs_are_flux_jobs_and_flux_job_is_only_per_job() {
    // The naming scheme (README, "Naming"): a flux_job_* family has one
    // series per job, so every sample of it carries a jobid label.
    common::each_set(|| {
        let text = flux_prometheus::collectors::render(&common::recorded_state());
        for line in text.lines().filter(|l| l.starts_with("flux_job_")) {
            assert!(line.contains("jobid=\""), "{line}");
        }
        assert!(text.contains("\nflux_jobs_queue_wait_seconds_bucket{"));
    });
}
