//! Conformance: DB-less mode (`/config`, refusals, hashes), plus the stand-in-only features
//! (fault injection and the request log), each citing its source.
//!
//! The DB-less tests run against `KONG_DBLESS_ADMIN_URL` when it is set (one at a time: each
//! replaces the node's whole configuration), against a DB-less stand-in when no real Kong is
//! configured, and are ignored when only `KONG_ADMIN_URL` names a real Kong.

mod common;

use std::time::Duration;

use common::{admin, admin_raw, color, expect, proxy, wait_proxy};
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Fault, FaultAction, Profile, StandIn};
use serde_json::{Value, json};

/// Serialises the tests of this file: against a real DB-less node every `POST /config`
/// replaces what another test loaded.
static ONE_CONFIG_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A DB-less Kong (the real one, or a stand-in of `profile`) and the lock on its config.
async fn dbless(profile: Profile) -> (Env, tokio::sync::MutexGuard<'static, ()>) {
    let guard = ONE_CONFIG_AT_A_TIME.lock().await;
    let env = Env::dbless_with(StandIn::builder().profile(profile)).await;
    assert!(env.is_dbless().await, "{} is not DB-less", env.admin_url());
    (env, guard)
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

/// Every `(path, value)` of the `null`s in `v`.
fn nulls(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(path.to_owned()),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| nulls(v, &format!("{path}.{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| nulls(v, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

async fn dbless_writes_refused(profile: Profile) {
    // §3 DB-less + dbless.txt + 3.9.3 transcript: POST → 405 code 12 "cannot create ..." (the
    // same text on both versions: kong/db/strategies/off); PATCH of a missing entity → 404
    // code 6; reads work.
    let (env, _config) = dbless(profile).await;
    for (path, entity) in [("/upstreams", "upstreams"), ("/services", "services")] {
        let e = expect(
            &env,
            "POST",
            path,
            Some(json!({ "name": "x", "host": "x" })),
            405,
        )
        .await;
        assert_eq!(
            e,
            json!({ "code": 12, "name": "operation unsupported",
                    "message": format!("cannot create '{entity}' entities when not using a database") })
        );
    }
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
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_writes_refused_v28() {
    dbless_writes_refused(Profile::DbLess28).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_writes_refused_v3() {
    dbless_writes_refused(Profile::DbLess3).await;
}

async fn dbless_config_load_and_refusals_on_existing(profile: Profile) {
    // dbless.txt / 3.9.3 transcript: POST /config 201 keyed by type then id (diffs
    // dbless.config-post: 2.8.5 omits nulls, 3.9.3 keeps them, e.g. a service's "path": null,
    // a route's "hosts": null, a target's "tags": null); PATCH/PUT/DELETE of existing entities
    // → 405 code 12 with Kong's messages; GET /config returns YAML in "config" with the node's
    // own _format_version ('2.1' on 2.8.5, '3.0' on 3.x; the top-level key order is Lua's
    // hash order: proxy-errors.txt shows `_transform: false` first on both).
    let (env, _config) = dbless(profile).await;
    let version = env.format_version().await;
    let v3 = version == "3.0";
    let r = expect(
        &env,
        "POST",
        "/config",
        Some(doc(version, 100, 0, "127.0.0.1:19101", "127.0.0.1:19102")),
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
    let mut found = Vec::new();
    nulls(&r, "", &mut found);
    if v3 {
        assert_eq!(service.get("path"), Some(&Value::Null), "{service}");
        let route = r["routes"].as_object().and_then(|m| m.values().next());
        assert_eq!(route.and_then(|r| r.get("hosts")), Some(&Value::Null));
        let target = r["targets"].as_object().and_then(|m| m.values().next());
        assert_eq!(target.and_then(|t| t.get("tags")), Some(&Value::Null));
        assert!(target.is_some_and(|t| t["updated_at"].is_number()));
    } else {
        assert!(
            found.is_empty(),
            "2.8 DB-less answers omit nulls: {found:?}"
        );
    }
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
    let yaml = c["config"].as_str().unwrap_or_default();
    let top: Vec<&str> = yaml.lines().take_while(|l| l.starts_with('_')).collect();
    assert!(
        top.contains(&format!("_format_version: '{version}'").as_str())
            && top.contains(&"_transform: false"),
        "{yaml}"
    );
    assert!(yaml.contains("\n  host: bg-up\n"), "{yaml}");
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_config_load_and_refusals_on_existing_v28() {
    dbless_config_load_and_refusals_on_existing(Profile::DbLess28).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_config_load_and_refusals_on_existing_v3() {
    dbless_config_load_and_refusals_on_existing(Profile::DbLess3).await;
}

async fn dbless_ids_are_deterministic_and_replace_is_total(profile: Profile) {
    // §3: same ids on re-post; the whole config is replaced (entities not in the payload vanish).
    let (env, _config) = dbless(profile).await;
    let version = env.format_version().await;
    let first = expect(
        &env,
        "POST",
        "/config",
        Some(doc(version, 100, 0, "127.0.0.1:19101", "127.0.0.1:19102")),
        201,
    )
    .await;
    let second = expect(
        &env,
        "POST",
        "/config",
        Some(doc(version, 0, 100, "127.0.0.1:19101", "127.0.0.1:19102")),
        201,
    )
    .await;
    let keys = |v: &Value, t: &str| {
        v[t].as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    assert_eq!(keys(&first, "services"), keys(&second, "services"));
    assert_eq!(keys(&first, "targets"), keys(&second, "targets"));
    let only_service = json!({ "_format_version": version, "services": [{ "name": "solo", "host": "example.test" }] });
    expect(&env, "POST", "/config", Some(only_service), 201).await;
    assert_eq!(
        expect(&env, "GET", "/upstreams", None, 200).await["data"],
        json!([])
    );
    assert_eq!(admin(&env, "GET", "/services/bg", None).await.status, 404);
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_ids_are_deterministic_and_replace_is_total_v28() {
    dbless_ids_are_deterministic_and_replace_is_total(Profile::DbLess28).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_ids_are_deterministic_and_replace_is_total_v3() {
    dbless_ids_are_deterministic_and_replace_is_total(Profile::DbLess3).await;
}

async fn dbless_ids_are_the_ones_kong_derives(profile: Profile) {
    // dbless.txt (2.8.5) and the 3.9.3 transcript: the same document always loads with the
    // same ids, derived from names (and a target's upstream and address); these exact ids.
    let (env, _config) = dbless(profile).await;
    let v3 = env.format_version().await == "3.0";
    let (doc, want) = if v3 {
        (
            json!({"_format_version":"3.0","upstreams":[{"name":"shop-up","targets":[{"target":"127.0.0.1:19301","weight":100},{"target":"127.0.0.1:19302","weight":100}]}],"services":[{"name":"shop","host":"shop-up","port":80,"routes":[{"name":"shop-route","hosts":["shop.test"],"paths":["/"]}]}]}),
            [
                ("services", vec!["abfbe39c-075b-5e5e-aec6-a90f2f0adfee"]),
                ("routes", vec!["c581459b-ed75-56ee-9d36-86eb9c0b9920"]),
                ("upstreams", vec!["2f0b1631-44bf-5e48-af86-4039c4fecc00"]),
                (
                    "targets",
                    vec![
                        "44fdc4a1-0e88-5d50-8aa2-8a8b939336ed",
                        "7cb0aef0-b2b2-5d18-bb52-d614ba4aea88",
                    ],
                ),
            ],
        )
    } else {
        (
            json!({"_format_version":"2.1","services":[{"name":"bg","host":"bg-blue","routes":[{"name":"bg","paths":["/bg"]}]}],"upstreams":[{"name":"bg-blue","targets":[{"target":"127.0.0.1:19101","weight":100}]},{"name":"bg-green","targets":[{"target":"127.0.0.1:19102"}]}]}),
            [
                ("services", vec!["8f766980-32f1-5c23-98ac-6364d6f0b7a6"]),
                ("routes", vec!["fb5fd4f4-c575-54f9-90d5-1b67153aa464"]),
                (
                    "upstreams",
                    vec![
                        "b9fb6de2-dc0e-5fea-bff7-900a0d073525",
                        "ee8df3ef-d30b-52a6-9f27-53537d762286",
                    ],
                ),
                (
                    "targets",
                    vec![
                        "1652af9f-8eff-50f5-9c9a-bdc7d1db2687",
                        "56b284ed-bdae-54d2-b166-5ef3c9070cd2",
                    ],
                ),
            ],
        )
    };
    let loaded = expect(&env, "POST", "/config", Some(doc), 201).await;
    for (table, ids) in want {
        let mut got: Vec<String> = loaded[table]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        got.sort();
        assert_eq!(got, ids, "{table}");
    }
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_ids_are_the_ones_kong_derives_v28() {
    dbless_ids_are_the_ones_kong_derives(Profile::DbLess28).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_ids_are_the_ones_kong_derives_v3() {
    dbless_ids_are_the_ones_kong_derives(Profile::DbLess3).await;
}

async fn dbless_config_errors(profile: Profile) {
    // dbless.txt / 3.9.3 transcript: code 14 with fields per entity index; missing
    // _format_version; diffs dbless.config-malformed: 2.8.5 accepts only 1.1 and 2.1 (so
    // "3.0" is refused), 3.x adds 3.0; proxy-errors.txt: `config` given as an object instead
    // of a string → code 14 "failed parsing declarative configuration: ...".
    let (env, _config) = dbless(profile).await;
    let version = env.format_version().await;
    let v3 = version == "3.0";
    let e = expect(&env, "POST", "/config", Some(json!({ "_format_version": version, "services": [{ "name": "bad", "host": "x", "port": 99999 }] })), 400).await;
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
    let known = if v3 { "1.1, 2.1, 3.0" } else { "1.1, 2.1" };
    let mut refused = vec!["9.9"];
    if !v3 {
        refused.push("3.0");
    }
    for bad in refused {
        let e = expect(
            &env,
            "POST",
            "/config",
            Some(json!({ "_format_version": bad })),
            400,
        )
        .await;
        assert_eq!(
            e["fields"]["_format_version"],
            format!("expected one of: {known}"),
            "_format_version {bad}"
        );
    }
    let e = expect(
        &env,
        "POST",
        "/config",
        Some(json!({ "config": { "_format_version": version } })),
        400,
    )
    .await;
    assert_eq!(
        (e["code"].clone(), e["name"].clone()),
        (json!(14), json!("invalid declarative configuration"))
    );
    assert!(
        e["fields"]["error"]
            .as_str()
            .is_some_and(|m| m.starts_with("failed parsing declarative configuration: ")),
        "{e}"
    );
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_config_errors_v28() {
    dbless_config_errors(Profile::DbLess28).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_config_errors_v3() {
    dbless_config_errors(Profile::DbLess3).await;
}

async fn dbless_hash_and_check_hash(profile: Profile) {
    // §2.6 configuration_hash: 32 zeros before the first config, 32 hex after; §3 / §8
    // check_hash=1 → 304 when identical. 2.8.5 hashes the raw `config` string (its md5 is
    // `/status` configuration_hash) and so only the string form can match: a JSON-object body
    // always loads (dbless.txt: POST /config?check_hash=1 with the same object → 201). 3.x
    // compares any form.
    let (env, _config) = dbless(profile).await;
    let version = env.format_version().await;
    let v3 = version == "3.0";
    let before = expect(&env, "GET", "/status", None, 200).await["configuration_hash"].clone();
    if env.is_standin() {
        assert_eq!(before, "0".repeat(32));
    }
    let text = doc(version, 100, 0, "127.0.0.1:19101", "127.0.0.1:19102").to_string();
    let body = json!({ "config": text });
    expect(&env, "POST", "/config", Some(body.clone()), 201).await;
    let hash = expect(&env, "GET", "/status", None, 200).await["configuration_hash"].clone();
    assert!(
        hash.as_str()
            .is_some_and(|h| h.len() == 32 && h != "0".repeat(32))
    );
    if !v3 {
        use md5::Digest;
        assert_eq!(hash, hex::encode(md5::Md5::digest(text.as_bytes())));
    }
    let r = admin(&env, "POST", "/config?check_hash=1", Some(body)).await;
    assert_eq!(r.status, 304);
    let object = doc(version, 100, 0, "127.0.0.1:19101", "127.0.0.1:19102");
    expect(&env, "POST", "/config", Some(object.clone()), 201).await;
    let r = admin(&env, "POST", "/config?check_hash=1", Some(object)).await;
    assert_eq!(r.status, if v3 { 304 } else { 201 }, "{}", r.text);
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_hash_and_check_hash_v28() {
    dbless_hash_and_check_hash(Profile::DbLess28).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_hash_and_check_hash_v3() {
    dbless_hash_and_check_hash(Profile::DbLess3).await;
}

async fn dbless_config_changes_are_live_at_once(profile: Profile) {
    // diffs dbless.proxy-switch: every /config change is live on the next request (3.x too:
    // 1–54 ms on the DB-less node).
    let (env, _config) = dbless(profile).await;
    let version = env.format_version().await;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let (b, g) = (env.target_for(&blue), env.target_for(&green));
    expect(
        &env,
        "POST",
        "/config",
        Some(doc(version, 100, 0, &b, &g)),
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
        Some(doc(version, 0, 100, &b, &g)),
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
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_config_changes_are_live_at_once_v28() {
    dbless_config_changes_are_live_at_once(Profile::DbLess28).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_config_changes_are_live_at_once_v3() {
    dbless_config_changes_are_live_at_once(Profile::DbLess3).await;
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_dbless)),
    ignore = "needs a DB-less Kong: set KONG_DBLESS_ADMIN_URL"
)]
async fn dbless_yaml_body_is_415() {
    // §3 / §8: a raw application/x-yaml body → 415 (nginx's page) on 2.8.5.
    let (env, _config) = dbless(Profile::DbLess28).await;
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
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: fault injection and the request log"
)]
async fn faults_and_request_log() {
    // Stand-in only: injected 5xx, dropped connections and delays on the Admin API, and the
    // ordered log of writes (method, path, query, body).
    let env = Env::start_with(StandIn::builder().profile(Profile::V3)).await;
    let standin = env.standin().expect("not ignored, so this is the stand-in");
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
#[cfg_attr(real_kong, ignore = "needs the stand-in: its seed option")]
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
    assert!(env.is_standin(), "not ignored, so this is the stand-in");
    expect(&env, "GET", "/services/seeded", None, 200).await;
    let r = proxy(&env, "/seeded").await;
    assert_eq!(
        (r.status, r.json["message"].clone()),
        (503, json!("failure to get a peer from the ring-balancer"))
    );
}
