//! The OpenMetrics form of a full exposition, rendered from every recorded
//! payload: what a strict OpenMetrics 1.0.0 parser (Prometheus's, when it
//! scrapes with its default Accept header) requires of it.

mod common;

use std::collections::BTreeMap;

/// The sample name of a sample line.
fn sample_name(line: &str) -> &str {
    line.split(['{', ' ']).next().unwrap_or("")
}

#[test]
fn every_family_is_typed_and_named_as_openmetrics_requires() {
    common::each_set(|| {
        let state = common::recorded_state();
        let text = flux_prometheus::collectors::render(&state);
        let om = flux_prometheus::collectors::render_openmetrics(&state);
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
