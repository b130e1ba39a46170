//! Conformance: DB-less mode (`/config`, refusals, hashes), plus the stand-in-only features
//! (fault injection and the request log), each citing its source.

mod common;

use std::time::Duration;

use common::{admin, admin_raw, color, expect, proxy, wait_proxy};
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Fault, FaultAction, Profile, StandIn};
use serde_json::{Value, json};

async fn dbless(profile: Profile) -> Option<Env> {
    let env = Env::start_with(StandIn::builder().profile(profile)).await;
    if !env.is_dbless().await {
        eprintln!("skipped: needs a DB-less Kong");
        return None;
    }
    Some(env)
}

fn doc(version: &str, blue: u32, green: u32, blue_target: &str, green_target: &str) -> Value {
    json!({
        "_format_version": version,
        "services": [{ "name": "bg", "host": "bg-up", "routes": [{ "name": "bg", "paths": ["/bg"] }] }],
        "upstreams": [{ "name": "bg-up", "targets": [
            { "target": blue_target, "weight": blue },
            { "target": green_target, "weight": green }
        ] }]
    })
}

#[tokio::test]
async fn dbless_writes_refused() {
    // §3 DB-less + dbless.txt: POST → 405 code 12 "cannot create ..."; PATCH of a missing entity
    // → 404 code 6; reads work.
    let Some(env) = dbless(Profile::DbLess3).await else {
        return;
    };
    let e = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": "x.svc" })),
        405,
    )
    .await;
    assert_eq!(
        e,
        json!({ "code": 12, "name": "operation unsupported", "message": "cannot create 'upstreams' entities when not using a database" })
    );
    let e = expect(
        &env,
        "PATCH",
        "/services/bg-missing",
        Some(json!({ "host": "x" })),
        404,
    )
    .await;
    assert_eq!(e["code"], 6);
    expect(&env, "GET", "/upstreams", None, 200).await;
}

