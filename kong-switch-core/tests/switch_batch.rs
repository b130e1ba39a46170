//! Scenario tests of batch switches: every service carrying a tag, all-or-nothing.

mod switch_support;

use std::time::Duration;

use kong_switch_core::state::{EventKind, StateLog};
use kong_switch_core::switch::{
    DriftState, Error, Outcome, RollbackCause, SwitchRequest, SwitchTarget, VerifyAmount,
    VerifyConfig,
};
use serde_json::{Value, json};
use switch_support::{FakeKong, reopen, temp_log};

fn batch_topology(kong: &FakeKong, apps: &[&str]) {
    let mut s = kong.state();
    for app in apps {
        s.services.push(json!({"id": format!("id-{app}"), "name": app, "host": format!("{app}-blue"), "tags": ["team=shop"]}));
        for color in ["blue", "green"] {
            let name = format!("{app}-{color}");
            s.upstreams
                .push(json!({"id": format!("u-{name}"), "name": name}));
            s.targets.insert(
                name.clone(),
                vec![json!({"id": format!("t-{name}"), "target": "10.0.0.1:8000", "weight": 100})],
            );
        }
    }
}

fn request() -> SwitchRequest {
    let mut req = SwitchRequest::new(SwitchTarget::parse("tag:team=shop").expect("target"));
    req.parallelism = 2;
    req
}

#[tokio::test]
async fn batch_switches_every_tagged_service() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    let (_dir, log) = temp_log();
    let report = kong
        .engine(log)
        .switch_batch(&request())
        .await
        .expect("batch");
    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    let mut writes = kong.writes().await;
    writes.sort();
    assert_eq!(
        writes,
        ["a", "b", "c"]
            .iter()
            .map(|a| format!(
                "PATCH /services/{a} {}",
                json!({"host": format!("{a}-green")})
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.services.len(), 3);
}

#[tokio::test]
async fn one_refused_service_refuses_the_whole_batch_without_writes() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    kong.state()
        .health
        .insert("t-b-green".into(), "UNHEALTHY".into());
    let (_dir, log) = temp_log();
    let report = kong
        .engine(log)
        .switch_batch(&request())
        .await
        .expect("batch");
    assert_eq!(report.outcome, Outcome::Refused);
    let refused: Vec<&str> = report
        .services
        .iter()
        .filter(|s| s.outcome == Outcome::Refused)
        .map(|s| s.target.as_str())
        .collect();
    assert_eq!(refused, vec!["b"]);
    assert!(kong.writes().await.is_empty());
}

