//! End to end: under steady load through the proxy, an upstream switch and its rollback lose
//! no request when both sides are healthy (design §3 step 5: "never leaves traffic without a
//! healthy backend").

mod common;

use std::time::Duration;

use common::e2e::{Cli, Green, Load, host_of, pair, wait_color};
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::StandIn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_and_rollback_under_steady_load_lose_no_request() {
    // A 1 s router delay (shorter than Kong's 5 s for speed): each direction still spends
    // a while with the PATCH written and the proxy not yet following.
    let env = Env::start_with(StandIn::builder().router_delay(Duration::from_secs(1))).await;
    let p = pair(&env, "load", Green::Healthy, &[]).await;
    let cli = Cli::new(&env);
    let url = p.url(&env);

    let load = Load::start(&url, 300);
    tokio::time::sleep(Duration::from_millis(500)).await; // load is steady before the switch
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
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(host_of(&env, &p.base).await, p.green_up);
    let (code, back) = cli.json(&["rollback", &p.base]).await;
    assert_eq!(code, Some(0), "{back:#}");
    assert_eq!(host_of(&env, &p.base).await, p.blue_up);
    wait_color(&env, &p.path, "blue").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = load.stop().await;

    let s = &result.shares;
    eprintln!(
        "load: {} requests in {:.1} s = {:.0} req/s; {} blue, {} green, {} other, {} lost {:?}",
        s.total(),
        result.elapsed.as_secs_f64(),
        result.rate(),
        s.blue,
        s.green,
        s.other,
        s.failed,
        s.failures
    );
    assert_eq!(s.failed, 0, "requests lost: {s:?}");
    assert_eq!(s.other, 0, "{s:?}");
    assert!(s.green > 0 && s.blue > 0, "both sides served: {s:?}");
    assert!(
        result.rate() >= 200.0,
        "the load generator reached only {:.0} req/s",
        result.rate()
    );
}
