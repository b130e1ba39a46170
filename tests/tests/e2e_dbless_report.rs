//! End to end: on a DB-less node, the dry run, the progress lines, the report (text and JSON)
//! and the logged intent say what a `POST /config` changes, not the declarative configuration
//! it carries.

mod common;

use std::time::Duration;

use common::e2e::{Cli, wait_color, wait_health};
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::{Value, json};

/// The most bytes a report of one service may take, whatever the configuration's size.
const SMALL: usize = 4 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(real_kong, ignore = "needs the stand-in: it seeds a DB-less stand-in")]
async fn dbless_reports_say_what_changed_not_the_whole_configuration() {
    let blue = kong_switch_tests::backend::Backend::start("blue", "v1")
        .await
        .expect("blue");
    let green = kong_switch_tests::backend::Backend::start("green", "v2")
        .await
        .expect("green");
    let checks = common::e2e::active_checks();
    // 600 other services make the configuration far larger than any report may be.
    let mut services: Vec<Value> = (0..600)
        .map(|i| json!({ "name": format!("other-{i}"), "host": format!("other-{i}.internal") }))
        .collect();
    services.push(json!({ "name": "demo", "host": "demo-blue",
                          "routes": [{ "name": "demo", "paths": ["/demo"] }] }));
    let seed = json!({
        "_format_version": "3.0",
        "upstreams": [
            { "name": "demo-blue", "healthchecks": checks,
              "targets": [{ "target": format!("127.0.0.1:{}", blue.port()) }] },
            { "name": "demo-green", "healthchecks": checks,
              "targets": [{ "target": format!("127.0.0.1:{}", green.port()) }] }
        ],
        "services": services
    });
    let config_bytes = seed.to_string().len();
    assert!(config_bytes > 4 * SMALL, "{config_bytes}");
    let env = Env::start_with(
        StandIn::builder()
            .profile(Profile::DbLess3)
            .router_delay(Duration::from_millis(300))
            .seed(seed),
    )
    .await;
    env.standin().expect("not ignored, so this is the stand-in");
    wait_color(&env, "/demo", "blue").await;
    wait_health(&env, "demo-green", "HEALTHY", Duration::from_secs(10)).await;
    let cli = Cli::new(&env);
    let forward = "POST /config (service demo: host demo-blue → demo-green)";
    let backward = "POST /config (service demo: host demo-green → demo-blue)";

    // The dry run, as text and as JSON.
    let dry = cli.run(&["switch", "demo", "--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(dry.stdout.contains(forward), "{}", dry.stdout);
    assert!(dry.stdout.contains(backward), "{}", dry.stdout);
    assert!(dry.stdout.len() < SMALL, "{} bytes", dry.stdout.len());
    let (code, dry_json) = cli.json(&["switch", "demo", "--dry-run"]).await;
    assert_eq!(code, Some(0), "{dry_json:#}");
    assert_eq!(
        dry_json["writes"],
        json!([{ "method": "POST", "path": "/config",
                 "summary": "service demo: host demo-blue → demo-green" }])
    );
    assert_eq!(
        dry_json["undo"][0]["summary"],
        "service demo: host demo-green → demo-blue"
    );
    assert!(dry_json.to_string().len() < SMALL, "{dry_json}");

    // The switch: report and progress lines.
    let run = cli.run(&["switch", "demo"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(forward), "{}", run.stdout);
    assert!(run.stdout.len() < SMALL, "{} bytes", run.stdout.len());
    assert!(run.stderr.len() < SMALL, "{} bytes", run.stderr.len());
    assert!(
        run.stderr
            .contains("applied: service demo: host demo-blue → demo-green"),
        "{}",
        run.stderr
    );

    // Back, as JSON: every write in the report is brief.
    let (code, back) = cli.json(&["switch", "demo", "--to", "blue"]).await;
    assert_eq!(code, Some(0), "{back:#}");
    let text = back.to_string();
    assert!(text.len() < SMALL, "{} bytes: {text}", text.len());
    assert!(!text.contains("other-599"), "{text}");
    assert_eq!(
        back["steps"][0]["request"]["summary"],
        "service demo: host demo-green → demo-blue"
    );

    // The log's intent saves the edit and says what it changes, without a document either.
    let events = cli.history("demo").await;
    let intent = events
        .iter()
        .find(|e| e["kind"] == "intent")
        .expect("an intent");
    assert_eq!(
        intent["intent"]["writes"][0]["summary"], "service demo: host demo-blue → demo-green",
        "{intent:#}"
    );
    assert!(
        intent["intent"]["writes"][0]["body"].is_null(),
        "{intent:#}"
    );
    assert!(!intent.to_string().contains("other-599"), "{intent:#}");
}
