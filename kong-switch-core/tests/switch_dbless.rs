//! Scenario tests of a DB-less node: a switch is one `POST /config` applying its edit to the
//! node's current configuration, and its rollback applies the inverse edit to the
//! configuration as it is then, keeping every change made meanwhile.

mod switch_support;

use std::time::Duration;

use kong_switch_core::switch::{Outcome, SwitchRequest};
use serde_json::json;
use switch_support::{FakeKong, temp_log};

#[tokio::test]
async fn a_dbless_switch_posts_its_edit_and_its_rollback_keeps_a_change_made_meanwhile() {
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
    let (dir, log) = temp_log();

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
        report.undo[0].to_string(),
        "POST /config (service orders: host orders-green → orders-blue)",
        "the undo is an edit, made at write time, not a saved document; it says what it changes"
    );
    assert!(report.undo[0].body.is_none());
    assert_eq!(
        report.steps[0].description,
        "service orders: host orders-blue → orders-green"
    );

    // Another writer changes billing; the rollback undoes only the switch's own edit.
    {
        let mut s = kong.state();
        if let Some(config) = s.config.as_mut() {
            config["services"][1]["host"] = json!("billing-v2.internal");
        }
    }
    let rollback = kong
        .engine(switch_support::reopen(&dir))
        .rollback("orders", "tester", Duration::from_secs(60))
        .await
        .expect("rollback");

    assert_eq!(rollback.outcome, Outcome::Completed, "{}", rollback.message);
    let now = kong.state().config.clone().expect("posted");
    assert_eq!(now["services"][0]["host"], "orders-blue");
    assert_eq!(
        now["services"][1]["host"], "billing-v2.internal",
        "the change made meanwhile stays"
    );
}
