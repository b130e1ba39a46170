//! Scenario tests of the `route` strategy: ordered route PATCHes, each with its undo.

mod switch_support;

use kong_switch_core::switch::{Outcome, RollbackCause, Strategy, SwitchRequest};
use serde_json::json;
use switch_support::{FakeKong, temp_log, w};

fn route_topology(kong: &FakeKong) {
    let mut s = kong.state();
    s.services
        .push(json!({"id": "svc-b", "name": "orders-blue", "host": "orders-blue.svc"}));
    s.services
        .push(json!({"id": "svc-g", "name": "orders-green", "host": "orders-green.svc"}));
    for r in ["r1", "r2", "r3"] {
        s.routes.push(
            json!({"id": r, "name": r, "paths": [format!("/{r}")], "service": {"id": "svc-b"}}),
        );
    }
}

fn request() -> SwitchRequest {
    let mut req = SwitchRequest::new("orders");
    req.strategy = Strategy::Route;
    req
}

#[tokio::test]
async fn route_switch_patches_every_route_in_order() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    route_topology(&kong);
    let (_dir, log) = temp_log();
    let report = kong.engine(log).switch(&request()).await.expect("switch");
    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    assert_eq!(
        kong.writes().await,
        ["r1", "r2", "r3"]
            .iter()
            .map(|r| w(
                "PATCH",
                &format!("/routes/{r}"),
                json!({"service": {"id": "svc-g"}})
            ))
            .collect::<Vec<_>>()
    );
    let gate = report
        .gates
        .iter()
        .find(|g| g.name == "min_targets")
        .expect("gate");
    assert!(
        gate.observed.contains("not a Kong upstream"),
        "{}",
        gate.observed
    );
}

#[tokio::test]
async fn failure_at_the_second_route_restores_the_first() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    route_topology(&kong);
    kong.state()
        .fail
        .push(("PATCH".into(), "/routes/r2".into(), 500));
    let (_dir, log) = temp_log();

    let report = kong.engine(log).switch(&request()).await.expect("report");

    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        kong.writes().await,
        vec![
            w("PATCH", "/routes/r1", json!({"service": {"id": "svc-g"}})),
            w("PATCH", "/routes/r2", json!({"service": {"id": "svc-g"}})),
            w("PATCH", "/routes/r1", json!({"service": {"id": "svc-b"}})),
        ]
    );
    let rollback = report.rollback.expect("rollback");
    assert_eq!(rollback.cause, RollbackCause::WriteFailed);
    assert_eq!(
        rollback.stopped_at.as_deref(),
        Some("route r2: service orders-blue → orders-green")
    );
    assert!(
        kong.state()
            .routes
            .iter()
            .all(|r| r["service"]["id"] == "svc-b")
    );
}

#[tokio::test]
async fn route_switch_back_finds_the_active_side_by_its_routes() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    route_topology(&kong);
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    engine.switch(&request()).await.expect("to green");
    let again = engine.switch(&request()).await.expect("green again");
    assert_eq!(
        again.outcome,
        Outcome::NoOp,
        "a plain switch never flips back"
    );
    let mut back_req = request();
    back_req.to = Some("orders-blue".into());
    let back = engine.switch(&back_req).await.expect("to blue");
    assert_eq!(back.outcome, Outcome::Completed);
    assert_eq!(
        back.to.as_ref().map(|s| s.name.as_str()),
        Some("orders-blue")
    );
    let again = engine.plan(&request()).await.expect("plan");
    assert_eq!(
        again.writes().len(),
        3,
        "the next switch moves the three routes to green again"
    );
}
