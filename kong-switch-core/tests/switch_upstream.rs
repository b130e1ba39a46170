//! Scenario tests of the `upstream` strategy against a stateful Kong stand-in: the exact
//! ordered Admin API writes of each run.

mod switch_support;

use std::time::Duration;

use kong_switch_core::state::{EventKind, LeaseRequest, StateLog};
use kong_switch_core::switch::{
    DriftState, Error, Outcome, RollbackCause, SwitchRequest, VerifyAmount, VerifyConfig,
};
use serde_json::json;
use switch_support::{FakeKong, reopen, temp_log, w};

fn request() -> SwitchRequest {
    SwitchRequest::new("orders")
}

#[tokio::test]
async fn upstream_switch_is_exactly_one_patch_and_is_recorded() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);

    let report = engine.switch(&request()).await.expect("switch");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    assert_eq!(
        kong.writes().await,
        vec![w(
            "PATCH",
            "/services/orders",
            json!({"host": "orders-green"})
        )]
    );
    assert_eq!(report.writes.len(), 1);
    assert!(report.gates.iter().all(|g| g.passed));
    assert!(
        report.reads.concurrent >= 2,
        "reads are issued concurrently: {:?}",
        report.reads
    );
    let kinds: Vec<EventKind> = engine
        .log()
        .history("orders")
        .await
        .expect("history")
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![EventKind::Intent, EventKind::Completed, EventKind::Status]
    );
}

#[tokio::test]
async fn second_identical_switch_is_a_noop_with_zero_writes() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    let mut req = request();
    req.to = Some("orders-green".into());

    engine.switch(&req).await.expect("first");
    let before = kong.writes().await.len();
    let second = engine.switch(&req).await.expect("second");

    assert_eq!(second.outcome, Outcome::NoOp);
    assert!(
        second.message.contains("nothing to do"),
        "{}",
        second.message
    );
    assert_eq!(
        kong.writes().await.len(),
        before,
        "no Kong write on a no-op"
    );
}

#[tokio::test]
async fn switching_back_names_blue_and_is_the_same_single_write() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
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
    let back = engine.switch(&back_req).await.expect("back to blue");

    assert_eq!(back.outcome, Outcome::Completed);
    assert_eq!(back.to.as_ref().map(|s| s.color.as_str()), Some("blue"));
    assert_eq!(
        kong.writes().await,
        vec![
            w("PATCH", "/services/orders", json!({"host": "orders-green"})),
            w("PATCH", "/services/orders", json!({"host": "orders-blue"})),
        ]
    );
}

#[tokio::test]
async fn refused_gates_write_nothing_and_list_every_gate_with_observed_values() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    kong.state()
        .health
        .insert("t-orders-green".into(), "UNHEALTHY".into());
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    let mut req = request();
    req.gates.min_targets = 2;

    let report = engine.switch(&req).await.expect("report");

    assert_eq!(report.outcome, Outcome::Refused);
    assert!(
        kong.writes().await.is_empty(),
        "nothing in Kong changes on refusal"
    );
    let by_name = |n: &str| report.gates.iter().find(|g| g.name == n).expect(n).clone();
    assert!(by_name("green_exists").passed);
    let targets = by_name("min_targets");
    assert!(!targets.passed);
    assert_eq!(targets.observed, "1 targets with weight > 0 (of 1 targets)");
    let health = by_name("min_healthy");
    assert!(!health.passed);
    assert_eq!(health.observed, "0 of 1 HEALTHY, 1 UNHEALTHY");
    assert!(report.message.contains("min_targets") && report.message.contains("min_healthy"));
    let last = engine
        .log()
        .last("orders")
        .await
        .expect("log")
        .expect("event");
    assert_eq!(last.kind, EventKind::Refused);
}

