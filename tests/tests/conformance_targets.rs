//! Conformance: targets (normalisation, validation, duplicates per version, listings,
//! update-only PUT, cascade), with the fact checked cited on each test.

mod common;

use common::{admin, env, expect, is_v3};
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::Profile;
use serde_json::json;

async fn upstream(env: &Env) -> String {
    let name = Env::unique("tg.svc");
    expect(
        env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name })),
        201,
    )
    .await;
    name
}

#[tokio::test]
async fn target_default_port_and_ipv6_expansion() {
    // §1.3 DAO format_target: default port 8000; IPv6 expanded + bracketed (REAL-2.8.5).
    let env = env(Profile::V28).await;
    let u = upstream(&env).await;
    let t = expect(
        &env,
        "POST",
        &format!("/upstreams/{u}/targets"),
        Some(json!({ "target": "127.0.0.1" })),
        201,
    )
    .await;
    assert_eq!(t["target"], "127.0.0.1:8000");
    assert_eq!(t["weight"], 100);
    assert!(t["tags"].is_null());
    let t = expect(
        &env,
        "POST",
        &format!("/upstreams/{u}/targets"),
        Some(json!({ "target": "[::1]:19003", "weight": 0 })),
        201,
    )
    .await;
    assert_eq!(
        t["target"],
        "[0000:0000:0000:0000:0000:0000:0000:0001]:19003"
    );
    assert_eq!(t["weight"], 0);
}

#[tokio::test]
async fn target_validation_messages() {
    // Transcript: weight 0..65535, integer only (JSON string refused), target required,
    // invalid host message of the DAO.
    let env = env(Profile::V28).await;
    let u = upstream(&env).await;
    let path = format!("/upstreams/{u}/targets");
    for weight in [json!(70000), json!(-1)] {
        let e = expect(
            &env,
            "POST",
            &path,
            Some(json!({ "target": "127.0.0.1:19001", "weight": weight })),
            400,
        )
        .await;
        assert_eq!(
            e["message"],
            "schema violation (weight: value should be between 0 and 65535)"
        );
    }
    for weight in [json!("10"), json!(1.5)] {
        let e = expect(
            &env,
            "POST",
            &path,
            Some(json!({ "target": "127.0.0.1:19005", "weight": weight })),
            400,
        )
        .await;
        assert_eq!(e["fields"]["weight"], "expected an integer");
    }
    let e = expect(&env, "POST", &path, Some(json!({ "weight": 10 })), 400).await;
    assert_eq!(
        e["message"],
        "schema violation (target: required field missing)"
    );
    let e = expect(
        &env,
        "POST",
        &path,
        Some(json!({ "target": "some invalid host" })),
        400,
    )
    .await;
    assert_eq!(
        e["fields"]["target"],
        "Invalid target; not a valid hostname or ip address"
    );
}

