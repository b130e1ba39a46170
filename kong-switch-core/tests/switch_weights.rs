//! Scenario tests of the `weights` strategy: raise green before lowering blue in every step.

mod switch_support;

use std::time::Duration;

use kong_switch_core::state::{EventKind, StateLog};
use kong_switch_core::switch::{
    DriftState, OnFailure, Outcome, RestoredTo, RollbackCause, Strategy, SwitchRequest,
    VerifyAmount, VerifyConfig, WeightsOptions,
};
use serde_json::json;
use switch_support::{FakeKong, temp_log, w};

fn weights_topology(kong: &FakeKong) {
    let mut s = kong.state();
    s.services
        .push(json!({"id": "s1", "name": "orders", "host": "orders"}));
    s.upstreams.push(json!({"id": "u1", "name": "orders"}));
    s.targets.insert(
        "orders".into(),
        vec![
            json!({"id": "tb", "target": "orders-blue.svc:8080", "weight": 100}),
            json!({"id": "tg", "target": "10.0.0.9:8080", "weight": 0, "tags": ["kong-switch.color=green"]}),
        ],
    );
}

fn request(steps: &str, on_failure: OnFailure) -> SwitchRequest {
    let mut req = SwitchRequest::new("orders");
    req.strategy = Strategy::Weights(WeightsOptions {
        schedule: steps.parse().expect("steps"),
        on_failure,
    });
    req
}

fn target(id: &str, weight: u32) -> String {
    w(
        "PATCH",
        &format!("/upstreams/orders/targets/{id}"),
        json!({"weight": weight}),
    )
}

#[tokio::test]
async fn four_steps_raise_green_before_lowering_blue() {
    let kong = FakeKong::start("3.9.3", 5.0).await;
    weights_topology(&kong);
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);

    let report = engine
        .switch(&request("10,25,50,100", OnFailure::RestoreStart))
        .await
        .expect("switch");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    assert_eq!(
        kong.writes().await,
        vec![
            target("tg", 10),
            target("tb", 90),
            target("tg", 25),
            target("tb", 75),
            target("tg", 50),
            target("tb", 50),
            target("tg", 100),
            target("tb", 0),
        ]
    );
    // weights apply at once: no router wait on the written node even on 3.x
    assert_eq!(report.nodes[0].converged_after_ms, Some(0));
    let steps = engine
        .log()
        .history("orders")
        .await
        .expect("history")
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Step)
        .count();
    assert_eq!(steps, 4, "one step event per stage");
}

#[tokio::test]
async fn failure_restores_the_saved_weights_raising_blue_first() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    weights_topology(&kong);
    kong.state()
        .fail
        .push(("PATCH".into(), "/upstreams/orders/targets/tb".into(), 500));
    let (_dir, log) = temp_log();

    let report = kong
        .engine(log)
        .switch(&request("50,100", OnFailure::RestoreStart))
        .await
        .expect("report");

    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        kong.writes().await,
        vec![target("tg", 50), target("tb", 50), target("tg", 0)],
        "blue never changed, so only green is lowered back"
    );
    assert_eq!(
        report.rollback.expect("rollback").restored,
        RestoredTo::Start
    );
}

#[tokio::test]
async fn keep_last_good_stays_at_the_last_completed_step() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    weights_topology(&kong);
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    // fail the second step's blue write (75 → 50) after the first step (25%) succeeded
    let mut req = request("25,50,100", OnFailure::KeepLastGood);
    if let Strategy::Weights(o) = &mut req.strategy {
        o.schedule = o.schedule.clone().with_bake(Duration::from_millis(10));
    }
    let plan = engine.plan(&req).await.expect("plan");
    assert_eq!(plan.stages.len(), 3);
    kong.state().fail.push((
        "PATCH".into(),
        "/upstreams/orders/targets/tb#50".into(),
        500,
    ));

    let report = engine.switch(&req).await.expect("report");

    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.message);
    assert_eq!(
        report.rollback.as_ref().expect("rollback").restored,
        RestoredTo::LastGoodStep {
            stage: 0,
            percent: Some(25)
        }
    );
    assert_eq!(
        kong.writes().await,
        vec![
            target("tg", 25),
            target("tb", 75),
            target("tg", 50),
            target("tb", 50),
            target("tg", 25)
        ]
    );
    assert_eq!(
        engine.drift("orders").await.expect("drift").state,
        DriftState::InSync
    );
}

#[tokio::test]
async fn errors_during_a_bake_stop_the_shift_at_the_last_good_step() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    weights_topology(&kong);
    // Green answers errors once it carries half the traffic.
    kong.state().proxy_breaks_at_green_weight = Some(50);
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    let mut req = request("25,50,100", OnFailure::KeepLastGood);
    if let Strategy::Weights(o) = &mut req.strategy {
        o.schedule = o.schedule.clone().with_bake(Duration::from_millis(200));
    }
    let mut verify = VerifyConfig::new(kong.proxy_url("orders"));
    verify.amount = VerifyAmount::Count(3);
    verify.interval = Duration::from_millis(20);
    req.verify = Some(verify);

    let report = engine.switch(&req).await.expect("report");

    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.message);
    let rollback = report.rollback.as_ref().expect("rollback");
    assert_eq!(rollback.cause, RollbackCause::VerificationFailed);
    assert!(
        rollback.reason.contains("during the bake of"),
        "{}",
        rollback.reason
    );
    assert_eq!(
        rollback.restored,
        RestoredTo::LastGoodStep {
            stage: 0,
            percent: Some(25)
        }
    );
    assert_eq!(
        kong.writes().await,
        vec![
            target("tg", 25),
            target("tb", 75),
            target("tg", 50),
            target("tb", 50),
            target("tb", 75),
            target("tg", 25)
        ],
        "the 100% step was never written; the 50% step was undone, blue raised first"
    );
}
