//! Queue metrics from recorded payloads agree with `flux queue list`.

mod common;

use common::{fixture, samples, value};
use flux_prometheus::model::queues;
use flux_prometheus::state::State;

#[test]
fn enabled_and_started_equal_flux_queue_list() {
    common::each_set(|| {
        let names = queues::parse_list(&fixture("job-manager.queue-list.json")).unwrap();
        let statuses: serde_json::Value =
            serde_json::from_str(&fixture("job-manager.queue-status.json")).unwrap();
        let list = names
            .iter()
            .map(|n| queues::parse_status(Some(n), &statuses[n].to_string()).unwrap())
            .collect();
        let mut state = State::with_collectors(&["queues"]);
        state.set(flux_prometheus::collectors::queues::SECTION, list);
        let s = samples(&flux_prometheus::collectors::render(&state));
        // flux queue list: QUEUE EN ST ...; a check mark means yes, the queue
        // marked * is the default.
        let cli = fixture("cli.queue-list.txt");
        let mut rows = 0;
        for line in cli.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let queue = f[0].trim_end_matches('*');
            let yes = |v: &str| if v == "✔" { 1.0 } else { 0.0 };
            assert_eq!(
                value(&s, &format!("flux_queue_enabled{{queue=\"{queue}\"}}")),
                yes(f[1]),
                "{queue} EN"
            );
            assert_eq!(
                value(&s, &format!("flux_queue_started{{queue=\"{queue}\"}}")),
                yes(f[2]),
                "{queue} ST"
            );
            rows += 1;
        }
        assert_eq!(rows, names.len());
    });
}

#[test]
fn the_anonymous_queue_has_no_queue_label_and_bad_payloads_are_named() {
    common::each_set(|| {
        let mut state = State::with_collectors(&["queues"]);
        state.set(
            flux_prometheus::collectors::queues::SECTION,
            vec![queues::parse_status(None, r#"{"enable": true, "start": false}"#).unwrap()],
        );
        let s = samples(&flux_prometheus::collectors::render(&state));
        assert_eq!(value(&s, "flux_queue_enabled"), 1.0);
        assert_eq!(value(&s, "flux_queue_started"), 0.0);
        let err = queues::parse_status(Some("batch"), "{}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("queue-status batch: malformed"), "{err}");
        let err = queues::parse_list(r#"{"queues": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("queue-list: malformed"), "{err}");
    });
}
