//! End to end: `status` reads Kong through the real binary (issue 3), `history` shows what a
//! switch recorded with its deployment attributes (design §4), and a batch switch by tag is
//! all-or-nothing (design §3).

mod common;

use std::time::Duration;

use common::e2e::{Cli, Green, config_of, host_of, pair, wait_color, wait_health};
use kong_switch_tests::backend::BackendMode;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::StandIn;
use serde_json::{Value, json};

/// Stand-in with a short router delay (0.3 s) for speed; the switch tests use Kong's default.
async fn env() -> Env {
    Env::start_with(StandIn::builder().router_delay(Duration::from_millis(300))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_shows_service_routes_upstream_targets_health_color_last_event_and_drift() {
    let env = env().await;
    let p = pair(&env, "st", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);

    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["service"]["name"], p.base.as_str());
    assert_eq!(status["service"]["host"], p.blue_up.as_str());
    assert_eq!(status["routes"][0]["name"], p.base.as_str());
    assert_eq!(status["routes"][0]["paths"], json!([p.path]));
    assert_eq!(status["upstream"]["name"], p.blue_up.as_str());
    assert_eq!(status["upstream"]["healthchecks_enabled"], true);
    let targets = status["upstream"]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(targets.len(), 1, "{status:#}");
    assert_eq!(targets[0]["target"], env.target_for(&p.blue).as_str());
    assert_eq!(targets[0]["health"], "HEALTHY", "{status:#}");
    assert_eq!(status["active_color"], "blue");
    assert_eq!(status["last_event"], Value::Null);
    assert_eq!(status["drift"]["state"], "no_history");
    assert!(status["kong"]["version"].is_string(), "{status:#}");

    let (code, _) = cli.json(&["switch", &p.base]).await;
    assert_eq!(code, Some(0));
    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["active_color"], "green");
    assert_eq!(status["upstream"]["name"], p.green_up.as_str());
    assert_eq!(status["upstream"]["targets"][0]["health"], "HEALTHY");
    assert_eq!(status["last_event"]["kind"], "status", "{status:#}");
    assert_eq!(status["drift"]["state"], "in_sync", "{status:#}");

    // A change behind kong-switch's back is drift: exit 9.
    common::expect(
        &env,
        "PATCH",
        &format!("/services/{}", p.base),
        Some(json!({ "host": p.blue_up })),
        200,
    )
    .await;
    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(9), "{status:#}");
    assert_eq!(status["drift"]["state"], "drifted");
    assert_eq!(status["active_color"], "blue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_after_a_switch_shows_intent_completed_and_idle_with_the_deployment_attributes() {
    let env = env().await;
    let p = pair(&env, "hist", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    let (code, report) = cli
        .json(&[
            "switch",
            &p.base,
            "--app-version",
            "2.4.1",
            "--build-id",
            "ci-881",
            "--environment",
            "staging",
            "--deployment",
            "orders-green",
            "--actor",
            "carol",
        ])
        .await;
    assert_eq!(code, Some(0), "{report:#}");
    let events = cli.history(&p.base).await;
    let summary: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|e| (e["kind"].clone(), e["status"].clone(), e["color"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("intent"), Value::Null, Value::Null),
            (json!("completed"), json!("active"), json!("green")),
            (json!("status"), json!("idle"), json!("blue")),
        ],
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(e["version"], "2.4.1", "{e}");
        assert_eq!(e["build_id"], "ci-881", "{e}");
        assert_eq!(e["environment"], "staging", "{e}");
        assert_eq!(e["deployment"], "orders-green", "{e}");
        assert_eq!(e["actor"], "carol", "{e}");
        assert_eq!(e["service"], p.base.as_str(), "{e}");
        assert_eq!(e["run_id"], report["run_id"], "{e}");
        assert_eq!(
            (e["from"].clone(), e["to"].clone()),
            (json!("blue"), json!("green"))
        );
    }
    assert_eq!(
        events[0]["intent"]["writes"][0]["body"],
        json!({ "host": p.green_up })
    );
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![1, 2, 3]);

    // The text form says the same.
    let text = cli.run(&["history", &p.base]).await;
    assert_eq!(text.code, Some(0));
    assert!(
        text.stdout.contains("completed") && text.stdout.contains("2.4.1"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_switch_by_tag_is_all_or_nothing() {
    let env = env().await;
    let tag = format!("app={}", Env::unique("batch"));
    let tags = vec![tag.clone()];
    let (a, b, c) = tokio::join!(
        pair(&env, "ba", Green::Healthy, &tags),
        pair(&env, "bb", Green::Healthy, &tags),
        pair(&env, "bc", Green::Healthy, &tags),
    );
    let all = [&a, &b, &c];
    let services: Vec<&str> = all.iter().map(|p| p.base.as_str()).collect();
    let upstreams: Vec<&str> = all
        .iter()
        .flat_map(|p| [p.blue_up.as_str(), p.green_up.as_str()])
        .collect();
    let cli = Cli::new(&env);

    // One green side is down: the batch is refused and nothing is written anywhere.
    c.green.set_mode(BackendMode::Down).await.expect("down");
    wait_health(&env, &c.green_up, "UNHEALTHY", Duration::from_secs(10)).await;
    let before = config_of(&env, &services, &upstreams).await;
    if let Some(standin) = env.standin() {
        standin.log().clear();
    }
    let (code, report) = cli.json(&["switch", "--tag", &tag]).await;
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(report["outcome"], "refused");
    assert_eq!(report["writes"], json!([]));
    assert_eq!(
        report["services"].as_array().map(Vec::len),
        Some(3),
        "{report:#}"
    );
    let refused: Vec<&Value> = report["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["outcome"] == "refused")
        .collect();
    assert!(
        refused.iter().any(|s| s["target"] == c.base.as_str()),
        "{report:#}"
    );
    assert_eq!(config_of(&env, &services, &upstreams).await, before);
    if let Some(standin) = env.standin() {
        assert!(
            standin.log().writes().is_empty(),
            "{:?}",
            standin.log().writes()
        );
    }

    // Healthy again: every service switches.
    c.green.set_mode(BackendMode::Healthy).await.expect("up");
    wait_health(&env, &c.green_up, "HEALTHY", Duration::from_secs(10)).await;
    let (code, report) = cli.json(&["switch", "--tag", &tag]).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "completed");
    for p in all {
        assert_eq!(host_of(&env, &p.base).await, p.green_up);
        wait_color(&env, &p.path, "green").await;
    }
}
