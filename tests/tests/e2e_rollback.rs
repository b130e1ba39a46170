//! End to end: failures after the first write end with Kong fully on one side (design §3
//! invariants): verification failure rolls back (exit 4) or, with `--no-rollback`, keeps green
//! (exit 7); `--dry-run` shows exactly the writes the real run and its rollback make.

mod common;

use std::time::Duration;

use common::e2e::{Cli, Green, host_of, pair, requests, sample, wait_color};
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::StandIn;
use serde_json::{Value, json};

/// Stand-in with a short router delay (0.3 s) for speed; the switch tests use Kong's default.
async fn env() -> Env {
    Env::start_with(StandIn::builder().router_delay(Duration::from_millis(300))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_failure_rolls_back_to_blue() {
    let env = env().await;
    let p = pair(&env, "vfail", Green::Healthy, &[]).await;
    // Green stays HEALTHY for Kong (its /health answers 200) but serves 500s: the gates pass,
    // verification through the proxy fails.
    p.green.set_error_ratio(1.0);
    let cli = Cli::new(&env);
    let url = p.url(&env);
    let (code, report) = cli
        .json(&[
            "switch",
            &p.base,
            "--verify",
            &url,
            "--expect-header",
            "X-Color=green",
        ])
        .await;
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["verification"]["passed"], false, "{report:#}");
    let rollback = &report["rollback"];
    assert_eq!(rollback["cause"], "verification_failed", "{report:#}");
    assert_eq!(rollback["restored"]["at"], "start");
    assert_eq!(
        requests(&rollback["writes"]),
        vec![(
            "PATCH".to_owned(),
            format!("/services/{}", p.base),
            json!({ "host": p.blue_up })
        )]
    );
    assert_eq!(report["steps"][0]["status"], "undone");
    assert_eq!(host_of(&env, &p.base).await, p.blue_up);
    wait_color(&env, &p.path, "blue").await;
    let shares = sample(&env, &url, 50).await;
    assert_eq!(shares.blue, 50, "{shares:?}");

    let kinds: Vec<Value> = cli
        .history(&p.base)
        .await
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("intent"), json!("rolled_back")]);
    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["drift"]["state"], "in_sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_failure_with_no_rollback_keeps_green_and_exits_7() {
    let env = env().await;
    let p = pair(&env, "vkeep", Green::Healthy, &[]).await;
    p.green.set_error_ratio(1.0);
    let cli = Cli::new(&env);
    let url = p.url(&env);
    let (code, report) = cli
        .json(&[
            "switch",
            &p.base,
            "--no-rollback",
            "--verify",
            &url,
            "--expect-header",
            "X-Color=green",
        ])
        .await;
    assert_eq!(code, Some(7), "{report:#}");
    assert_eq!(report["outcome"], "verification_failed");
    assert!(report.get("rollback").is_none(), "{report:#}");
    assert_eq!(host_of(&env, &p.base).await, p.green_up);
    p.green.set_error_ratio(0.0);
    wait_color(&env, &p.path, "green").await;
    let (code, status) = cli.json(&["status", &p.base]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["active_color"], "green");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(real_kong, ignore = "needs the stand-in: its request log")]
async fn dry_run_writes_and_undo_equal_the_real_run_and_its_rollback() {
    let env = env().await;
    let standin = env.standin().expect("not ignored, so this is the stand-in");
    let p = pair(&env, "dry", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    standin.log().clear();
    let (code, dry) = cli.json(&["switch", &p.base, "--dry-run"]).await;
    assert_eq!(code, Some(0), "{dry:#}");
    assert_eq!(dry["outcome"], "dry_run");
    assert!(
        standin.log().writes().is_empty(),
        "a dry run writes nothing"
    );
    assert_eq!(host_of(&env, &p.base).await, p.blue_up);

    let logged = |from: usize| -> Vec<(String, String, Value)> {
        standin.log().writes()[from..]
            .iter()
            .map(|w| (w.method.clone(), w.path.clone(), w.body.clone()))
            .collect()
    };
    let (code, real) = cli.json(&["switch", &p.base]).await;
    assert_eq!(code, Some(0), "{real:#}");
    let forward = logged(0);
    assert_eq!(forward, requests(&dry["writes"]));
    assert_eq!(requests(&real["writes"]), requests(&dry["writes"]));

    let (code, back) = cli.json(&["rollback", &p.base]).await;
    assert_eq!(code, Some(0), "{back:#}");
    assert_eq!(logged(forward.len()), requests(&dry["undo"]));
    assert_eq!(host_of(&env, &p.base).await, p.blue_up);
    wait_color(&env, &p.path, "blue").await;
}