#[tokio::test]
async fn healthchecks_off_is_unknown_and_refused_unless_allowed() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    kong.state()
        .health
        .insert("t-orders-green".into(), "HEALTHCHECKS_OFF".into());
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);

    let refused = engine.switch(&request()).await.expect("report");
    assert_eq!(refused.outcome, Outcome::Refused);

    let mut req = request();
    req.gates.allow_unknown_health = true;
    let done = engine.switch(&req).await.expect("report");
    assert_eq!(done.outcome, Outcome::Completed);
}

#[tokio::test]
async fn missing_green_upstream_is_refused_by_the_green_exists_gate() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    kong.state()
        .upstreams
        .retain(|u| u["name"] != "orders-green");
    let (_dir, log) = temp_log();
    let report = kong.engine(log).switch(&request()).await.expect("report");
    assert_eq!(report.outcome, Outcome::Refused);
    let gate = &report.gates[0];
    assert_eq!((gate.name.as_str(), gate.passed), ("green_exists", false));
    assert_eq!(gate.observed, "no upstream orders-green");
    assert!(kong.writes().await.is_empty());
}

#[tokio::test]
async fn held_lease_fails_fast_naming_the_holder_without_reads_or_writes() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (dir, log) = temp_log();
    let holder = log
        .acquire(LeaseRequest::new(
            "orders",
            "alice@ci (pid 42)",
            Duration::from_secs(60),
        ))
        .await
        .expect("lease");
    let engine = kong.engine(reopen(&dir));

    let err = engine.switch(&request()).await.expect_err("locked");

    assert!(
        matches!(&err, Error::Locked { holder, .. } if holder == "alice@ci (pid 42)"),
        "{err}"
    );
    assert!(
        kong.requests().await.is_empty(),
        "no Admin API request at all"
    );
    log.release(holder).await.expect("release");
}

#[tokio::test]
async fn dry_run_plan_writes_equal_the_writes_of_the_real_run() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    let mut dry = request();
    dry.dry_run = true;

    let plan = engine.plan(&request()).await.expect("plan");
    let dry_report = engine.switch(&dry).await.expect("dry run");
    assert_eq!(dry_report.outcome, Outcome::DryRun);
    assert!(kong.writes().await.is_empty(), "a dry run writes nothing");
    assert!(
        engine
            .log()
            .history("orders")
            .await
            .expect("log")
            .events
            .is_empty()
    );

    let real = engine.switch(&request()).await.expect("switch");
    assert_eq!(real.writes, plan.writes());
    assert_eq!(dry_report.writes, plan.writes());
    assert_eq!(
        plan.undo()[0].to_string(),
        r#"PATCH /services/orders {"host":"orders-blue"}"#
    );
}

#[tokio::test]
async fn verification_waits_for_the_3x_router_then_passes() {
    let kong = FakeKong::start("3.9.3", 0.6).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    let mut req = request();
    let mut verify = VerifyConfig::new(kong.proxy_url("orders"));
    verify.amount = VerifyAmount::Count(5);
    verify.interval = Duration::from_millis(20);
    verify.expect_header = Some("x-color=green".parse().expect("header"));
    req.verify = Some(verify);

    let report = engine.switch(&req).await.expect("switch");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    let v = report.verification.expect("verification");
    assert_eq!((v.requests, v.ok, v.from_new_side), (5, 5, Some(5)));
    let converged = v.converged_after_ms.expect("convergence measured");
    assert!(
        converged >= 400,
        "the proxy served green only after the router rebuild: {converged} ms"
    );
    assert_eq!(report.nodes[0].node, "primary");
    assert!(report.nodes[0].converged);
}

