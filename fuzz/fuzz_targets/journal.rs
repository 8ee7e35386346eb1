//! Lines of text as job-manager journal responses, through every model that
//! reads the journal (the job flow, the allocated set, nested instances
//! and the roster), and each line as a job's R: a panic is a finding.
#![no_main]

use flux_prometheus::model::allocations::Allocations;
use flux_prometheus::model::jobflow::{JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS};
use flux_prometheus::model::nested::Nested;
use flux_prometheus::model::resources::{JobR, ResourceSet};
use flux_prometheus::model::roster::Roster;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    flow.know_queues(&["batch", "debug"]);
    let mut allocations = Allocations::default();
    let mut nested = Nested::new(0, None, Box::new(|uid| uid.to_string()));
    let mut roster = Roster::default();
    flow.begin_backlog();
    for line in text.lines() {
        let _ = flow.apply_tracking(
            line,
            Some(&mut allocations),
            Some(&mut nested),
            Some(&mut roster),
        );
        if let Ok(raw) = serde_json::from_str::<&RawValue>(line) {
            let _ = JobR::read(raw);
            let _ = ResourceSet::from_rv1_json(Some(raw));
        }
    }
    let _ = flow.summary();
    let _ = roster.usage();
});
