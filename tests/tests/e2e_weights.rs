//! End to end: the `weights` strategy (design §2) shifts traffic inside one upstream in
//! steps, each step's share observed through the proxy; a SIGKILL mid-shift is recoverable
//! (design §3: `status` shows the unfinished run, `rollback` or a re-run resolves it, the log
//! keeps every event written before the kill).

mod common;

use std::time::{Duration, Instant};

use common::e2e::{Cli, Shared, sample, shared, wait_color, weights};
use kong_switch_tests::backend::BackendMode;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};

impl Shared {
    /// Green's share of the weights, in percent (None while both are 0).
    async fn green_weight_percent(&self, env: &Env) -> Option<u64> {
        let w = weights(env, &self.up).await;
        let green = w.get(&env.target_for(&self.green)).copied().unwrap_or(0);
        let blue = w.get(&env.target_for(&self.blue)).copied().unwrap_or(0);
        (green + blue > 0).then(|| (green * 100 + (green + blue) / 2) / (green + blue))
    }
}

/// Stand-in with a short router delay (0.3 s) for speed: weight changes do not wait for the
/// router anyway (kong-admin-api.md §6).
async fn env() -> Env {
    Env::start_with(StandIn::builder().router_delay(Duration::from_millis(300))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_shift_in_four_steps_sends_the_planned_share_to_green_at_each_step() {
    let env = env().await;
    let app = shared(&env, "shift").await;
    // The green target has weight 0; wait until Kong's health view knows the blue one.
    let blue_target = env.target_for(&app.blue);
    let ok = Env::wait_until(Duration::from_secs(10), || async {
        common::e2e::health(&env, &app.up)
            .await
            .get(&blue_target)
            .is_some_and(|h| h == "HEALTHY")
    })
    .await;
    assert!(ok.is_some(), "blue target never HEALTHY");
    let cli = Cli::new(&env);
    let url = format!("{}{}", env.proxy_url(), app.path);
    let shift = {
        let ks = cli.ks.clone();
        // Text output: progress comes as plain lines on stderr (not a terminal).
        let args: Vec<String> = [
            "shift",
            &app.base,
            "--steps",
            "10,25,50,100",
            "--bake",
            "3s",
        ]
        .map(String::from)
        .to_vec();
        tokio::spawn(async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ks.run_async(&args).await
        })
    };
    let mut observed = Vec::new();
    for planned in [10u64, 25, 50, 100] {
        // Poll the Admin API until this step is live (both of its writes done), then sample.
        let live = Env::wait_until(Duration::from_secs(20), || async {
            app.green_weight_percent(&env).await == Some(planned)
        })
        .await;
        if live.is_none() {
            let weights = weights(&env, &app.up).await;
            let run = if shift.is_finished() {
                let run = shift.await.expect("shift task");
                format!("exit {:?}\n{}\n{}", run.code, run.stdout, run.stderr)
            } else {
                "still running".to_owned()
            };
            panic!("step {planned}% never became live: weights {weights:?}; shift: {run}");
        }
        let started = Instant::now();
        let shares = sample(&env, &url, 200).await;
        let still = app.green_weight_percent(&env).await;
        assert_eq!(
            still,
            Some(planned),
            "the {planned}% step ended while sampling ({} ms): bake too short for this machine",
            started.elapsed().as_millis()
        );
        assert_eq!(shares.failed, 0, "{shares:?}");
        let got = shares.green_percent();
        eprintln!(
            "step {planned:>3}%: observed {got:5.1}% green ({} green / {} blue of {})",
            shares.green,
            shares.blue,
            shares.total()
        );
        assert!(
            (got - planned as f64).abs() <= 5.0,
            "step {planned}%: observed {got:.1}% green ({shares:?})"
        );
        observed.push((planned, got));
    }
    let run = shift.await.expect("shift task");
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("done") || run.stdout.contains("\ndone: "),
        "{}",
        run.stdout
    );
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("step ") && l.contains(" applied: "))
        .collect();
    assert!(
        progress.len() >= 4,
        "a progress line per applied write on stderr:\n{}",
        run.stderr
    );
    let steps = cli
        .history(&app.base)
        .await
        .iter()
        .filter(|e| e["kind"] == "step")
        .count();
    assert_eq!(steps, 4, "one step event per stage");
    assert_eq!(observed.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_weights_shift_is_reported_by_status_and_resolved_by_rollback() {
    let env = env().await;
    let app = shared(&env, "kill").await;
    let blue_target = env.target_for(&app.blue);
    let green_target = env.target_for(&app.green);
    let ok = Env::wait_until(Duration::from_secs(10), || async {
        common::e2e::health(&env, &app.up)
            .await
            .get(&blue_target)
            .is_some_and(|h| h == "HEALTHY")
    })
    .await;
    assert!(ok.is_some(), "blue target never HEALTHY");
    let before = weights(&env, &app.up).await;
    let cli = Cli::new(&env);
    let args = vec![
        "shift",
        &app.base,
        "--steps",
        "10,25,50,100",
        "--bake",
        "60s",
    ];
    let mut child = tokio::process::Command::from(cli.ks.command(&args))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn kong-switch");
    // Kill it during the first bake: the 10% step is live.
    let live = Env::wait_until(Duration::from_secs(20), || async {
        app.green_weight_percent(&env).await == Some(10)
    })
    .await;
    assert!(live.is_some(), "the first step never became live");
    // The step event is appended right after the step's writes; give the log a moment.
    let logged = Env::wait_until(Duration::from_secs(5), || async {
        cli.history(&app.base)
            .await
            .iter()
            .any(|e| e["kind"] == "step")
    })
    .await;
    assert!(logged.is_some(), "no step event before the kill");
    child.kill().await.expect("SIGKILL");
    let killed_at = weights(&env, &app.up).await;
    assert_ne!(killed_at, before);

    // The log keeps everything written before the kill.
    let events = cli.history(&app.base).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["intent", "step"], "{events:#?}");
    assert_eq!(events[1]["step"]["index"], 0);
    assert_eq!(events[1]["step"]["weights"][&green_target], 10);

    // status: Kong is between sides, the run is unfinished → exit 9.
    let (code, status) = cli.json(&["status", &app.base]).await;
    assert_eq!(code, Some(9), "{status:#}");
    assert_eq!(status["drift"]["state"], "dangling_intent", "{status:#}");
    assert_eq!(status["drift"]["kong"], "partial", "{status:#}");

    // rollback restores the weights saved in the intent.
    let (code, back) = cli.json(&["rollback", &app.base]).await;
    assert_eq!(code, Some(0), "{back:#}");
    assert_eq!(back["outcome"], "completed", "{back:#}");
    assert_eq!(weights(&env, &app.up).await, before);
    let (code, status) = cli.json(&["status", &app.base]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["drift"]["state"], "in_sync", "{status:#}");
    let shares = sample(&env, &format!("{}{}", env.proxy_url(), app.path), 50).await;
    assert_eq!(shares.blue, 50, "{shares:?}");

    // And the lease of the killed run does not block the next one: a re-run shifts fully.
    let (code, again) = cli
        .json(&["shift", app.base.as_str(), "--steps", "100"])
        .await;
    assert_eq!(code, Some(0), "{again:#}");
    let w = weights(&env, &app.up).await;
    assert_eq!(w[&blue_target], 0, "{w:?}");
    assert!(w[&green_target] > 0, "{w:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_weights_shift_is_resolved_by_a_re_run() {
    let env = env().await;
    let app = shared(&env, "rerun").await;
    let blue_target = env.target_for(&app.blue);
    let green_target = env.target_for(&app.green);
    let ok = Env::wait_until(Duration::from_secs(10), || async {
        common::e2e::health(&env, &app.up)
            .await
            .get(&blue_target)
            .is_some_and(|h| h == "HEALTHY")
    })
    .await;
    assert!(ok.is_some(), "blue target never HEALTHY");
    let cli = Cli::new(&env);
    let args = vec![
        "shift",
        &app.base,
        "--steps",
        "10,25,50,100",
        "--bake",
        "60s",
    ];
    let mut child = tokio::process::Command::from(cli.ks.command(&args))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn kong-switch");
    let live = Env::wait_until(Duration::from_secs(20), || async {
        app.green_weight_percent(&env).await == Some(10)
    })
    .await;
    assert!(live.is_some(), "the first step never became live");
    child.kill().await.expect("SIGKILL");
    let (code, _) = cli.json(&["status", &app.base]).await;
    assert_eq!(code, Some(9));

    // A re-run sees the dangling intent, restores the start, then shifts.
    let (code, report) = cli
        .json(&["shift", app.base.as_str(), "--steps", "100"])
        .await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["recovered"]["kong"], "partial", "{report:#}");
    assert_eq!(report["recovered"]["action"], "restored the start");
    let w = weights(&env, &app.up).await;
    assert_eq!(w[&blue_target], 0, "{w:?}");
    assert!(w[&green_target] > 0, "{w:?}");
    let (code, status) = cli.json(&["status", &app.base]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["drift"]["state"], "in_sync");
}

