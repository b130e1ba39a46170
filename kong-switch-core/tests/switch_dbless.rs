//! Scenario test of a switch on a DB-less node: one `POST /config` of the edited document.

mod switch_support;

use kong_switch_core::switch::{Outcome, SwitchRequest};
use serde_json::json;
use switch_support::{FakeKong, temp_log};

#[tokio::test]
async fn dbless_switch_is_one_post_of_the_edited_config_keeping_other_entities() {
    let kong = FakeKong::start("3.9.3", 5.0).await;
    kong.upstream_topology();
    let original = json!({
        "_format_version": "3.0",
        "services": [
            {"id": "svc-orders", "name": "orders", "host": "orders-blue", "port": 80},
            {"id": "svc-billing", "name": "billing", "host": "billing.internal", "port": 80}
        ],
        "upstreams": [{"id": "up-b", "name": "orders-blue"}, {"id": "up-g", "name": "orders-green"}]
    });
    {
        let mut s = kong.state();
        s.database = "off".into();
        s.config = Some(original.clone());
    }
    let (_dir, log) = temp_log();

    let report = kong
        .engine(log)
        .switch(&SwitchRequest::new("orders"))
        .await
        .expect("switch");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    let writes = kong.writes().await;
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].starts_with("POST /config "), "{}", writes[0]);
    let posted = kong.state().config.clone().expect("posted");
    assert_eq!(posted["services"][0]["host"], "orders-green");
    assert_eq!(posted["services"][1], original["services"][1]);
    assert_eq!(posted["upstreams"], original["upstreams"]);
    assert_eq!(
        report.undo[0].body.as_ref(),
        Some(&original),
        "undo posts the saved document"
    );
}
