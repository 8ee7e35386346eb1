//! Any text as an RFC 22 idset: a panic is a finding, and so is a set that
//! does not read back from how it prints.
#![no_main]

use flux_prometheus::model::idset::IdSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(set) = IdSet::parse(text) {
        let printed = set.to_string();
        let again = IdSet::parse(&printed).expect("a printed idset parses");
        assert!(again == set, "{printed}");
    }
});
