//! The checked-in metrics reference (docs/metrics.md and the source of
//! flux-prometheus-metrics(7)) is what the collectors' declarations write,
//! and every family the module renders from the recorded payloads is
//! declared there with the same help and type. A help text changed without
//! the reference regenerated fails here. Regenerate with
//!   UPDATE_REFERENCE=1 cargo test --test reference
//! (or `flux prometheus metrics --format=markdown > docs/metrics.md` and
//! `--format=rst > doc/man7/flux-prometheus-metrics.rst`).

mod common;

use std::path::PathBuf;

use flux_prometheus::reference::{self, Format};

fn compare(path: &str, format: Format) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    let written = reference::write(format);
    if std::env::var_os("UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &written).expect("write the reference");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if written != committed {
        let first = written
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| written.lines().count().min(committed.lines().count()));
        panic!(
            "{} differs from what the collectors declare, first at line {}:\n  committed: {:?}\n  declared:  {:?}\nregenerate with UPDATE_REFERENCE=1 cargo test --test reference",
            path.display(),
            first + 1,
            committed.lines().nth(first),
            written.lines().nth(first)
        );
    }
}

#[test]
fn the_markdown_reference_is_as_committed() {
    compare("docs/metrics.md", Format::Markdown);
}

#[test]
fn the_man_page_source_is_as_committed() {
    compare("doc/man7/flux-prometheus-metrics.rst", Format::Rst);
}

#[test]
fn every_rendered_family_is_in_the_reference_with_its_help() {
    let markdown = reference::write(Format::Markdown);
    common::each_set(|| {
        let text = flux_prometheus::collectors::render(&common::recorded_state());
        for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
            let (name, help) = line["# HELP ".len()..]
                .split_once(' ')
                .expect("a HELP line");
            let row = markdown
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("{name} is rendered but not in the reference"));
            assert!(row.contains(&help.replace('|', "\\|")), "{row}");
        }
    });
}
