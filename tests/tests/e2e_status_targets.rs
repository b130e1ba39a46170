//! End to end: `status` finds every target a switch can name: the `route` strategy's pair by
//! its base name or by either side; and after a killed run, its text names the run id that
//! `history` shows and `rollback` resolves.

mod common;

use std::time::Duration;

use common::e2e::{Cli, Green, host_of, pair};
use kong_switch_tests::backend::Backend;
use kong_switch_tests::harness::Env;

/// Services `<base>-blue` and `<base>-green` on their own backends (returned, to keep them
/// running), two routes on blue.
async fn route_pair(env: &Env) -> (String, Vec<Backend>) {
    let pair = common::e2e::route_pair(env, "rstatus", 2).await;
    (pair.base, pair.backends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_finds_a_route_switch_by_the_name_it_was_switched_under() {
    let env = Env::start().await;
    let (base, _backends) = route_pair(&env).await;
    let cli = Cli::new(&env);
    for (switched_as, to) in [(base.clone(), "green"), (format!("{base}-green"), "blue")] {
        let (code, report) = cli
            .json(&["switch", &switched_as, "--strategy", "route", "--to", to])
            .await;
        assert_eq!(code, Some(0), "{report:#}");
        assert_eq!(report["outcome"], "completed", "{report:#}");

        let (code, status) = cli.json(&["status", &switched_as]).await;
        assert_eq!(code, Some(0), "{switched_as}: {status:#}");
        assert_eq!(status["active_color"], to, "{status:#}");
        assert_eq!(status["service"]["name"], format!("{base}-{to}"));
        assert_eq!(status["routes"].as_array().map(Vec::len), Some(2));
        assert_eq!(status["drift"]["state"], "in_sync", "{status:#}");
        let pair = status["route_pair"].as_array().cloned().unwrap_or_default();
        assert_eq!(pair.len(), 2, "{status:#}");

        let text = cli.run(&["status", &switched_as]).await;
        assert_eq!(text.code, Some(0), "{}", text.stderr);
        assert!(text.stdout.contains("route pair: "), "{}", text.stdout);
        assert!(
            text.stdout.contains(&format!("active: {to}")),
            "{}",
            text.stdout
        );
    }
    // Either side's own name shows where the routes are, not the side's color.
    let (code, status) = cli.json(&["status", &format!("{base}-green")]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["active_color"], "blue", "{status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_killed_switch_text_status_names_the_run_that_history_shows() {
    let env = Env::start().await;
    let p = pair(&env, "killrun", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    let url = p.url(&env);
    let args = [
        "switch",
        p.base.as_str(),
        "--verify",
        url.as_str(),
        "--expect-header",
        "X-Color=green",
        "--verify-for",
        "60s",
    ];
    let mut child = tokio::process::Command::from(cli.ks.command(&args))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn kong-switch");
    let switched = Env::wait_until(Duration::from_secs(20), || async {
        host_of(&env, &p.base).await == p.green_up
    })
    .await;
    assert!(switched.is_some(), "the switch never wrote");
    child.kill().await.expect("SIGKILL");

    let events = cli.history(&p.base).await;
    let run_id = events
        .iter()
        .find(|e| e["kind"] == "intent")
        .and_then(|e| e["run_id"].as_str())
        .expect("an intent with a run id")
        .to_owned();
    let status = cli.run(&["status", &p.base]).await;
    assert_eq!(status.code, Some(9), "{}\n{}", status.stdout, status.stderr);
    assert!(
        status.stdout.contains(&format!("last run: {run_id}")),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains(&format!("kong-switch rollback {}", p.base)),
        "{}",
        status.stdout
    );
}