#[tokio::test]
async fn dbless_config_load_and_refusals_on_existing() {
    // dbless.txt: POST /config 201 keyed by type then id; PATCH/PUT/DELETE of existing
    // entities → 405 code 12 with Kong's messages; GET /config returns YAML in "config".
    let Some(env) = dbless(Profile::DbLess28).await else {
        return;
    };
    let r = expect(
        &env,
        "POST",
        "/config",
        Some(doc("2.1", 100, 0, "127.0.0.1:19101", "127.0.0.1:19102")),
        201,
    )
    .await;
    for table in ["services", "routes", "upstreams", "targets"] {
        assert!(r[table].is_object(), "{table}");
    }
    let (sid, service) = r["services"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap_or_default();
    assert_eq!(service["id"], sid.as_str());
    assert!(
        service.get("path").is_none(),
        "2.8 DB-less responses omit nulls"
    );
    let e = expect(
        &env,
        "PATCH",
        "/services/bg",
        Some(json!({ "host": "x" })),
        405,
    )
    .await;
    assert_eq!(
        e["message"],
        "cannot update 'services' entities by 'name' when not using a database"
    );
    let e = expect(
        &env,
        "PUT",
        "/upstreams/bg-up/targets/127.0.0.1:19101",
        Some(json!({ "weight": 5 })),
        405,
    )
    .await;
    assert_eq!(
        e["message"],
        "cannot update 'targets' entities when not using a database"
    );
    let e = expect(&env, "DELETE", "/upstreams/bg-up", None, 405).await;
    assert_eq!(
        e["message"],
        "cannot remove 'upstreams' entities by 'name' when not using a database"
    );
    let c = expect(&env, "GET", "/config", None, 200).await;
    assert!(
        c["config"]
            .as_str()
            .is_some_and(|y| y.starts_with("_format_version: '2.1'"))
    );
}

#[tokio::test]
async fn dbless_ids_are_deterministic_and_replace_is_total() {
    // §3: same ids on re-post; the whole config is replaced (entities not in the payload vanish).
    let Some(env) = dbless(Profile::DbLess3).await else {
        return;
    };
    let first = expect(
        &env,
        "POST",
        "/config",
        Some(doc("3.0", 100, 0, "127.0.0.1:19101", "127.0.0.1:19102")),
        201,
    )
    .await;
    let second = expect(
        &env,
        "POST",
        "/config",
        Some(doc("3.0", 0, 100, "127.0.0.1:19101", "127.0.0.1:19102")),
        201,
    )
    .await;
    let keys = |v: &Value, t: &str| {
        v[t].as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    assert_eq!(keys(&first, "services"), keys(&second, "services"));
    assert_eq!(keys(&first, "targets"), keys(&second, "targets"));
    let only_service = json!({ "_format_version": "3.0", "services": [{ "name": "solo", "host": "example.test" }] });
    expect(&env, "POST", "/config", Some(only_service), 201).await;
    assert_eq!(
        expect(&env, "GET", "/upstreams", None, 200).await["data"],
        json!([])
    );
    assert_eq!(admin(&env, "GET", "/services/bg", None).await.status, 404);
}

#[tokio::test]
async fn dbless_config_errors() {
    // dbless.txt / 3.9.3 transcript: code 14 with fields per entity index; missing
    // _format_version; diffs dbless.config-malformed (version list per version).
    let Some(env) = dbless(Profile::DbLess3).await else {
        return;
    };
    let e = expect(&env, "POST", "/config", Some(json!({ "_format_version": "3.0", "services": [{ "name": "bad", "host": "x", "port": 99999 }] })), 400).await;
    assert_eq!(e["code"], 14);
    assert_eq!(e["name"], "invalid declarative configuration");
    assert_eq!(
        e["fields"],
        json!({ "services": [{ "port": "value should be between 0 and 65535" }] })
    );
    assert_eq!(
        e["message"],
        "declarative config is invalid: {services={{port=\"value should be between 0 and 65535\"}}}"
    );
    let e = expect(
        &env,
        "POST",
        "/config",
        Some(json!({ "services": [] })),
        400,
    )
    .await;
    assert_eq!(e["fields"]["_format_version"], "required field missing");
    let e = expect(
        &env,
        "POST",
        "/config",
        Some(json!({ "_format_version": "9.9" })),
        400,
    )
    .await;
    assert_eq!(
        e["fields"]["_format_version"],
        "expected one of: 1.1, 2.1, 3.0"
    );
}

#[tokio::test]
async fn dbless_hash_and_check_hash() {
    // §2.6 configuration_hash: 32 zeros before the first config, md5 after; §3 check_hash=1 →
    // 304 when identical (string form on 2.8; any form on 3.x).
    let Some(env) = dbless(Profile::DbLess3).await else {
        return;
    };
    let before = expect(&env, "GET", "/status", None, 200).await["configuration_hash"].clone();
    if env.is_standin() {
        assert_eq!(before, "0".repeat(32));
    }
    let text = doc("3.0", 100, 0, "127.0.0.1:19101", "127.0.0.1:19102").to_string();
    let body = json!({ "config": text });
    expect(&env, "POST", "/config", Some(body.clone()), 201).await;
    let hash = expect(&env, "GET", "/status", None, 200).await["configuration_hash"].clone();
    assert!(
        hash.as_str()
            .is_some_and(|h| h.len() == 32 && h != "0".repeat(32))
    );
    let r = admin(&env, "POST", "/config?check_hash=1", Some(body)).await;
    assert_eq!(r.status, 304);
}

#[tokio::test]
async fn dbless_config_changes_are_live_at_once() {
    // diffs dbless.proxy-switch: every /config change is live on the next request (3.x too).
    let Some(env) = dbless(Profile::DbLess3).await else {
        return;
    };
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let (b, g) = (env.target_for(&blue), env.target_for(&green));
    expect(
        &env,
        "POST",
        "/config",
        Some(doc("3.0", 100, 0, &b, &g)),
        201,
    )
    .await;
    assert!(
        wait_proxy(&env, "/bg", Duration::from_secs(2), |r| color(r).as_deref()
            == Some("blue"))
        .await
        .is_some()
    );
    expect(
        &env,
        "POST",
        "/config",
        Some(doc("3.0", 0, 100, &b, &g)),
        201,
    )
    .await;
    let live = wait_proxy(&env, "/bg", Duration::from_secs(2), |r| {
        color(r).as_deref() == Some("green")
    })
    .await;
    assert!(live.is_some_and(|d| d < Duration::from_millis(500)));
    let h = expect(&env, "GET", "/upstreams/bg-up/health", None, 200).await;
    assert_eq!(h["data"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn dbless_yaml_body_is_415() {
    // §3: raw application/x-yaml body → 415 (nginx page) on 2.8.5.
    let Some(env) = dbless(Profile::DbLess28).await else {
        return;
    };
    let r = admin_raw(
        &env,
        "POST",
        "/config",
        "application/x-yaml",
        "_format_version: '2.1'\n",
    )
    .await;
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn faults_and_request_log() {
    // Stand-in only: injected 5xx, dropped connections and delays on the Admin API, and the
    // ordered log of writes (method, path, query, body).
    let env = Env::start_with(StandIn::builder().profile(Profile::V3)).await;
    let Some(standin) = env.standin() else {
        eprintln!("skipped: needs the stand-in");
        return;
    };
    let name = Env::unique("fault.svc");
    standin.faults().add(
        Fault::prefix("/upstreams", FaultAction::Respond { status: 503 })
            .method("POST")
            .times(1),
    );
    let r = admin(&env, "POST", "/upstreams", Some(json!({ "name": name }))).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        admin(&env, "GET", &format!("/upstreams/{name}"), None)
            .await
            .status,
        404,
        "not applied"
    );
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name })),
        201,
    )
    .await;
    standin.faults().add(
        Fault::exact(format!("/upstreams/{name}"), FaultAction::DropAfterApply)
            .method("PATCH")
            .times(1),
    );
    let dropped = env
        .client()
        .patch(format!("{}/upstreams/{name}", env.admin_url()))
        .json(&json!({ "slots": 100 }))
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "connection must be closed without a response"
    );
    assert_eq!(
        expect(&env, "GET", &format!("/upstreams/{name}"), None, 200).await["slots"],
        100,
        "applied"
    );
    standin
        .faults()
        .add(Fault::prefix("/status", Fault::delay(Duration::from_millis(300))).times(1));
    let started = std::time::Instant::now();
    expect(&env, "GET", "/status", None, 200).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let writes = standin.log().writes();
    let summary: Vec<(String, String)> = writes
        .iter()
        .map(|w| (w.method.clone(), w.path.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("POST".to_owned(), "/upstreams".to_owned()),
            ("POST".to_owned(), "/upstreams".to_owned()),
            ("PATCH".to_owned(), format!("/upstreams/{name}")),
        ]
    );
    assert_eq!(writes[2].body, json!({ "slots": 100 }));
}

#[tokio::test]
async fn seed_is_loaded_in_every_profile() {
    // Stand-in only: --seed / builder seed in Kong's declarative format.
    let seed = json!({
        "_format_version": "3.0",
        "services": [{ "name": "seeded", "host": "seeded-up", "routes": [{ "paths": ["/seeded"] }] }],
        "upstreams": [{ "name": "seeded-up", "targets": [{ "target": "127.0.0.1:1", "weight": 0 }] }]
    });
    let env = Env::start_with(
        StandIn::builder()
            .profile(Profile::V3)
            .router_delay(Duration::from_millis(100))
            .seed(seed),
    )
    .await;
    if !env.is_standin() {
        eprintln!("skipped: needs the stand-in");
        return;
    }
    expect(&env, "GET", "/services/seeded", None, 200).await;
    let r = proxy(&env, "/seeded").await;
    assert_eq!(
        (r.status, r.json["message"].clone()),
        (503, json!("failure to get a peer from the ring-balancer"))
    );
}
