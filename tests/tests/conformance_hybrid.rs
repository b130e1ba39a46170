//! Conformance of the stand-in's hybrid mode with real Kong 2.8.5 and 3.9.3 as measured in
//! kong-admin-api.md §10 (`kong-*/hybrid.txt`). Each test cites the fact it checks. The shape
//! and health tests also run against a real hybrid Kong (`KONG_CP_ADMIN_URL`,
//! `KONG_DP_PROXY_URLS`, `KONG_DP_STATUS_URLS`); the timing tests check the stand-in's own
//! (shortened) timings and are ignored there.

mod hybrid_common;

use std::time::{Duration, Instant};

use hybrid_common::{Hybrid, short_knobs};
use kong_switch_tests::backend::BackendMode;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::Profile;
use serde_json::json;

const WINDOW: Duration = Duration::from_millis(1500);

async fn start(profile: Profile, dps: usize) -> Hybrid {
    Hybrid::start(profile, dps, WINDOW, short_knobs(profile)).await
}

async fn roles_rows_and_status_api(profile: Profile) {
    let h = start(profile, 2).await;
    if !h.is_standin() {
        // A real data plane's node id is read from its Status API, which needs an upstream.
        h.upstream_pair().await;
    }
    let v3 = h.is_v3().await;
    let version = h.version().await;
    // §10 "What the CP shows" / hybrid.txt §1: role control_plane, proxy off.
    let root = h.admin("GET", "/", None).await.json;
    assert_eq!(root["configuration"]["role"], "control_plane");
    assert_eq!(root["configuration"]["database"], "postgres");
    assert_eq!(root["configuration"]["proxy_listen"], json!(["off"]));
    if h.is_standin() {
        assert_eq!(root["configuration"]["db_update_frequency"], 1.5);
    } else {
        assert!(root["configuration"]["db_update_frequency"].is_number());
    }

    // One row per DP; 3.9.3 adds updated_at, labels, rpc_capabilities, cert_details.
    let rows = h.admin("GET", "/clustering/data-planes", None).await;
    assert_eq!(rows.status, 200);
    assert_eq!(rows.json["next"], json!(null));
    let data = rows.json["data"].as_array().expect("data").clone();
    if h.is_standin() {
        assert_eq!(data.len(), 2);
    }
    for i in 0..h.dp_count() {
        // A real control plane may also list data planes stopped earlier (§10).
        let id = h.dp_id(i).await;
        let row = data
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no row for data plane {i} ({id}): {data:?}"));
        let mut keys: Vec<&str> = row
            .as_object()
            .expect("row")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut want = vec![
            "config_hash",
            "hostname",
            "id",
            "ip",
            "last_seen",
            "sync_status",
            "ttl",
            "version",
        ];
        if v3 {
            want.extend(["cert_details", "labels", "rpc_capabilities", "updated_at"]);
        }
        want.sort_unstable();
        assert_eq!(keys, want, "{row}");
        assert_eq!(row["sync_status"], "normal");
        assert!(row["last_seen"].is_u64(), "whole epoch seconds: {row}");
        assert_eq!(row["version"], version.as_str());
        // The CP's hash of a DP is the DP's own /status configuration_hash (§10), once the
        // CP's view caught up (it lags the DP by up to ~0.9 s; other writes may be under way
        // on a shared real control plane).
        let same = Env::wait_until(Duration::from_secs(15), || async {
            h.row(i).await["config_hash"] == h.dp_hash(i).await.as_str()
        })
        .await;
        assert!(same.is_some(), "dp {i}: the CP never showed its hash");
    }

    // /clustering/status: object keyed by DP id, with `Deprecation: true`.
    let status = h.admin("GET", "/clustering/status", None).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.header("deprecation"), Some("true"));
    let entry = &status.json[h.dp_id(0).await.as_str()];
    let mut keys: Vec<&str> = entry
        .as_object()
        .expect("entry")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["config_hash", "hostname", "ip", "last_seen"]);

    // DP Status API: /status with a 32-hex hash; /status/ready 200 on 3.9.3, 404 on 2.8.5;
    // no /upstreams list; every write 404.
    let st = h.status(0, "GET", "/status").await;
    assert_eq!(st.status, 200);
    let hash = st.json["configuration_hash"].as_str().expect("hash");
    assert_eq!(hash.len(), 32);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(st.json.get("database").is_none(), "a DP has no database");
    let ready = h.status(0, "GET", "/status/ready").await;
    if v3 {
        assert_eq!(ready.status, 200);
        assert_eq!(ready.json, json!({ "message": "ready" }));
    } else {
        assert_eq!(ready.status, 404);
    }
    let list = h.status(0, "GET", "/upstreams").await;
    assert_eq!(list.status, 404);
    assert_eq!(list.json, json!({ "message": "Not found" }));
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let w = h.status(0, method, "/config").await;
        assert_eq!(w.status, 404, "{method} /config on a DP Status API");
    }
    assert!(
        h.status(0, "GET", "/status")
            .await
            .header("server")
            .is_some_and(|s| s.starts_with("kong/"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn control_plane_rows_and_data_plane_status_api_have_kong_3_shapes() {
    roles_rows_and_status_api(Profile::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn control_plane_rows_and_data_plane_status_api_have_kong_2_8_shapes() {
    roles_rows_and_status_api(Profile::V28).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: checks its push window (shortened to 1.5 s) against kong-admin-api.md §10"
)]
async fn a_quiet_write_is_pushed_at_once_and_a_write_within_the_window_waits_for_its_end() {
    // §10: "A write when no push has run for 5 s is pushed at once ... A write made within 5 s of
    // the previous push waits for the end of that 5 s."
    let h = start(Profile::V3, 1).await;
    h.upstream_pair().await;
    tokio::time::sleep(WINDOW + Duration::from_millis(300)).await;
    let before = h.dp_hash(0).await;
    let patch = h
        .admin(
            "PATCH",
            &format!("/services/{}", h.base),
            Some(json!({ "host": h.up("green") })),
        )
        .await;
    assert_eq!(patch.status, 200);
    let written = Instant::now();
    let first = Env::wait_until(Duration::from_secs(3), || async {
        h.dp_hash(0).await != before
    })
    .await
    .expect("the quiet write was pushed");
    assert!(
        first < WINDOW,
        "pushed at once, not after the window: {first:?}"
    );
    let first_hash = h.dp_hash(0).await;

    // A second write right after that push waits for the window's end.
    let patch = h
        .admin(
            "PATCH",
            &format!("/services/{}", h.base),
            Some(json!({ "host": h.up("blue") })),
        )
        .await;
    assert_eq!(patch.status, 200);
    let second_written = Instant::now();
    let second = Env::wait_until(Duration::from_secs(5), || async {
        h.dp_hash(0).await != first_hash
    })
    .await
    .expect("the second write was pushed");
    let pushed_after_first = written.elapsed() - second_written.elapsed() + second;
    assert!(
        second_written.elapsed() >= Duration::from_millis(800),
        "the second push waited for the window"
    );
    assert!(
        pushed_after_first >= WINDOW - Duration::from_millis(100),
        "second push {pushed_after_first:?} after the first write, window {WINDOW:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: checks its partial push (shortened timings) against kong-admin-api.md §10"
)]
async fn a_burst_of_writes_can_arrive_as_a_partial_push_first() {
    // §10: "The first push after a burst of writes can be partial ... the rest came 5.03–5.07 s
    // later." Weight shift green raised first: the DP split blue/green until the next push.
    let h = start(Profile::V3, 1).await;
    h.weighted_pool().await;
    tokio::time::sleep(WINDOW + Duration::from_millis(300)).await;
    let green = h.target(&h.green);
    let blue = h.target(&h.blue);
    let raise = h
        .admin(
            "PATCH",
            &format!("/upstreams/{}/targets/{green}", h.up("pool")),
            Some(json!({ "weight": 100 })),
        )
        .await;
    assert_eq!(raise.status, 200);
    // Past the push delay: the first push holds only the raise.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let lower = h
        .admin(
            "PATCH",
            &format!("/upstreams/{}/targets/{blue}", h.up("pool")),
            Some(json!({ "weight": 0 })),
        )
        .await;
    assert_eq!(lower.status, 200);
    // The DP serves a mix (the partial push) before it serves green only.
    let mixed = Env::wait_until(Duration::from_secs(3), || async {
        let (b, g, _) = h.sample(0, 10).await;
        b > 0 && g > 0
    })
    .await;
    assert!(mixed.is_some(), "the partial push never showed");
    let green_only = Env::wait_until(Duration::from_secs(5), || async {
        h.sample(0, 10).await == (0, 10, 0)
    })
    .await;
    assert!(green_only.is_some(), "the rest never came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: starts a 2.8 and a 3.x cluster with shortened timings"
)]
async fn identical_content_gives_an_identical_hash_on_2_8_and_target_updates_change_it_on_3x() {
    // §10: "On 2.8.5, shifting weights back restored an earlier hash ... On 3.9.3 every target
    // PATCH changes updated_at, so a round trip gives a new hash."
    for profile in [Profile::V28, Profile::V3] {
        let h = start(profile, 1).await;
        h.weighted_pool().await;
        h.wait_settled(Duration::from_secs(5)).await;
        let original = h.dp_hash(0).await;
        let blue = h.target(&h.blue);
        for weight in [50, 100] {
            let p = h
                .admin(
                    "PATCH",
                    &format!("/upstreams/{}/targets/{blue}", h.up("pool")),
                    Some(json!({ "weight": weight })),
                )
                .await;
            assert_eq!(p.status, 200);
            let was = h.dp_hash(0).await;
            let changed = Env::wait_until(WINDOW * 3, || async { h.dp_hash(0).await != was }).await;
            assert!(changed.is_some(), "{profile}: weight {weight} never pushed");
        }
        let back = h.dp_hash(0).await;
        if profile == Profile::V28 {
            assert_eq!(back, original, "2.8: same content, same hash");
        } else {
            assert_ne!(back, original, "3.x: updated_at changed, new hash");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: starts a 2.8 and a 3.x cluster with a chosen proxy lag"
)]
async fn on_3x_the_proxy_follows_the_hash_after_a_lag_and_on_2_8_together() {
    // §10: "On 3.9.3 the DP hash changes before the proxy does ... On 2.8.5 the two changed in
    // the same poll."
    for profile in [Profile::V3, Profile::V28] {
        let mut knobs = short_knobs(profile);
        if profile == Profile::V3 {
            knobs.proxy_lag = Duration::from_millis(1500);
        }
        let h = Hybrid::start(profile, 1, WINDOW, knobs).await;
        h.upstream_pair().await;
        h.wait_settled(Duration::from_secs(5)).await;
        tokio::time::sleep(WINDOW).await;
        let before = h.dp_hash(0).await;
        let patch = h
            .admin(
                "PATCH",
                &format!("/services/{}", h.base),
                Some(json!({ "host": h.up("green") })),
            )
            .await;
        assert_eq!(patch.status, 200);
        let changed = Env::wait_until(Duration::from_secs(3), || async {
            h.dp_hash(0).await != before
        })
        .await;
        assert!(changed.is_some(), "{profile}: never pushed");
        let right_after = h.color(0).await;
        if profile == Profile::V3 {
            assert_eq!(
                right_after.as_deref(),
                Some("blue"),
                "3.x proxy lags its hash"
            );
        } else {
            assert_eq!(
                right_after.as_deref(),
                Some("green"),
                "2.8 proxy follows at once"
            );
        }
        h.wait_all_serve("green", Duration::from_secs(5)).await;
    }
}

async fn health_only_on_data_planes(profile: Profile) {
    let h = start(profile, 2).await;
    h.upstream_pair().await;
    let green_target = h.target(&h.green);
    // §10 "Health lives only on the DPs": the CP lists bare targets; balancer_health is only
    // {next, node_id}.
    let cp = h
        .admin("GET", &format!("/upstreams/{}/health", h.up("green")), None)
        .await
        .json;
    assert_eq!(cp["data"][0]["target"], green_target.as_str());
    assert!(cp["data"][0].get("health").is_none(), "{cp}");
    assert!(cp["data"][0].get("data").is_none(), "{cp}");
    let cp_bh = h
        .admin(
            "GET",
            &format!("/upstreams/{}/health?balancer_health=1", h.up("green")),
            None,
        )
        .await
        .json;
    let mut keys: Vec<&str> = cp_bh
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["next", "node_id"]);

    // Each DP's Status API has HEALTHY → UNHEALTHY when green fails; the CP does not change.
    for dp in 0..2 {
        let healthy = Env::wait_until(Duration::from_secs(5), || async {
            h.status(dp, "GET", &format!("/upstreams/{}/health", h.up("green")))
                .await
                .json["data"][0]["health"]
                == "HEALTHY"
        })
        .await;
        assert!(healthy.is_some(), "{profile}: dp {dp} never HEALTHY");
        // hybrid.txt: a DP's health answers carry its node id, which is its row id on the CP.
        let node_id = h
            .status(dp, "GET", &format!("/upstreams/{}/health", h.up("green")))
            .await
            .json["node_id"]
            .clone();
        assert_eq!(node_id, h.row(dp).await["id"], "dp {dp}");
        let targets = h
            .status(dp, "GET", &format!("/upstreams/{}/targets", h.up("green")))
            .await;
        assert_eq!(targets.status, 200);
        assert_eq!(targets.json["data"][0]["target"], green_target.as_str());
    }
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
        assert!(unhealthy.is_some(), "{profile}: dp {dp} never UNHEALTHY");
    }
    assert_eq!(
        h.admin("GET", &format!("/upstreams/{}/health", h.up("green")), None)
            .await
            .json["data"],
        cp["data"],
        "the CP's view did not change"
    );

    // Manual marks: 3.9.3 CP → 404 for PUT and POST; 2.8.5 CP → PUT 405, POST 400
    // "Upstream <u> has no balancer"; DP Status API → 404.
    let green_up = h.up("green");
    let path = format!("/upstreams/{green_up}/targets/{green_target}/healthy");
    let put = h.admin("PUT", &path, Some(json!({}))).await;
    let post = h.admin("POST", &path, Some(json!({}))).await;
    if h.is_v3().await {
        assert_eq!(put.status, 404);
        assert_eq!(put.json, json!({ "message": "Not found" }));
        assert_eq!(post.status, 404);
    } else {
        assert_eq!(put.status, 405);
        assert_eq!(post.status, 400);
        assert_eq!(
            post.json,
            json!({ "message": format!("Upstream {green_up} has no balancer") })
        );
    }
    assert_eq!(h.status(0, "PUT", &path).await.status, 404);
    assert_eq!(h.status(0, "POST", &path).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn health_lives_only_on_the_data_planes_and_marks_answer_as_kong_3_does() {
    health_only_on_data_planes(Profile::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    all(real_kong, not(real_hybrid)),
    ignore = "needs a hybrid Kong: set KONG_CP_ADMIN_URL, KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS"
)]
async fn health_lives_only_on_the_data_planes_and_marks_answer_as_kong_2_8_does() {
    health_only_on_data_planes(Profile::V28).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(real_kong, real_hybrid),
    ignore = "needs the stand-in: stops a data plane"
)]
async fn a_stopped_data_plane_keeps_its_row_with_its_old_hash_and_a_frozen_last_seen() {
    // §10 "New and lost DPs": after `kong stop` the row stays with its old config_hash,
    // sync_status normal and a frozen last_seen; the next switch shows one DP on the new hash
    // and one on the old.
    let h = start(Profile::V3, 2).await;
    h.upstream_pair().await;
    h.wait_settled(Duration::from_secs(5)).await;
    let old_hash = h.dp_hash(1).await;
    let frozen = h.row(1).await["last_seen"].clone();
    h.standin().stop_data_plane(1);
    let refused = h
        .http
        .get(format!("{}/status", h.status_url(1)))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a stopped DP's Status API does not answer"
    );

    let patch = h
        .admin(
            "PATCH",
            &format!("/services/{}", h.base),
            Some(json!({ "host": h.up("green") })),
        )
        .await;
    assert_eq!(patch.status, 200);
    let moved = Env::wait_until(Duration::from_secs(5), || async {
        let row = h.row(0).await;
        row["config_hash"] != old_hash.as_str() && row["config_hash"] == h.dp_hash(0).await
    })
    .await;
    assert!(
        moved.is_some(),
        "the running DP never reported the new hash"
    );
    // Pings every second keep the live DP's last_seen moving; the stopped one stays.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let stopped = h.row(1).await;
    assert_eq!(stopped["config_hash"], old_hash.as_str());
    assert_eq!(stopped["last_seen"], frozen);
    assert_eq!(stopped["sync_status"], "normal");
    let live = h.row(0).await;
    assert!(
        live["last_seen"].as_u64() > frozen.as_u64(),
        "the live DP pings: {live} vs frozen {frozen}"
    );
}
