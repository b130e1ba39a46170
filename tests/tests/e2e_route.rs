//! End to end: the `route` strategy (design §2) re-points routes one by one; when a write
//! fails midway, the routes already moved are moved back (exit 4) and traffic stays on blue.

mod common;

use std::time::Duration;

use common::e2e::{Cli, requests, wait_color};
use common::expect;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Fault, FaultAction, StandIn};
use serde_json::Value;

/// The service a route points at (its id).
async fn service_of_route(env: &Env, route: &str) -> Value {
    expect(env, "GET", &format!("/routes/{route}"), None, 200).await["service"]["id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(real_kong, ignore = "needs the stand-in: fault injection")]
async fn route_switch_with_a_failed_second_write_puts_every_route_back_on_blue() {
    failed_second_route_write(FaultAction::Respond { status: 500 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(real_kong, ignore = "needs the stand-in: fault injection")]
async fn route_switch_whose_failed_second_write_took_effect_still_ends_all_on_blue() {
    // Kong applied the PATCH but answered 500 (e.g. a proxy in front timed out): the undo must
    // include the failed write too.
    failed_second_route_write(FaultAction::RespondAfterApply { status: 500 }).await;
}

async fn failed_second_route_write(fault: FaultAction) {
    // A short router delay (0.3 s) keeps the test quick; the switch tests use Kong's default.
    let env = Env::start_with(StandIn::builder().router_delay(Duration::from_millis(300))).await;
    let standin = env.standin().expect("not ignored, so this is the stand-in");
    let pair = common::e2e::route_pair(&env, "rt", 3).await;
    let (base, routes) = (pair.base.clone(), pair.routes.clone());
    let (blue_id, green_id) = pair.ids.clone();
    let cli = Cli::new(&env);
    let service = format!("{base}-blue");

    // The dry run tells the order of the route writes; fail the second one.
    let (code, dry) = cli
        .json(&["switch", &service, "--strategy", "route", "--dry-run"])
        .await;
    assert_eq!(code, Some(0), "{dry:#}");
    let planned = requests(&dry["writes"]);
    assert_eq!(planned.len(), 3, "{dry:#}");
    for (method, path, body) in &planned {
        assert_eq!(method, "PATCH");
        assert!(path.starts_with("/routes/"), "{path}");
        assert_eq!(body["service"]["id"], green_id, "{body}");
    }
    let second = planned[1].1.clone();
    standin.faults().add(
        Fault::exact(second.clone(), fault.clone())
            .method("PATCH")
            .times(1),
    );
    standin.log().clear();

    let (code, report) = cli.json(&["switch", &service, "--strategy", "route"]).await;
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["rollback"]["cause"], "write_failed", "{report:#}");
    assert_eq!(report["rollback"]["restored"]["at"], "start");
    let statuses: Vec<&str> = report["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert_eq!(statuses, vec!["undone", "failed", "planned"], "{report:#}");

    // Kong: every route on blue again; the third was never touched.
    for r in &routes {
        assert_eq!(service_of_route(&env, r).await, blue_id, "route {r}");
    }
    let writes: Vec<(String, String)> = standin
        .log()
        .writes()
        .into_iter()
        .map(|w| (w.method, w.path))
        .collect();
    let patch = |i: usize| ("PATCH".to_owned(), planned[i].1.clone());
    let expected = if matches!(fault, FaultAction::Respond { .. }) {
        // The first route moved, the second failed, the first moved back.
        vec![patch(0), patch(1), patch(0)]
    } else {
        // Both moved (the second despite its 500); both moved back, newest first.
        vec![patch(0), patch(1), patch(1), patch(0)]
    };
    assert_eq!(writes, expected);
    // Traffic: every route serves blue.
    for r in &routes {
        wait_color(&env, &format!("/{r}"), "blue").await;
    }
}