#[tokio::test]
async fn failed_verification_rolls_back_with_the_undo_write() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    kong.state().proxy_broken = true;
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    let mut req = request();
    let mut verify = VerifyConfig::new(kong.proxy_url("orders"));
    verify.amount = VerifyAmount::Count(3);
    verify.interval = Duration::from_millis(5);
    req.verify = Some(verify);

    let report = engine.switch(&req).await.expect("report");

    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        kong.writes().await,
        vec![
            w("PATCH", "/services/orders", json!({"host": "orders-green"})),
            w("PATCH", "/services/orders", json!({"host": "orders-blue"})),
        ]
    );
    let rollback = report.rollback.expect("rollback");
    assert_eq!(rollback.cause, RollbackCause::VerificationFailed);
    assert!(
        rollback.reason.contains("success 0/3"),
        "{}",
        rollback.reason
    );
    let last = engine
        .log()
        .last("orders")
        .await
        .expect("log")
        .expect("event");
    assert_eq!(last.kind, EventKind::RolledBack);
}

#[tokio::test]
async fn failed_verification_without_rollback_keeps_green_with_exit_7() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    kong.state().proxy_broken = true;
    let (_dir, log) = temp_log();
    let mut req = request();
    let mut verify = VerifyConfig::new(kong.proxy_url("orders"));
    verify.amount = VerifyAmount::Count(2);
    req.verify = Some(verify);
    req.no_rollback = true;

    let report = kong.engine(log).switch(&req).await.expect("report");

    assert_eq!(report.outcome, Outcome::VerificationFailed);
    assert_eq!(kong.writes().await.len(), 1);
}

#[tokio::test]
async fn cancelled_run_writes_nothing_and_reports_interrupted() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let token = tokio_util::sync::CancellationToken::new();
    token.cancel();
    let engine = kong.engine(log).with_cancellation(token);

    let report = engine.switch(&request()).await.expect("report");

    assert_eq!(report.outcome, Outcome::Interrupted);
    assert!(
        kong.writes().await.is_empty(),
        "stopped before the first step"
    );
}

#[tokio::test]
async fn dangling_intent_shows_as_drift_and_a_rerun_resolves_it() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (dir, log) = temp_log();
    let engine = kong.engine(log);
    engine.switch(&request()).await.expect("switch to green");
    assert_eq!(
        engine.drift("orders").await.expect("drift").state,
        DriftState::InSync
    );

    // Simulate a crash after the intent of a switch back to blue: intent logged, Kong written,
    // no outcome recorded.
    let history = engine.log().history("orders").await.expect("history");
    let intent = history
        .events
        .iter()
        .find(|e| e.kind == EventKind::Intent)
        .expect("intent")
        .clone();
    let mut back = request();
    back.to = Some("orders-blue".into());
    let plan_back = engine.plan(&back).await.expect("plan back");
    let mut dangling = intent.next(EventKind::Intent);
    let mut saved = intent
        .intent
        .clone()
        .expect("payload")
        .readable()
        .expect("readable")
        .clone();
    saved.prior = json!({"plan": plan_back});
    saved.writes = plan_back.writes();
    saved.undo = plan_back.undo();
    dangling = dangling.with_intent(saved);
    engine.log().append(dangling).await.expect("append");
    kong.state().services[0]["host"] = json!("orders-blue");

    let drift = engine.drift("orders").await.expect("drift");
    assert_eq!(drift.state, DriftState::DanglingIntent);

    let rerun = kong
        .engine(reopen(&dir))
        .switch(&request())
        .await
        .expect("rerun");
    let recovered = rerun.recovered.expect("recovery reported");
    assert_eq!(recovered.kong, "after");
    assert_eq!(recovered.action, "recorded as completed");
    assert_eq!(
        engine.drift("orders").await.expect("drift").state,
        DriftState::InSync
    );
}

