//! Golden expositions: for each recorded set, the full text the module
//! renders from it is committed beside the payloads (`exposition.txt`, and
//! `exposition.openmetrics.txt` for the OpenMetrics form), and must be
//! rendered again byte for byte. A change to any metric's name, help, type,
//! labels or value then shows in review as a diff of those files.
//! Regenerate them, after a deliberate change, with
//!   UPDATE_GOLDEN=1 cargo test --test golden

mod common;

use flux_prometheus::exposition::openmetrics;
use flux_prometheus::render;

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
    common::each_set(|| compare("exposition.txt", &render::text(&common::recorded_state())));
}

#[test]
fn the_openmetrics_exposition_of_each_recorded_set_is_as_committed() {
    common::each_set(|| {
        let text = render::text(&common::recorded_state());
        compare("exposition.openmetrics.txt", &openmetrics(&text));
    });
}
