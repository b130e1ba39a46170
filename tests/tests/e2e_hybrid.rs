//! End to end, hybrid mode (issue 7, kong-admin-api.md §10): the real `kong-switch` binary
//! writes to a control plane (a stand-in, or the real one of `KONG_CP_ADMIN_URL` with
//! `KONG_DP_PROXY_URLS` and `KONG_DP_STATUS_URLS`); the switch is reported live only once every
//! connected data plane reports the new config hash, and traffic through every data plane
//! follows.

mod hybrid_common;

use std::time::{Duration, Instant};

use hybrid_common::{Hybrid, short_knobs};
use kong_switch_tests::backend::BackendMode;
use kong_switch_tests::cli::KongSwitch;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Fault, FaultAction, Profile};
use serde_json::{Value, json};

const WINDOW: Duration = Duration::from_secs(1);

struct Run {
    code: Option<i32>,
    report: Value,
    took: Duration,
}

async fn kong_switch(h: &Hybrid, state: &tempfile::TempDir, args: &[&str]) -> Run {
    let cli = KongSwitch::new(h.admin_url(), state.path());
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let run = cli.run_async(&all).await;
    let took = started.elapsed();
    let report = run.json();
    Run {
        code: run.code,
        report,
        took,
    }
}

fn status_args(h: &Hybrid) -> Vec<String> {
    (0..h.dp_count())
        .flat_map(|dp| ["--dp-status".to_owned(), h.status_url(dp).to_owned()])
        .collect()
}

/// `--dp-timeout 3s` on the stand-in (its data planes ping every second); nothing against a real
/// Kong, whose data planes ping every 30 s (the 45 s default applies).
fn dp_timeout(h: &Hybrid) -> Vec<&'static str> {
    if h.is_standin() {
        vec!["--dp-timeout", "3s"]
    } else {
        Vec::new()
    }
}

async fn switch_to_green(h: &Hybrid, state: &tempfile::TempDir, extra: &[&str]) -> Run {
    let dps = status_args(h);
    let mut args = vec!["switch", h.base.as_str()];
    args.extend(dps.iter().map(String::as_str));
    args.extend_from_slice(extra);
    kong_switch(h, state, &args).await
}