#[tokio::test]
async fn a_failed_write_undoes_every_applied_service() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    kong.state()
        .fail
        .push(("PATCH".into(), "/services/b".into(), 500));
    let (_dir, log) = temp_log();
    let mut req = request();
    req.parallelism = 1;

    let report = kong.engine(log).switch_batch(&req).await.expect("batch");

    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.message);
    let hosts: Vec<String> = kong
        .state()
        .services
        .iter()
        .map(|s| s["host"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(hosts.iter().all(|h| h.ends_with("-blue")), "{hosts:?}");
    let writes = kong.writes().await;
    let undo = writes.iter().filter(|w| w.contains("-blue")).count();
    let applied = writes
        .iter()
        .filter(|w| w.contains("-green") && !w.contains("/services/b "))
        .count();
    assert_eq!(
        undo, applied,
        "every applied service was undone: {writes:?}"
    );
}

fn hosts(kong: &FakeKong) -> Vec<String> {
    kong.state()
        .services
        .iter()
        .map(|s| s["host"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("s{i:03}")).collect()
}

#[tokio::test]
async fn a_refusal_names_each_failed_gate_once_however_many_services_fail_it() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    let apps = names(40);
    batch_topology(&kong, &apps.iter().map(String::as_str).collect::<Vec<_>>());
    {
        let mut s = kong.state();
        for app in &apps {
            s.health
                .insert(format!("t-{app}-green"), "UNHEALTHY".into());
        }
    }
    let (_dir, log) = temp_log();

    let report = kong
        .engine(log)
        .switch_batch(&request())
        .await
        .expect("batch");

    assert_eq!(report.outcome, Outcome::Refused);
    assert_eq!(
        report.message.matches("min_healthy").count(),
        1,
        "{}",
        report.message
    );
    assert!(
        report.message.contains("(s000, s001, s002 and 37 more)"),
        "{}",
        report.message
    );
    let tally = report
        .gates
        .iter()
        .find(|t| t.gate.name == "min_healthy")
        .expect("tallied");
    assert_eq!((tally.gate.passed, tally.services), (false, 40));
    assert!(report.services.iter().all(|s| s.failed_gates.len() == 1));
}

#[tokio::test]
async fn dbless_batch_is_one_post_of_the_config_switching_every_service() {
    let kong = FakeKong::start("3.9.3", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    let original = {
        let mut s = kong.state();
        s.database = "off".into();
        let doc = json!({
            "_format_version": "3.0",
            "services": s.services.clone(),
            "upstreams": s.upstreams.clone(),
            "plugins": [{"name": "cors"}],
        });
        s.config = Some(doc.clone());
        doc
    };
    let (_dir, log) = temp_log();

    let report = kong
        .engine(log)
        .switch_batch(&request())
        .await
        .expect("batch");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    let writes = kong.writes().await;
    assert_eq!(
        writes.len(),
        1,
        "one POST /config for the batch: {writes:?}"
    );
    assert!(writes[0].starts_with("POST /config "), "{}", writes[0]);
    let posted = kong.state().config.clone().expect("posted");
    let posted_hosts: Vec<&str> = posted["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["host"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(posted_hosts, ["a-green", "b-green", "c-green"]);
    assert_eq!(posted["plugins"], original["plugins"]);
    let config_reads = kong
        .requests()
        .await
        .iter()
        .filter(|r| r.as_str() == "GET /config")
        .count();
    assert_eq!(
        config_reads, 1,
        "the document is read once, not per service"
    );
    assert!(
        report
            .services
            .iter()
            .all(|s| s.outcome == Outcome::Completed)
    );
}

#[tokio::test]
async fn dbless_batch_dry_run_prints_the_one_post_it_would_make() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b"]);
    {
        let mut s = kong.state();
        s.database = "off".into();
        let doc = json!({"_format_version": "2.1", "services": s.services.clone(), "upstreams": s.upstreams.clone()});
        s.config = Some(doc);
    }
    let mut req = request();
    req.dry_run = true;
    let (_dir, log) = temp_log();

    let report = kong.engine(log).switch_batch(&req).await.expect("batch");

    assert_eq!(report.outcome, Outcome::DryRun, "{}", report.message);
    assert_eq!(report.writes.len(), 1);
    assert_eq!(report.writes[0].path, "/config");
    assert!(kong.writes().await.is_empty());
}

#[tokio::test]
async fn a_large_batch_writes_its_intent_in_parts_and_rollback_restores_every_part() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    let apps = names(250);
    batch_topology(&kong, &apps.iter().map(String::as_str).collect::<Vec<_>>());
    let (_dir, log) = temp_log();
    let mut req = request();
    req.parallelism = 16;
    let engine = kong.engine(log);

    let report = engine.switch_batch(&req).await.expect("batch");

    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    assert!(hosts(&kong).iter().all(|h| h.ends_with("-green")));
    let history = engine.log().history("tag:team=shop").await.expect("log");
    let parts: Vec<(usize, usize, usize)> = history
        .events
        .iter()
        .filter_map(|e| e.intent.as_ref())
        .map(|i| {
            let i = i.readable().expect("readable intent");
            let part = i.part.expect("numbered part");
            (part.index, part.of, i.writes.len())
        })
        .collect();
    assert_eq!(parts, vec![(1, 3, 100), (2, 3, 100), (3, 3, 50)]);

    let rolled = engine
        .rollback("tag:team=shop", "bob", Duration::from_secs(60))
        .await
        .expect("rollback");

    assert_eq!(rolled.outcome, Outcome::Completed, "{}", rolled.message);
    assert!(
        hosts(&kong).iter().all(|h| h.ends_with("-blue")),
        "{:?}",
        hosts(&kong)
    );
}

#[tokio::test]
async fn a_rollback_that_cannot_restore_one_service_still_restores_the_others() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    let apps = names(6);
    batch_topology(&kong, &apps.iter().map(String::as_str).collect::<Vec<_>>());
    let (_dir, log) = temp_log();
    let engine = kong.engine(log).with_parallelism(1);
    let report = engine.switch_batch(&request()).await.expect("batch");
    assert_eq!(report.outcome, Outcome::Completed, "{}", report.message);
    kong.state()
        .fail
        .push(("PATCH".into(), "/services/s001".into(), 500));

    let err = engine
        .rollback("tag:team=shop", "bob", Duration::from_secs(60))
        .await
        .expect_err("one service cannot be restored");

    let Error::Inconsistent {
        message, remaining, ..
    } = &err
    else {
        panic!("expected Inconsistent, got {err:?}");
    };
    assert!(message.contains("/services/s001"), "{message}");
    let remaining: Vec<String> = remaining.iter().map(ToString::to_string).collect();
    assert_eq!(remaining.len(), 1, "{remaining:?}");
    assert!(remaining[0].contains("/services/s001"), "{remaining:?}");
    let hosts = hosts(&kong);
    assert_eq!(
        hosts,
        [
            "s000-blue",
            "s001-green",
            "s002-blue",
            "s003-blue",
            "s004-blue",
            "s005-blue"
        ],
        "every service but the failing one is back on blue"
    );
}

