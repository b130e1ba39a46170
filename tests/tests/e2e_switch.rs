//! End to end: the real `kong-switch` binary switches a service from its blue upstream to its
//! green one (design §2 `upstream` strategy) and traffic through the proxy follows.

mod common;

use std::time::{Duration, Instant};

use common::e2e::{Cli, Green, config_of, host_of, pair, sample, wait_color, wait_health};
use common::expect;
use kong_switch_tests::backend::Backend;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::json;

/// Switches a fresh pair, checks the report, Kong and the proxy, then repeats the switch and
/// checks it writes nothing. Returns the time from the switch's start to the proxy serving
/// green only, as the report measured it.
async fn upstream_switch_moves_all_traffic(env: &Env, label: &str) {
    let p = pair(env, "sw", Green::Healthy, &[]).await;
    let cli = Cli::new(env);
    if let Some(standin) = env.standin() {
        standin.log().clear();
    }
    let url = p.url(env);
    let started = Instant::now();
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
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["strategy"], "upstream");
    assert_eq!(
        report["writes"],
        json!([{ "method": "PATCH", "path": format!("/services/{}", p.base),
                  "body": { "host": p.green_up } }])
    );
    assert_eq!(report["verification"]["passed"], true, "{report:#}");
    assert_eq!(report["nodes"][0]["converged"], true);
    let converged_ms = report["nodes"][0]["converged_after_ms"]
        .as_u64()
        .unwrap_or_default();
    assert_eq!(host_of(env, &p.base).await, p.green_up);

    // The engine said "done" only once the proxy served green: from now on, all of it.
    let shares = sample(env, &url, 200).await;
    eprintln!(
        "[{label}] switch to 100% green: proxy served green {converged_ms} ms after the write \
         (whole run {} ms); afterwards {} of {} green",
        took.as_millis(),
        shares.green,
        shares.total()
    );
    assert_eq!(shares.green, 200, "{shares:?}");
    if let Some(standin) = env.standin() {
        let writes = standin.log().writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(writes[0].method, "PATCH");
        assert_eq!(writes[0].body, json!({ "host": p.green_up }));
        standin.log().clear();
    }

    // A second identical switch: green is already active, nothing to write.
    let before = config_of(env, &[&p.base], &[&p.blue_up, &p.green_up]).await;
    let (code, again) = cli.json(&["switch", &p.base, "--to", &p.green_up]).await;
    assert_eq!(code, Some(0), "{again:#}");
    assert_eq!(again["outcome"], "no_op", "{again:#}");
    assert_eq!(again["writes"], json!([]));
    assert_eq!(
        config_of(env, &[&p.base], &[&p.blue_up, &p.green_up]).await,
        before
    );
    if let Some(standin) = env.standin() {
        assert!(
            standin.log().writes().is_empty(),
            "{:?}",
            standin.log().writes()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_switch_moves_all_traffic_to_green_on_3x_with_kongs_default_router_delay() {
    // No router_delay knob: Kong's default (5 s, kong-admin-api.md §7) — the switch must wait
    // for the router rebuild, not trust the 200 of the PATCH.
    let env = Env::start_with(StandIn::builder().profile(Profile::V3)).await;
    upstream_switch_moves_all_traffic(&env, "3.x default router delay").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_switch_moves_all_traffic_to_green_on_28() {
    // Against a real Kong this runs on whatever version it is, like the test above.
    let env = Env::start_with(StandIn::builder().profile(Profile::V28)).await;
    upstream_switch_moves_all_traffic(&env, "2.8 profile").await;
}

/// Serialises the DB-less tests: against a real DB-less node each `POST /config` replaces what
/// the other test loaded.
static ONE_CONFIG_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A DB-less Kong (`KONG_DBLESS_ADMIN_URL`, or a DB-less stand-in with a short router delay)
/// loaded through `POST /config` with one blue and one green upstream (active checks) per app,
/// each app's service `<app>` (tagged `tags`) on `<app>-blue` with a route `/<app>`; waits
/// until every app serves blue and its green upstream is HEALTHY.
async fn dbless_apps(apps: &[&str], tags: &[&str]) -> (Env, Backend, Backend) {
    // A short router delay keeps the test quick; the default-delay test covers Kong's timing.
    let env = Env::dbless_with(
        StandIn::builder()
            .profile(Profile::DbLess3)
            .router_delay(Duration::from_millis(300)),
    )
    .await;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let checks = common::e2e::active_checks();
    let mut upstreams = Vec::new();
    let mut services = Vec::new();
    for app in apps {
        for (color, backend) in [("blue", &blue), ("green", &green)] {
            upstreams.push(
                json!({ "name": format!("{app}-{color}"), "healthchecks": checks,
                "targets": [{ "target": env.target_for(backend) }] }),
            );
        }
        services.push(
            json!({ "name": app, "host": format!("{app}-blue"), "tags": tags,
            "routes": [{ "name": app, "paths": [format!("/{app}")] }] }),
        );
    }
    let config = json!({ "upstreams": upstreams, "services": services });
    if let Err(e) = env.load_config(&config).await {
        panic!("loading the DB-less config: {e}");
    }
    for app in apps {
        wait_color(&env, &format!("/{app}"), "blue").await;
        wait_health(
            &env,
            &format!("{app}-green"),
            "HEALTHY",
            Duration::from_secs(10),
        )
        .await;
    }
    (env, blue, green)
}

/// The report's writes are exactly one `POST /config` (and so is the stand-in's request log).
fn assert_one_post_config(env: &Env, report: &serde_json::Value) {
    let writes = report["writes"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(String, String)> = writes
        .iter()
        .map(|w| {
            (
                w["method"].as_str().unwrap_or_default().to_owned(),
                w["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("POST".to_owned(), "/config".to_owned())],
        "{report:#}"
    );
    if let Some(standin) = env.standin() {
        let logged = standin.log().writes();
        assert_eq!(logged.len(), 1, "{logged:#?}");
        assert_eq!(
            (logged[0].method.as_str(), logged[0].path.as_str()),
            ("POST", "/config")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_switch_is_one_post_config_and_moves_traffic() {
    let _config = ONE_CONFIG_AT_A_TIME.lock().await;
    let (env, _blue, _green) = dbless_apps(&["demo"], &[]).await;
    if let Some(standin) = env.standin() {
        standin.log().clear();
    }
    let cli = Cli::new(&env);
    let url = format!("{}/demo", env.proxy_url());
    let (code, report) = cli
        .json(&[
            "switch",
            "demo",
            "--verify",
            &url,
            "--expect-header",
            "X-Color=green",
        ])
        .await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "completed");
    assert_one_post_config(&env, &report);
    let services = expect(&env, "GET", "/services/demo", None, 200).await;
    assert_eq!(services["host"], "demo-green");
    let shares = sample(&env, &url, 100).await;
    assert_eq!(shares.green, 100, "{shares:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_batch_switches_every_tagged_service_in_one_post_config() {
    let _config = ONE_CONFIG_AT_A_TIME.lock().await;
    let apps = ["cart", "pay", "ship"];
    let (env, _blue, _green) = dbless_apps(&apps, &["team=shop"]).await;
    if let Some(standin) = env.standin() {
        standin.log().clear();
    }
    let cli = Cli::new(&env);

    let (code, report) = cli.json(&["switch", "--tag", "team=shop"]).await;

    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "completed");
    assert_one_post_config(&env, &report);
    for app in apps {
        let service = expect(&env, "GET", &format!("/services/{app}"), None, 200).await;
        assert_eq!(service["host"], format!("{app}-green"));
        wait_color(&env, &format!("/{app}"), "green").await;
    }
}