/// Asserts the report says live on every running data plane, with one converged node per
/// data plane and the hash each Status API reports; returns the live time.
async fn assert_live(h: &Hybrid, run: &Run, running: &[usize]) -> u64 {
    let hy = &run.report["hybrid"];
    assert_eq!(hy["live"], true, "{:#}", run.report);
    let hash = hy["config_hash"]
        .as_str()
        .expect("a config hash")
        .to_owned();
    for &dp in running {
        assert_eq!(h.dp_hash(dp).await, hash, "dp {dp} Status API hash");
        let id = h.dp_id(dp).await;
        let row = hy["data_planes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("dp {dp} missing: {hy:#}"));
        assert_eq!(row["converged"], true, "{row:#}");
        assert_ne!(row["config_hash_before"], row["config_hash"], "{row:#}");
        assert!(row["converged_after_ms"].is_u64(), "{row:#}");
    }
    let nodes = run.report["nodes"].as_array().expect("nodes");
    let by_hash: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["method"] == "config_hash")
        .collect();
    assert_eq!(by_hash.len(), running.len(), "{nodes:#?}");
    assert!(by_hash.iter().all(|n| n["converged"] == true));
    let live = hy["live_after_ms"].as_u64().expect("live_after_ms");
    let window = hy["db_update_frequency_ms"].as_u64().expect("window");
    let writes = run.report["writes"].as_array().map_or(0, Vec::len);
    let reported = hy["data_planes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["converged_after_ms"].as_u64())
        .max()
        .unwrap_or_default();
    if writes == 1 {
        // One write: the first new hash holds it; live as soon as every data plane reports it
        // (on 3.x, plus the proxy's lag allowance), never before.
        assert!(
            live >= reported,
            "live is never claimed before every data plane reported the hash ({live} ms < {reported} ms)"
        );
    } else {
        // Several writes: the first push may be partial, so the push window is waited out.
        assert!(
            live >= window,
            "live is never claimed before the push window ended ({live} ms < {window} ms, {writes} writes)"
        );
    }
    live
}

async fn switch_through_two_data_planes(profile: Profile) {
    let h = Hybrid::start(profile, 2, WINDOW, short_knobs(profile)).await;
    h.upstream_pair().await;
    let state = tempfile::tempdir().expect("state dir");
    let run = switch_to_green(&h, &state, &dp_timeout(&h)).await;
    assert_eq!(run.code, Some(0), "{:#}", run.report);
    assert_eq!(run.report["outcome"], "completed");
    let gates = run.report["gates"].as_array().expect("gates");
    assert!(
        gates
            .iter()
            .filter(|g| g["name"].as_str().is_some_and(|n| n.contains("dp")))
            .count()
            >= 2,
        "health read from both data planes: {gates:#?}"
    );
    let live = assert_live(&h, &run, &[0, 1]).await;
    // Once the report says live, both data planes serve green only.
    for dp in 0..2 {
        assert_eq!(h.sample(dp, 20).await, (0, 20, 0), "{profile} dp {dp}");
    }
    eprintln!(
        "[{profile} hybrid, short knobs] live {live} ms after the write (run {} ms)",
        run.took.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn a_batch_switch_waits_for_the_data_planes_like_a_single_switch() {
    let profile = Profile::V3;
    let h = Hybrid::start(profile, 2, WINDOW, short_knobs(profile)).await;
    h.upstream_pair().await;
    // A tag of this test only: a real control plane may hold other tests' services.
    let tag = format!("team={}", h.base);
    let tagged = h
        .admin(
            "PATCH",
            &format!("/services/{}", h.base),
            Some(json!({ "tags": [tag] })),
        )
        .await;
    assert_eq!(tagged.status, 200, "{:?}", tagged.json);
    let state = tempfile::tempdir().expect("state dir");
    let dps = status_args(&h);
    let mut args = vec!["switch", "--tag", tag.as_str()];
    args.extend(dp_timeout(&h));
    args.extend(dps.iter().map(String::as_str));

    let run = kong_switch(&h, &state, &args).await;

    assert_eq!(run.code, Some(0), "{:#}", run.report);
    assert_eq!(run.report["outcome"], "completed");
    assert_live(&h, &run, &[0, 1]).await;
    for dp in 0..2 {
        assert_eq!(h.sample(dp, 20).await, (0, 20, 0), "dp {dp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn a_switch_through_the_control_plane_is_live_only_when_both_data_planes_serve_green_3x() {
    switch_through_two_data_planes(Profile::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn a_switch_through_the_control_plane_is_live_only_when_both_data_planes_serve_green_2_8() {
    switch_through_two_data_planes(Profile::V28).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: fault injection (a delayed PATCH) and a 1 s push window"
)]
async fn a_partial_push_never_counts_as_live() {
    // Green raised, then blue lowered 400 ms later: the first push carries only the raise
    // (a 50/50 mix), the rest comes at the end of the push window (§10).
    let profile = Profile::V3;
    let h = Hybrid::start(profile, 2, WINDOW, short_knobs(profile)).await;
    h.weighted_pool().await;
    tokio::time::sleep(WINDOW + Duration::from_millis(300)).await;
    h.standin()
        .faults()
        .add(Fault::prefix("/upstreams/", FaultAction::Delay { ms: 400 }).method("PATCH"));
    let state = tempfile::tempdir().expect("state dir");
    let dps = status_args(&h);
    let mut args = vec![
        "shift",
        h.base.as_str(),
        "--steps",
        "100",
        "--dp-timeout",
        "3s",
        "--allow-unknown-health",
    ];
    args.extend(dps.iter().map(String::as_str));
    let run = kong_switch(&h, &state, &args).await;
    assert_eq!(run.code, Some(0), "{:#}", run.report);
    assert_eq!(
        run.report["writes"].as_array().map(Vec::len),
        Some(2),
        "raise green, then lower blue: {:#}",
        run.report
    );
    assert_live(&h, &run, &[0, 1]).await;
    let mixed = run.report["hybrid"]["mixed_traffic_ms"]
        .as_u64()
        .expect("mixed traffic reported");
    assert!(
        mixed > 0,
        "the partial push was seen: {:#}",
        run.report["hybrid"]
    );
    for dp in 0..2 {
        assert_eq!(h.sample(dp, 20).await, (0, 20, 0), "dp {dp} after live");
    }
    eprintln!("[3.x hybrid] weights shift: mixed traffic for {mixed} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: stops a data plane"
)]
async fn a_stopped_data_plane_is_reported_and_does_not_hang_the_switch() {
    let profile = Profile::V3;
    let h = Hybrid::start(profile, 2, WINDOW, short_knobs(profile)).await;
    h.upstream_pair().await;
    h.wait_settled(Duration::from_secs(5)).await;
    // Stopped just before the switch: its row still looks recent, so the switch waits until it
    // is stale (--dp-timeout), then names it instead of waiting for it.
    h.standin().stop_data_plane(1);
    let state = tempfile::tempdir().expect("state dir");
    let status0 = h.status_url(0).to_owned();
    let run = kong_switch(
        &h,
        &state,
        &[
            "switch",
            &h.base,
            "--dp-status",
            &status0,
            "--dp-timeout",
            "3s",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{:#}", run.report);
    assert!(
        run.took < Duration::from_secs(20),
        "bounded by the timeout: {:?}",
        run.took
    );
    assert_live(&h, &run, &[0]).await;
    let hy = &run.report["hybrid"];
    let disconnected = hy["disconnected"].as_array().expect("disconnected");
    assert_eq!(disconnected.len(), 1, "{hy:#}");
    assert!(
        disconnected[0]
            .as_str()
            .is_some_and(|d| d.contains(h.standin().data_plane(1).hostname())),
        "{hy:#}"
    );
    let message = run.report["message"].as_str().unwrap_or_default();
    assert!(message.contains("disconnected"), "{message}");
    assert_eq!(h.sample(0, 20).await, (0, 20, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn a_health_gate_reads_data_plane_health_not_the_control_planes_bare_view() {
    let profile = Profile::V3;
    let h = Hybrid::start(profile, 2, WINDOW, short_knobs(profile)).await;
    h.upstream_pair().await;
    h.green
        .set_mode(BackendMode::Failing)
        .await
        .expect("green fails");
    for dp in 0..2 {
        let unhealthy = Env::wait_until(Duration::from_secs(5), || async {
            h.status(dp, "GET", &format!("/upstreams/{}/health", h.up("green")))
                .await
                .json["data"][0]["health"]
                == "UNHEALTHY"
        })
        .await;
        assert!(unhealthy.is_some(), "dp {dp} never saw green fail");
    }
    let state = tempfile::tempdir().expect("state dir");
    // With the Status APIs: refused on what the data planes see.
    let run = switch_to_green(&h, &state, &[]).await;
    assert_eq!(run.code, Some(3), "{:#}", run.report);
    assert_eq!(run.report["outcome"], "refused");
    let failed: Vec<&Value> = run.report["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .filter(|g| g["passed"] == false)
        .collect();
    assert!(
        failed
            .iter()
            .any(|g| g["name"].as_str().is_some_and(|n| n.contains("dp"))),
        "the data planes' health gates fail: {failed:#?}"
    );
    // Besides them, only kong-switch's own active check of green (which fails as well).
    assert!(
        failed.iter().all(|g| g["name"]
            .as_str()
            .is_some_and(|n| n.contains("dp") || n == "idle_targets_checked")),
        "the failed gates are the data planes' and kong-switch's own check: {failed:#?}"
    );
    // Without them: refused, saying the control plane has no health view.
    let run = kong_switch(&h, &state, &["switch", &h.base]).await;
    assert_eq!(run.code, Some(3), "{:#}", run.report);
    let text = run.report.to_string();
    assert!(
        text.contains("no health view") && text.contains("--dp-status"),
        "{:#}",
        run.report
    );
    // Nothing was written: the service is still on blue and the data planes serve blue.
    let service = h.admin("GET", &format!("/services/{}", h.base), None).await;
    assert_eq!(
        service.json["host"],
        h.up("blue").as_str(),
        "no switch write"
    );
    if h.is_standin() {
        assert!(
            h.standin()
                .log()
                .writes()
                .iter()
                .all(|w| !(w.method == "PATCH" && w.path.starts_with("/services/"))),
            "no switch write"
        );
    }
    assert_eq!(h.sample(0, 10).await, (10, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn rollback_in_hybrid_mode_returns_every_data_plane_to_blue() {
    let profile = Profile::V28;
    let h = Hybrid::start(profile, 2, WINDOW, short_knobs(profile)).await;
    h.upstream_pair().await;
    let state = tempfile::tempdir().expect("state dir");
    let run = switch_to_green(&h, &state, &dp_timeout(&h)).await;
    assert_eq!(run.code, Some(0), "{:#}", run.report);
    assert_live(&h, &run, &[0, 1]).await;
    let mut args = vec!["rollback", h.base.as_str()];
    args.extend(dp_timeout(&h));
    let back = kong_switch(&h, &state, &args).await;
    assert_eq!(back.code, Some(0), "{:#}", back.report);
    assert_eq!(back.report["outcome"], "completed");
    assert_eq!(back.report["hybrid"]["live"], true, "{:#}", back.report);
    let hash = back.report["hybrid"]["config_hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    for dp in 0..2 {
        assert_eq!(h.dp_hash(dp).await, hash);
        assert_eq!(h.sample(dp, 20).await, (20, 0, 0), "dp {dp} back on blue");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: stops both data planes"
)]
async fn a_rollback_no_data_plane_takes_exits_9_not_0() {
    let profile = Profile::V28;
    let h = Hybrid::start(profile, 2, WINDOW, short_knobs(profile)).await;
    h.upstream_pair().await;
    let state = tempfile::tempdir().expect("state dir");
    let run = switch_to_green(&h, &state, &["--dp-timeout", "3s"]).await;
    assert_eq!(run.code, Some(0), "{:#}", run.report);
    h.standin().stop_data_plane(0);
    h.standin().stop_data_plane(1);

    let back = kong_switch(&h, &state, &["rollback", &h.base, "--dp-timeout", "2s"]).await;

    assert_eq!(back.code, Some(9), "{:#}", back.report);
    assert_eq!(back.report["hybrid"]["live"], false, "{:#}", back.report);
    let message = back.report["message"].as_str().unwrap_or_default();
    assert!(message.contains("not live"), "{message}");
    assert!(
        h.standin()
            .log()
            .writes()
            .iter()
            .any(|w| w.method == "PATCH" && w.path == format!("/services/{}", h.base)),
        "the control plane was restored"
    );
}

/// Another write reached the control plane just before the switch (deploy-green registering a
/// target, say): its push is the first new hash the data planes report, and it does not hold
/// the switch. The run must not take it for its own: it waits for its own push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: a write made right before the switch, with Kong's timings"
)]
async fn a_switch_right_after_another_write_is_live_only_when_its_own_push_arrived() {
    let h = Hybrid::start_default(Profile::V3, 2).await;
    h.upstream_pair().await;
    h.wait_quiet(Duration::from_millis(6500), Duration::from_secs(40))
        .await;
    let state = tempfile::tempdir().expect("state dir");
    for round in 0..2 {
        // The other write: pushed at once, and reported by the data planes 0.9 s later.
        let tagged = h
            .admin(
                "PATCH",
                &format!("/services/{}", h.base),
                Some(json!({ "tags": [format!("round-{round}")] })),
            )
            .await;
        assert_eq!(tagged.status, 200, "{}", tagged.json);
        let to = if round == 0 { "green" } else { "blue" };
        let dps = status_args(&h);
        let mut args = vec!["switch", h.base.as_str(), "--to", to];
        args.extend(dps.iter().map(String::as_str));
        let run = kong_switch(&h, &state, &args).await;
        assert_eq!(run.code, Some(0), "{:#}", run.report);
        for dp in 0..2 {
            assert_eq!(
                h.color(dp).await.as_deref(),
                Some(to),
                "round {round}: dp {dp} serves {to} once the report says live: {:#}",
                run.report["hybrid"]
            );
        }
    }
}

async fn switch_with_kong_defaults(profile: Profile) {
    let h = Hybrid::start_default(profile, 2).await;
    h.upstream_pair().await;
    // A quiet cluster (no configuration applied within the push window): the write is pushed
    // at once, and its first hash is final.
    h.wait_quiet(Duration::from_millis(6500), Duration::from_secs(40))
        .await;
    let state = tempfile::tempdir().expect("state dir");
    let run = switch_to_green(&h, &state, &[]).await;
    assert_eq!(run.code, Some(0), "{:#}", run.report);
    let live = assert_live(&h, &run, &[0, 1]).await;
    for dp in 0..2 {
        assert_eq!(h.sample(dp, 20).await, (0, 20, 0), "dp {dp}");
    }
    let per_dp: Vec<String> = run.report["hybrid"]["data_planes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| format!("{}", d["converged_after_ms"]))
        .collect();
    let window = run.report["hybrid"]["db_update_frequency_ms"]
        .as_u64()
        .unwrap_or_default();
    assert!(
        live < window,
        "a one-write switch does not wait out the {window} ms push window (live after {live} ms)"
    );
    eprintln!(
        "[{profile} hybrid, Kong defaults] live {live} ms after the write; data planes reported \
         the hash after {} ms; run {} ms",
        per_dp.join(" / "),
        run.took.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn a_one_write_switch_with_kong_default_timings_on_3x_hybrid_is_live_when_the_data_planes_report_it()
 {
    switch_with_kong_defaults(Profile::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn a_one_write_switch_with_kong_default_timings_on_2_8_hybrid_is_live_when_the_data_planes_report_it()
 {
    switch_with_kong_defaults(Profile::V28).await;
}