/// Kong's health of a weight-0 target cannot be trusted: 3.x reports HEALTHCHECKS_OFF even with
/// active checks on, and 2.8 keeps reporting HEALTHY from its last check after the backend
/// died. So on every version, before a shift gives green traffic, the engine runs the
/// upstream's own active check (`http_path`, healthy statuses) against it: a plain `shift` is
/// refused, changing nothing, while green is down, and passes once green answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_green_targets_are_health_checked_before_a_shift_gives_them_traffic() {
    weight_zero_green_targets_are_checked(&env().await).await;
}

/// The same on Kong 2.8, whose health view still says HEALTHY for the dead weight-0 green.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_green_targets_are_health_checked_before_a_shift_on_28_too() {
    let env = Env::start_with(
        StandIn::builder()
            .profile(Profile::V28)
            .router_delay(Duration::from_millis(300)),
    )
    .await;
    weight_zero_green_targets_are_checked(&env).await;
}

async fn weight_zero_green_targets_are_checked(env: &Env) {
    let app = shared(env, "idle").await;
    let blue_target = env.target_for(&app.blue);
    let ok = Env::wait_until(Duration::from_secs(10), || async {
        common::e2e::health(env, &app.up)
            .await
            .get(&blue_target)
            .is_some_and(|h| h == "HEALTHY")
    })
    .await;
    assert!(ok.is_some(), "blue target never HEALTHY");
    let cli = Cli::new(env);
    let idle_gate = |report: &serde_json::Value| {
        report["gates"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["name"] == "idle_targets_checked")
            .cloned()
    };

    app.green
        .set_mode(BackendMode::Down)
        .await
        .expect("green goes down");
    let before = weights(env, &app.up).await;
    let (code, report) = cli.json(&["shift", &app.base]).await;
    assert_eq!(code, Some(3), "refused while green is down: {report}");
    assert_eq!(report["outcome"], "refused");
    assert_eq!(weights(env, &app.up).await, before, "Kong unchanged");
    let gate = idle_gate(&report).expect("the weight-0 check is reported");
    assert_eq!(gate["passed"], false, "{gate}");
    assert!(
        gate["observed"]
            .as_str()
            .unwrap_or_default()
            .contains("0 of 1"),
        "{gate}"
    );

    app.green
        .set_mode(BackendMode::Healthy)
        .await
        .expect("green comes back");
    let (code, report) = cli.json(&["shift", &app.base]).await;
    assert_eq!(code, Some(0), "passes once green answers: {report}");
    let gate = idle_gate(&report).expect("the weight-0 check is reported");
    assert_eq!(gate["passed"], true, "{gate}");
    wait_color(env, &app.path, "green").await;
}
