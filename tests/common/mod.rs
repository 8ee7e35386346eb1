//! Helpers shared by the integration tests: the recorded flux-core 0.88
//! payloads, and a reader for rendered exposition text.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn fixture_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/flux-0.88");
    assert!(
        dir.is_dir(),
        "recorded payloads not found at {} (shared/ must sit beside the repo)",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Samples of an exposition, keyed by `name{label="value",...}` exactly as
/// written (labels in the order rendered).
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').expect("sample line has a value");
            (key.to_string(), value.parse::<f64>().unwrap_or(f64::NAN))
        })
        .collect()
}

pub fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| {
        panic!(
            "no sample {key}; have: {:#?}",
            samples.keys().collect::<Vec<_>>()
        )
    })
}

/// `flux jobs --stats-only` output: running, completed, failed, pending,
/// inactive purged.
pub fn parse_stats_line(line: &str) -> [u64; 5] {
    let n: Vec<u64> = line
        .split(',')
        .map(|part| {
            part.split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
                .expect("count")
        })
        .collect();
    [n[0], n[1], n[2], n[3], n[4]]
}