#[tokio::test]
async fn rollback_restores_the_saved_state_and_only_writes_what_differs() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    engine.switch(&request()).await.expect("switch");

    let report = engine
        .rollback("orders", "bob", Duration::from_secs(60))
        .await
        .expect("rollback");
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!(
        kong.writes().await,
        vec![
            w("PATCH", "/services/orders", json!({"host": "orders-green"})),
            w("PATCH", "/services/orders", json!({"host": "orders-blue"})),
        ]
    );
    assert_eq!(
        engine.drift("orders").await.expect("drift").state,
        DriftState::InSync
    );

    let again = engine
        .rollback("orders", "bob", Duration::from_secs(60))
        .await
        .expect("again");
    assert_eq!(again.outcome, Outcome::NoOp);
    assert_eq!(
        kong.writes().await.len(),
        2,
        "Kong already shows the saved state"
    );
}

#[tokio::test]
async fn a_change_made_outside_kong_switch_shows_as_drift() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    engine.switch(&request()).await.expect("switch");
    kong.state().services[0]["host"] = json!("orders-blue");

    let drift = engine.drift("orders").await.expect("drift");
    assert_eq!(drift.state, DriftState::Drifted);
    assert_eq!(drift.values[0].kong, json!("orders-blue"));
    assert_eq!(drift.values[0].expected, json!("orders-green"));
}

#[tokio::test]
async fn tagged_upstreams_are_found_without_the_naming_convention() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    {
        let mut s = kong.state();
        s.services
            .push(json!({"id": "s1", "name": "orders", "host": "orders-v1"}));
        s.upstreams.push(json!({"id": "u1", "name": "orders-v1", "tags": ["app=orders", "kong-switch.color=blue"]}));
        s.upstreams.push(json!({"id": "u2", "name": "orders-v2", "tags": ["app=orders", "kong-switch.color=green"]}));
        s.upstreams.push(json!({"id": "u3", "name": "billing-v2", "tags": ["app=billing", "kong-switch.color=green"]}));
        s.targets.insert(
            "orders-v2".into(),
            vec![json!({"id": "t2", "target": "10.0.0.2:8000", "weight": 100})],
        );
    }
    let (_dir, log) = temp_log();
    let report = kong.engine(log).switch(&request()).await.expect("switch");
    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    assert_eq!(report.to.as_ref().map(|s| s.color.as_str()), Some("green"));
    assert_eq!(
        kong.writes().await,
        vec![w("PATCH", "/services/orders", json!({"host": "orders-v2"}))]
    );
}

#[tokio::test]
async fn to_blue_by_color_switches_back_to_the_blue_upstream() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    kong.upstream_topology();
    let (_dir, log) = temp_log();
    let engine = kong.engine(log);
    engine.switch(&request()).await.expect("switch to green");
    let mut back = request();
    back.to = Some("blue".into());

    let report = engine.switch(&back).await.expect("switch back");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    assert_eq!(
        kong.writes().await.last().cloned(),
        Some(w(
            "PATCH",
            "/services/orders",
            json!({"host": "orders-blue"})
        ))
    );
    let again = engine.switch(&back).await.expect("again");
    assert_eq!(again.outcome, Outcome::NoOp, "{}", again.message);
}

#[tokio::test]
async fn an_automatic_rollback_on_3x_waits_for_the_router_before_reporting() {
    let kong = FakeKong::start("3.9.3", 0.3).await;
    kong.upstream_topology();
    kong.state().proxy_broken = true;
    let (_dir, log) = temp_log();
    let mut req = request();
    let mut verify = VerifyConfig::new(kong.proxy_url("orders"));
    verify.amount = VerifyAmount::Count(2);
    verify.interval = Duration::from_millis(5);
    verify.convergence_timeout = Some(Duration::from_millis(400));
    req.verify = Some(verify);

    let report = kong.engine(log).switch(&req).await.expect("report");

    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.message);
    let rollback = report.rollback.expect("rollback");
    assert_eq!(rollback.writes.len(), 1);
    let waited = rollback
        .nodes
        .first()
        .expect("the rollback waited for Kong");
    assert_eq!(waited.node, "primary");
    assert!(waited.converged);
    assert!(
        waited.converged_after_ms >= Some(250),
        "waited the router rebuild: {waited:?}"
    );
}
