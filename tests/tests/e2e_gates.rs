//! End to end: every pre-flight gate refuses the switch with exit 3, names what it observed,
//! and leaves Kong exactly as it was (design §3 step 3; "any failure before step 5 changes
//! nothing in Kong").

mod common;

use std::time::Duration;

use common::e2e::{Cli, Green, Pair, config_of, gate, host_of, pair, wait_color, wait_health};
use kong_switch_tests::backend::BackendMode;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::StandIn;
use serde_json::Value;

/// Stand-in with a short router delay (0.3 s) for speed; the switch tests use Kong's default.
async fn env() -> Env {
    Env::start_with(StandIn::builder().router_delay(Duration::from_millis(300))).await
}

/// Runs `switch <base> <extra…>` expecting a refusal; checks exit 3, the report, and that Kong
/// (the pair's service, routes, upstreams and targets, and the stand-in's write log) is
/// unchanged. Returns the report.
async fn refused(env: &Env, p: &Pair, extra: &[&str]) -> Value {
    let ups: Vec<&str> = vec![&p.blue_up, &p.green_up];
    let before = config_of(env, &[&p.base], &ups).await;
    if let Some(standin) = env.standin() {
        standin.log().clear();
    }
    let cli = Cli::new(env);
    let mut args = vec!["switch", p.base.as_str()];
    args.extend_from_slice(extra);
    let (code, report) = cli.json(&args).await;
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(report["outcome"], "refused", "{report:#}");
    assert_eq!(report["writes"], serde_json::json!([]), "{report:#}");
    let gates = report["gates"].as_array().cloned().unwrap_or_default();
    assert!(!gates.is_empty(), "{report:#}");
    for g in &gates {
        assert!(
            g["name"].is_string()
                && g["passed"].is_boolean()
                && !g["observed"].as_str().unwrap_or_default().is_empty()
                && !g["required"].as_str().unwrap_or_default().is_empty(),
            "every gate says what it observed and required: {g}"
        );
    }
    assert!(
        report["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing changed"),
        "{report:#}"
    );
    assert_eq!(
        config_of(env, &[&p.base], &ups).await,
        before,
        "Kong changed"
    );
    if let Some(standin) = env.standin() {
        assert!(
            standin.log().writes().is_empty(),
            "{:?}",
            standin.log().writes()
        );
    }
    // The refusal is logged, and nothing else.
    let kinds: Vec<Value> = cli
        .history(&p.base)
        .await
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![Value::from("refused")]);
    assert_eq!(host_of(env, &p.base).await, p.blue_up);
    report
}

fn failed(report: &Value, name: &str) -> Value {
    let g = gate(report, name).clone();
    assert_eq!(g["passed"], false, "{g}");
    g
}

fn passed(report: &Value, name: &str) {
    assert_eq!(gate(report, name)["passed"], true, "{}", report["gates"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_green_upstream_is_refused_and_kong_is_unchanged() {
    let env = env().await;
    let p = pair(&env, "nogreen", Green::Missing, &[]).await;
    let report = refused(&env, &p, &[]).await;
    let g = failed(&report, "green_exists");
    assert!(
        g["observed"]
            .as_str()
            .unwrap_or_default()
            .contains(&p.green_up),
        "{g}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_green_targets_is_refused_and_kong_is_unchanged() {
    let env = env().await;
    let p = pair(&env, "mintgt", Green::Healthy, &[]).await;
    let report = refused(&env, &p, &["--min-targets", "2"]).await;
    passed(&report, "green_exists");
    passed(&report, "min_healthy");
    let g = failed(&report, "min_targets");
    assert!(
        g["observed"].as_str().unwrap_or_default().starts_with('1'),
        "{g}"
    );
    assert_eq!(g["required"], ">= 2");
}

async fn unhealthy_green_is_refused(mode: BackendMode) {
    let env = env().await;
    let p = pair(&env, "unhealthy", Green::Healthy, &[]).await;
    p.green.set_mode(mode).await.expect("green mode");
    wait_health(&env, &p.green_up, "UNHEALTHY", Duration::from_secs(10)).await;
    let report = refused(&env, &p, &["--min-healthy", "1.0"]).await;
    passed(&report, "green_exists");
    passed(&report, "min_targets");
    let g = failed(&report, "min_healthy");
    assert!(
        g["observed"]
            .as_str()
            .unwrap_or_default()
            .contains("UNHEALTHY"),
        "{g}"
    );
    // Traffic never left blue.
    wait_color(&env, &p.path, "blue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_backend_down_is_unhealthy_and_refused() {
    unhealthy_green_is_refused(BackendMode::Down).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_backend_failing_is_unhealthy_and_refused() {
    unhealthy_green_is_refused(BackendMode::Failing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthchecks_off_is_refused_without_allow_unknown_health_and_accepted_with_it() {
    let env = env().await;
    let p = pair(&env, "hcoff", Green::NoChecks, &[]).await;
    let report = refused(&env, &p, &[]).await;
    let g = failed(&report, "min_healthy");
    assert!(
        g["observed"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown"),
        "{g}"
    );

    let cli = Cli::new(&env);
    let url = p.url(&env);
    let (code, report) = cli
        .json(&[
            "switch",
            &p.base,
            "--allow-unknown-health",
            "--verify",
            &url,
            "--expect-header",
            "X-Color=green",
        ])
        .await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "completed");
    passed(&report, "min_healthy");
    assert_eq!(host_of(&env, &p.base).await, p.green_up);
    wait_color(&env, &p.path, "green").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_probe_is_refused_and_kong_is_unchanged() {
    let env = env().await;
    let p = pair(&env, "probe", Green::Healthy, &[]).await;
    // Green answers X-Version v2; the probe demands v3.
    let probe = format!("{}/ready", p.green.url());
    let report = refused(
        &env,
        &p,
        &["--probe", &probe, "--probe-header", "X-Version=v3"],
    )
    .await;
    passed(&report, "green_exists");
    passed(&report, "min_targets");
    passed(&report, "min_healthy");
    let g = failed(&report, "probe");
    assert!(
        !g["observed"].as_str().unwrap_or_default().is_empty(),
        "{g}"
    );
}

/// Kong reports a target's health from its last active check: a green that went down after it
/// keeps reading HEALTHY until Kong checks again (here, with a 300 s interval, not for minutes).
/// The engine checks the targets about to receive traffic itself, so the switch is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_that_just_went_down_is_refused_although_kong_still_reports_it_healthy() {
    let env = env().await;
    let p = pair(&env, "stale", Green::Healthy, &[]).await;
    let mut checks = common::e2e::active_checks();
    checks["active"]["healthy"]["interval"] = serde_json::json!(300);
    checks["active"]["unhealthy"]["interval"] = serde_json::json!(300);
    common::expect(
        &env,
        "PATCH",
        &format!("/upstreams/{}", p.green_up),
        Some(serde_json::json!({ "healthchecks": checks })),
        200,
    )
    .await;
    // Any check the new settings start runs now, while green still answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    p.green
        .set_mode(BackendMode::Down)
        .await
        .expect("green goes down");
    let kong_says = common::e2e::health(&env, &p.green_up).await;
    assert!(
        kong_says.values().all(|h| h == "HEALTHY"),
        "Kong has not checked again yet: {kong_says:?}"
    );

    let report = refused(&env, &p, &[]).await;

    let g = failed(&report, "idle_targets_checked");
    assert!(
        g["observed"]
            .as_str()
            .unwrap_or_default()
            .contains("0 of 1"),
        "{g}"
    );
    failed(&report, "min_healthy");
    wait_color(&env, &p.path, "blue").await;
}
