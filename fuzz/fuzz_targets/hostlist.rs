//! Any text as an R `nodelist` entry: a panic, or more names than the cap,
//! is a finding. What expands must expand to what its count said.
#![no_main]

use flux_prometheus::model::hostlist::{expand, MAX_HOSTS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(hosts) = expand(text) {
        assert!(hosts.len() as u64 <= MAX_HOSTS, "{} names", hosts.len());
    }
});