async fn duplicate_target(env: &Env) {
    // diffs admin.target.duplicate-post(-normalised): 2.8 → 200 + Deprecation: true, same id,
    // weight updated; 3.x → 409 code 5.
    let u = upstream(env).await;
    let path = format!("/upstreams/{u}/targets");
    let first = expect(
        env,
        "POST",
        &path,
        Some(json!({ "target": "127.0.0.1" })),
        201,
    )
    .await;
    let r = admin(
        env,
        "POST",
        &path,
        Some(json!({ "target": "127.0.0.1:8000", "weight": 50 })),
    )
    .await;
    if is_v3(env).await {
        assert_eq!(r.status, 409, "{}", r.text);
        assert_eq!(r.json["code"], 5);
        assert_eq!(r.json["name"], "unique constraint violation");
    } else {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("deprecation"), Some("true"));
        assert_eq!(r.json["id"], first["id"]);
        assert_eq!(r.json["weight"], 50);
        let list = expect(env, "GET", &path, None, 200).await;
        assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn duplicate_target_v28() {
    duplicate_target(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn duplicate_target_v3() {
    duplicate_target(&env(Profile::V3).await).await;
}

async fn target_on_missing_upstream(env: &Env) {
    // §8 / diffs admin.target.upstream-missing: 2.8 → 500; 3.x → 404.
    let r = admin(
        env,
        "POST",
        &format!("/upstreams/{}/targets", Env::unique("missing")),
        Some(json!({ "target": "127.0.0.1:1" })),
    )
    .await;
    if is_v3(env).await {
        assert_eq!(
            (r.status, r.json.clone()),
            (404, json!({ "message": "Not found" }))
        );
    } else {
        assert_eq!(
            (r.status, r.json.clone()),
            (500, json!({ "message": "An unexpected error occurred" }))
        );
    }
}

#[tokio::test]
async fn target_on_missing_upstream_v28() {
    target_on_missing_upstream(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn target_on_missing_upstream_v3() {
    target_on_missing_upstream(&env(Profile::V3).await).await;
}

async fn target_listing_order_all_and_paging(env: &Env) {
    // §1.3 weight-0 targets stay listed; §2.2 list newest first; targets/all; §2.4 integer
    // offsets (transcript ?size=1 → offset "1", next "/upstreams/blue.svc/targets?offset=1": a
    // nested collection's next carries neither size nor tags, on 3.9.3 too); §8 size=0 →
    // empty page with offset "0".
    let u = upstream(env).await;
    let path = format!("/upstreams/{u}/targets");
    for (target, weight) in [
        ("127.0.0.1:19001", 100),
        ("127.0.0.1:19002", 0),
        ("127.0.0.1:19003", 5),
    ] {
        expect(
            env,
            "POST",
            &path,
            Some(json!({ "target": target, "weight": weight })),
            201,
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let list = expect(env, "GET", &path, None, 200).await;
    let order: Vec<&str> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert_eq!(
        order,
        vec!["127.0.0.1:19003", "127.0.0.1:19002", "127.0.0.1:19001"]
    );
    let all = expect(env, "GET", &format!("{path}/all"), None, 200).await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(3));
    let page = expect(env, "GET", &format!("{path}?size=1"), None, 200).await;
    assert_eq!(page["offset"], "1");
    assert_eq!(page["next"], format!("{path}?offset=1"));
    assert_eq!(page["data"][0]["target"], "127.0.0.1:19003");
    if !is_v3(env).await {
        let page = expect(env, "GET", &format!("{path}?size=0"), None, 200).await;
        assert_eq!(page["data"], json!([]));
        assert_eq!(page["offset"], "0");
    }
}

#[tokio::test]
async fn target_listing_order_all_and_paging_v28() {
    target_listing_order_all_and_paging(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn target_listing_order_all_and_paging_v3() {
    target_listing_order_all_and_paging(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn target_lookup_by_address_and_id_not_normalised() {
    // §2.2 lookup by id or address; §8 lookup is not port-normalised (127.0.0.1 → 404).
    let env = env(Profile::V3).await;
    let u = upstream(&env).await;
    let t = expect(
        &env,
        "POST",
        &format!("/upstreams/{u}/targets"),
        Some(json!({ "target": "127.0.0.1" })),
        201,
    )
    .await;
    let by_addr = expect(
        &env,
        "GET",
        &format!("/upstreams/{u}/targets/127.0.0.1:8000"),
        None,
        200,
    )
    .await;
    assert_eq!(by_addr["id"], t["id"]);
    let id = t["id"].as_str().unwrap_or_default();
    expect(
        &env,
        "GET",
        &format!("/upstreams/{u}/targets/{id}"),
        None,
        200,
    )
    .await;
    let r = admin(
        &env,
        "GET",
        &format!("/upstreams/{u}/targets/127.0.0.1"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let other = upstream(&env).await;
    let r = admin(
        &env,
        "GET",
        &format!("/upstreams/{other}/targets/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 404, "a target of another upstream is not found");
}

#[tokio::test]
async fn target_put_patch_are_update_only() {
    // §2.2: PUT/PATCH update (200) existing targets (PUT keeps the fields it does not send),
    // 404 plain when absent; DELETE missing → 404 (unlike generic DELETE); PUT may change the
    // address and then keeps the weight.
    let env = env(Profile::V28).await;
    let u = upstream(&env).await;
    let base = format!("/upstreams/{u}/targets");
    expect(
        &env,
        "POST",
        &base,
        Some(json!({ "target": "127.0.0.1:19001", "weight": 50, "tags": ["keep"] })),
        201,
    )
    .await;
    let t = expect(
        &env,
        "PATCH",
        &format!("{base}/127.0.0.1:19001"),
        Some(json!({ "weight": 0 })),
        200,
    )
    .await;
    assert_eq!(t["weight"], 0);
    let t = expect(
        &env,
        "PUT",
        &format!("{base}/127.0.0.1:19001"),
        Some(json!({ "weight": 7 })),
        200,
    )
    .await;
    // PUT is an update like PATCH (kong/api/routes/upstreams.lua routes both to
    // update_target_cb): what is not sent is kept, not reset.
    assert_eq!(
        (t["weight"].clone(), t["target"].clone(), t["tags"].clone()),
        (json!(7), json!("127.0.0.1:19001"), json!(["keep"]))
    );
    let r = admin(
        &env,
        "PUT",
        &format!("{base}/127.0.0.1:19999"),
        Some(json!({ "weight": 7 })),
    )
    .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (404, json!({ "message": "Not found" }))
    );
    let e = expect(
        &env,
        "PATCH",
        &format!("{base}/127.0.0.1:19001"),
        Some(json!({ "weight": 65536 })),
        400,
    )
    .await;
    assert_eq!(e["fields"]["weight"], "value should be between 0 and 65535");
    let id = t["id"].as_str().unwrap_or_default().to_owned();
    let moved = expect(
        &env,
        "PUT",
        &format!("{base}/{id}"),
        Some(json!({ "target": "127.0.0.1:19002" })),
        200,
    )
    .await;
    assert_eq!(
        (moved["target"].clone(), moved["weight"].clone()),
        (json!("127.0.0.1:19002"), json!(7))
    );
    assert_eq!(
        admin(&env, "GET", &format!("{base}/127.0.0.1:19001"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        admin(&env, "DELETE", &format!("{base}/127.0.0.1:19999"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        admin(&env, "DELETE", &format!("{base}/{id}"), None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn deleting_upstream_cascades_to_targets() {
    // §1.3 upstream foreign key on_delete = cascade.
    let env = env(Profile::V3).await;
    let u = upstream(&env).await;
    let t = expect(
        &env,
        "POST",
        &format!("/upstreams/{u}/targets"),
        Some(json!({ "target": "127.0.0.1:1" })),
        201,
    )
    .await;
    expect(&env, "DELETE", &format!("/upstreams/{u}"), None, 204).await;
    expect(
        &env,
        "PUT",
        &format!("/upstreams/{u}"),
        Some(json!({})),
        200,
    )
    .await;
    let list = expect(&env, "GET", &format!("/upstreams/{u}/targets"), None, 200).await;
    assert_eq!(list["data"], json!([]));
    let id = t["id"].as_str().unwrap_or_default();
    assert_eq!(
        admin(&env, "GET", &format!("/upstreams/{u}/targets/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn targets_collection_routes() {
    // §2.2 table: GET /targets → 404; PUT/PATCH/DELETE on the collection → 405.
    let env = env(Profile::V28).await;
    let u = upstream(&env).await;
    assert_eq!(
        admin(&env, "GET", "/targets", None).await.json,
        json!({ "message": "Not found" })
    );
    for method in ["PUT", "PATCH", "DELETE"] {
        let r = admin(&env, method, &format!("/upstreams/{u}/targets"), None).await;
        assert_eq!(
            (r.status, r.json.clone()),
            (405, json!({ "message": "Method not allowed" })),
            "{method}"
        );
    }
}

async fn target_timestamps(env: &Env) {
    // §1.1 auto_timestamp_ms: targets carry float seconds with 3 decimals; diffs T+ / U+:
    // updated_at on targets and upstreams only on 3.x.
    let u = upstream(env).await;
    let t = expect(
        env,
        "POST",
        &format!("/upstreams/{u}/targets"),
        Some(json!({ "target": "127.0.0.1:1" })),
        201,
    )
    .await;
    let created = t["created_at"].as_f64().unwrap_or_default();
    assert!(
        created > 1.6e9 && created < 1.0e11,
        "seconds, not milliseconds: {created}"
    );
    let decimals = t["created_at"]
        .to_string()
        .split('.')
        .nth(1)
        .map_or(0, str::len);
    assert!(decimals <= 3);
    assert_eq!(t.get("updated_at").is_some(), is_v3(env).await);
    assert_eq!(
        t["upstream"].as_object().map(|o| o.len()),
        Some(1),
        "upstream is {{id}} only"
    );
}

#[tokio::test]
async fn target_timestamps_v28() {
    target_timestamps(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn target_timestamps_v3() {
    target_timestamps(&env(Profile::V3).await).await;
}