#[tokio::test]
async fn a_crash_mid_batch_is_recovered_from_every_intent_part() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    let apps = names(250);
    batch_topology(&kong, &apps.iter().map(String::as_str).collect::<Vec<_>>());
    let (dir, log) = temp_log();
    let engine = kong.engine(log);
    engine.switch_batch(&request()).await.expect("batch");

    // The same batch again as a crashed run: its three intent parts logged, then only the
    // services of the last part written before the process died.
    let history = engine.log().history("tag:team=shop").await.expect("log");
    let run = uuid::Uuid::new_v4();
    for e in history
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Intent)
    {
        let mut dangling = e.clone();
        dangling.run_id = Some(run);
        engine.log().append(dangling).await.expect("append");
    }
    {
        let mut s = kong.state();
        for (i, svc) in s.services.iter_mut().enumerate() {
            let color = if i >= 200 { "green" } else { "blue" };
            let app = svc["name"].as_str().unwrap_or_default().to_owned();
            svc["host"] = Value::String(format!("{app}-{color}"));
        }
    }
    assert_eq!(
        engine.drift("tag:team=shop").await.expect("drift").state,
        DriftState::DanglingIntent
    );

    let mut back = request();
    back.to = Some("blue".into());
    let report = kong
        .engine(reopen(&dir))
        .switch_batch(&back)
        .await
        .expect("rerun");

    let recovered = report.recovered.expect("recovery reported");
    assert_eq!(recovered.kong, "partial");
    assert_eq!(
        recovered.writes.len(),
        50,
        "the last part's services restored"
    );
    assert!(
        hosts(&kong).iter().all(|h| h.ends_with("-blue")),
        "{:?}",
        hosts(&kong)
    );
    assert_eq!(report.outcome, Outcome::NoOp, "{}", report.message);
}

#[tokio::test]
async fn batch_verification_is_reported_and_its_failure_rolls_every_service_back() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b"]);
    kong.state().proxy_broken = true;
    let (_dir, log) = temp_log();
    let mut req = request();
    let mut verify = VerifyConfig::new(kong.proxy_url("a"));
    verify.amount = VerifyAmount::Count(3);
    verify.interval = Duration::from_millis(5);
    req.verify = Some(verify);

    let report = kong.engine(log).switch_batch(&req).await.expect("batch");

    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.message);
    let v = report.verification.as_ref().expect("verification reported");
    assert_eq!((v.requests, v.ok), (3, 0));
    let rollback = report.rollback.expect("rollback");
    assert_eq!(rollback.cause, RollbackCause::VerificationFailed);
    assert_eq!(rollback.writes.len(), 2);
    assert!(hosts(&kong).iter().all(|h| h.ends_with("-blue")));
    assert!(
        report
            .services
            .iter()
            .all(|s| s.outcome == Outcome::RolledBack)
    );
}

#[tokio::test]
async fn batch_verification_failure_without_rollback_keeps_green_with_exit_7() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b"]);
    kong.state().proxy_broken = true;
    let (_dir, log) = temp_log();
    let mut req = request();
    let mut verify = VerifyConfig::new(kong.proxy_url("a"));
    verify.amount = VerifyAmount::Count(2);
    req.verify = Some(verify);
    req.no_rollback = true;

    let report = kong.engine(log).switch_batch(&req).await.expect("batch");

    assert_eq!(report.outcome, Outcome::VerificationFailed);
    assert_eq!(kong.writes().await.len(), 2);
    assert!(hosts(&kong).iter().all(|h| h.ends_with("-green")));
}

#[tokio::test]
async fn a_tag_no_service_carries_is_an_error_not_a_no_op() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a"]);
    let (_dir, log) = temp_log();
    let req = SwitchRequest::new(SwitchTarget::parse("tag:team=shpo").expect("target"));

    let err = kong
        .engine(log)
        .switch_batch(&req)
        .await
        .expect_err("no service carries the tag");

    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("team=shpo"), "{err}");
    assert!(kong.writes().await.is_empty());
}

#[tokio::test]
async fn a_failed_probe_refuses_every_service_that_would_change() {
    let kong = FakeKong::start("2.8.5", 0.0).await;
    batch_topology(&kong, &["a", "b", "c"]);
    kong.state().services[2]["host"] = json!("c-green"); // already switched: a no-op
    kong.state().proxy_broken = true;
    let (_dir, log) = temp_log();
    let mut req = request();
    req.gates
        .probes
        .push(kong_switch_core::switch::Probe::new(kong.proxy_url("a")));

    let report = kong.engine(log).switch_batch(&req).await.expect("batch");

    assert_eq!(report.outcome, Outcome::Refused, "{}", report.message);
    let outcomes: Vec<(&str, Outcome)> = report
        .services
        .iter()
        .map(|s| (s.target.as_str(), s.outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("a", Outcome::Refused),
            ("b", Outcome::Refused),
            ("c", Outcome::NoOp)
        ]
    );
    let probe = report
        .gates
        .iter()
        .find(|t| t.gate.name.starts_with("probe"))
        .expect("probe tallied");
    assert_eq!((probe.gate.passed, probe.services), (false, 2));
    assert!(kong.writes().await.is_empty());
}
