//! Broker and instance payloads from the recorded instance.

mod common;

use common::fixture;
use flux_prometheus::model::broker;

#[test]
fn online_brokers_and_overlay_status_read_from_the_recorded_instance() {
    common::each_set(|| {
        // The recorded instance has 4 brokers, all online, overlay full.
        assert_eq!(
            broker::parse_group_count(&fixture("groups.get.broker.online.json")).unwrap(),
            4
        );
        assert_eq!(
            broker::parse_group_count(&fixture("groups.get.broker.torpid.json")).unwrap(),
            0
        );
        assert_eq!(
            broker::parse_overlay_status(&fixture("overlay.health.json")).unwrap(),
            "full"
        );
        assert!(fixture("attrs.json").contains("\"size\": \"4\""));
    });
}

#[test]
fn malformed_broker_payloads_are_named() {
    common::each_set(|| {
        let err = broker::parse_group_count(r#"{"members": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("groups.get") && err.contains("invalid idset 'x'"),
            "{err}"
        );
        let err = broker::parse_overlay_status("{}").unwrap_err().to_string();
        assert!(err.contains("overlay.health: malformed"), "{err}");
    });
}
