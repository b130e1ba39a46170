//! Conformance: Admin API entities, errors, pagination, tags, root info. Each test cites the
//! fact it checks (`kong-admin-api.md` §, `kong-version-diffs.md` row, or transcript).
//! Version-specific tests come in pairs (`_v28` / `_v3`); against a real Kong both run and
//! branch on the version reported by `GET /`.

mod common;

use std::time::Duration;

use common::{admin, admin_raw, env, expect, is_v3};
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::json;

fn hc_defaults() -> serde_json::Value {
    // §1.2 healthchecks defaults (REAL-2.8.5 POST /upstreams byte-for-byte).
    json!({
        "threshold": 0,
        "active": {
            "type": "http", "timeout": 1, "concurrency": 10, "http_path": "/", "https_sni": null,
            "https_verify_certificate": true,
            "healthy": { "interval": 0, "http_statuses": [200, 302], "successes": 0 },
            "unhealthy": { "interval": 0, "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                           "tcp_failures": 0, "timeouts": 0, "http_failures": 0 }
        },
        "passive": {
            "type": "http",
            "healthy": { "http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308], "successes": 0 },
            "unhealthy": { "http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0, "http_failures": 0 }
        }
    })
}

async fn root_info(env: &Env) {
    // §2.6 + transcripts GET /: version, Server kong/<v>, configuration{role, database,
    // db_update_frequency, worker_state_update_frequency, worker_consistency}; edition 3.6+ only.
    let r = admin(env, "GET", "/", None).await;
    assert_eq!(r.status, 200);
    let v = r.json["version"].as_str().unwrap_or_default().to_owned();
    assert_eq!(r.header("server"), Some(format!("kong/{v}").as_str()));
    assert_eq!(r.json["tagline"], "Welcome to kong");
    let c = &r.json["configuration"];
    assert_eq!(c["role"], "traditional");
    assert!(c["database"].is_string());
    assert!(c["db_update_frequency"].is_number());
    assert!(c["worker_state_update_frequency"].is_number());
    assert!(r.json["node_id"].as_str().is_some_and(|id| id.len() == 36));
    if is_v3(env).await {
        assert_eq!(r.json["edition"], "community");
        assert_eq!(c["worker_consistency"], "eventual");
    } else {
        assert!(r.json.get("edition").is_none());
        assert_eq!(c["worker_consistency"], "strict");
    }
}

#[tokio::test]
async fn root_info_v28() {
    root_info(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn root_info_v3() {
    root_info(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn default_timings_are_kongs() {
    // §3 defaults table: db_update_frequency 5, worker_state_update_frequency 5 (read from GET /,
    // never waited for).
    let env = Env::start_with(StandIn::builder().profile(Profile::V3)).await;
    let c = expect(&env, "GET", "/", None, 200).await["configuration"].clone();
    assert_eq!(c["db_update_frequency"], 5);
    assert_eq!(c["worker_state_update_frequency"], 5);
    assert_eq!(c["database"], "postgres");
}

#[tokio::test]
async fn status_shape() {
    // §2.6 GET /status: database.reachable, server counters; no configuration_hash off DB-less.
    let env = env(Profile::V3).await;
    let s = expect(&env, "GET", "/status", None, 200).await;
    assert_eq!(s["database"]["reachable"], true);
    assert!(s["server"]["total_requests"].is_number());
    assert!(s["memory"].is_object());
    if !env.is_dbless().await {
        assert!(s.get("configuration_hash").is_none());
    }
}

async fn upstream_defaults(env: &Env) {
    // §1.2 upstream defaults; diffs admin.upstream.create-defaults: 3.x adds U+ fields.
    let name = Env::unique("defaults.svc");
    let u = expect(
        env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name })),
        201,
    )
    .await;
    assert_eq!(u["name"], name.as_str());
    assert_eq!(u["algorithm"], "round-robin");
    assert_eq!(u["hash_on"], "none");
    assert_eq!(u["hash_fallback"], "none");
    assert_eq!(u["hash_on_cookie_path"], "/");
    assert_eq!(u["slots"], 10000);
    assert!(u["tags"].is_null() && u["host_header"].is_null() && u["client_certificate"].is_null());
    assert!(
        u["created_at"].is_i64(),
        "upstream created_at is integer seconds"
    );
    let mut expected = hc_defaults();
    if is_v3(env).await {
        expected["active"]["headers"] = json!(null);
        assert_eq!(u["use_srv_name"], false);
        assert!(u["hash_on_query_arg"].is_null() && u["hash_fallback_uri_capture"].is_null());
        assert!(u["updated_at"].is_i64());
    } else {
        assert!(u.get("updated_at").is_none());
        assert!(u.get("use_srv_name").is_none());
    }
    assert_eq!(u["healthchecks"], expected);
}

#[tokio::test]
async fn upstream_defaults_v28() {
    upstream_defaults(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn upstream_defaults_v3() {
    upstream_defaults(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn upstream_name_unique_409() {
    // §2.5 code 5 → 409; transcript POST /upstreams twice.
    let env = env(Profile::V3).await;
    let name = Env::unique("dup.svc");
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name })),
        201,
    )
    .await;
    let e = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name })),
        409,
    )
    .await;
    assert_eq!(e["code"], 5);
    assert_eq!(e["name"], "unique constraint violation");
    assert_eq!(
        e["message"],
        format!("UNIQUE violation detected on '{{name=\"{name}\"}}'")
    );
    assert_eq!(e["fields"]["name"], name.as_str());
}

#[tokio::test]
async fn upstream_name_must_be_hostname() {
    // §1.2 name: no IP, no port (transcript messages verbatim).
    let env = env(Profile::V3).await;
    let e = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": "bad.svc:80" })),
        400,
    )
    .await;
    assert_eq!(
        e["message"],
        "schema violation (name: Invalid name ('bad.svc:80'); no port allowed)"
    );
    let e = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": "10.0.0.1" })),
        400,
    )
    .await;
    assert_eq!(
        e["fields"]["name"],
        "Invalid name ('10.0.0.1'); no ip addresses allowed"
    );
    assert_eq!(e["code"], 2);
}

#[tokio::test]
async fn upstream_slots_range() {
    // §1.2 slots 10..65536; transcript "value should be between 10 and 65536".
    let env = env(Profile::V3).await;
    let name = Env::unique("slots.svc");
    let e = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name, "slots": 5 })),
        400,
    )
    .await;
    assert_eq!(
        e["message"],
        "schema violation (slots: value should be between 10 and 65536)"
    );
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name, "slots": 65536 })),
        201,
    )
    .await;
}

async fn algorithm_invalid(env: &Env) {
    // diffs admin.upstream.algorithm-invalid: 3.x lists `latency` too.
    let name = Env::unique("alg.svc");
    let e = expect(
        env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name, "algorithm": "bogus" })),
        400,
    )
    .await;
    let expected = if is_v3(env).await {
        "expected one of: consistent-hashing, least-connections, round-robin, latency"
    } else {
        "expected one of: consistent-hashing, least-connections, round-robin"
    };
    assert_eq!(e["fields"]["algorithm"], expected);
}

#[tokio::test]
async fn algorithm_invalid_v28() {
    algorithm_invalid(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn algorithm_invalid_v3() {
    algorithm_invalid(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn hash_on_header_requires_header_name() {
    // Transcript: 2 schema violations (@entity conditional + hash_on_header missing).
    let env = env(Profile::V28).await;
    let e = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": Env::unique("h.svc"), "hash_on": "header" })),
        400,
    )
    .await;
    assert_eq!(
        e["message"],
        "2 schema violations (failed conditional validation given value of field 'hash_on'; hash_on_header: required field missing)"
    );
    assert_eq!(
        e["fields"]["@entity"][0],
        "failed conditional validation given value of field 'hash_on'"
    );
}

#[tokio::test]
async fn hash_on_shorthand_trap() {
    // §1.2 shorthand trap, verified REAL-2.8.5: hash_on=ip → consistent-hashing; PATCH
    // hash_on=none → round-robin; least-connections nulls hash_on back to none.
    let env = env(Profile::V3).await;
    let name = Env::unique("hash.svc");
    let u = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": name, "hash_on": "ip" })),
        201,
    )
    .await;
    assert_eq!(u["algorithm"], "consistent-hashing");
    let u = expect(
        &env,
        "PATCH",
        &format!("/upstreams/{name}"),
        Some(json!({ "hash_on": "none" })),
        200,
    )
    .await;
    assert_eq!(u["algorithm"], "round-robin");
    expect(
        &env,
        "PATCH",
        &format!("/upstreams/{name}"),
        Some(json!({ "hash_on": "ip" })),
        200,
    )
    .await;
    let u = expect(
        &env,
        "PATCH",
        &format!("/upstreams/{name}"),
        Some(json!({ "algorithm": "least-connections" })),
        200,
    )
    .await;
    assert_eq!(u["algorithm"], "least-connections");
    assert_eq!(u["hash_on"], "none");
}

#[tokio::test]
async fn healthchecks_nested_validation() {
    // Transcript: nested record errors, Lua-table message text.
    let env = env(Profile::V28).await;
    let body = json!({ "name": Env::unique("hc.svc"), "healthchecks": { "active": { "healthy": { "successes": 300 } } } });
    let e = expect(&env, "POST", "/upstreams", Some(body), 400).await;
    assert_eq!(
        e["message"],
        "schema violation (healthchecks.active: {\n  healthy = {\n    successes = \"value should be between 0 and 255\"\n  }\n})"
    );
    assert_eq!(
        e["fields"]["healthchecks"]["active"]["healthy"]["successes"],
        "value should be between 0 and 255"
    );
}

#[tokio::test]
async fn put_upserts_with_200_and_replaces() {
    // §2.1 PUT = upsert, 200 on create, full replace (tags reset), URL name wins.
    let env = env(Profile::V3).await;
    let name = Env::unique("put.svc");
    let path = format!("/upstreams/{name}");
    let u = expect(
        &env,
        "PUT",
        &path,
        Some(json!({ "tags": ["bg", "green"] })),
        200,
    )
    .await;
    assert_eq!(u["tags"], json!(["bg", "green"]));
    let id = u["id"].clone();
    let u = expect(
        &env,
        "PUT",
        &path,
        Some(json!({ "name": "other.svc" })),
        200,
    )
    .await;
    assert_eq!(u["id"], id);
    assert_eq!(u["name"], name.as_str());
    assert!(u["tags"].is_null());
}

#[tokio::test]
async fn missing_entities_per_verb() {
    // §2.1: GET missing → plain 404; PATCH missing → 404 code 6; DELETE missing → 204.
    let env = env(Profile::V3).await;
    let name = Env::unique("nope.svc");
    let r = admin(&env, "GET", &format!("/upstreams/{name}"), None).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (404, json!({ "message": "Not found" }))
    );
    let e = expect(
        &env,
        "PATCH",
        &format!("/upstreams/{name}"),
        Some(json!({ "slots": 100 })),
        404,
    )
    .await;
    assert_eq!(e["code"], 6);
    assert_eq!(e["name"], "not found");
    assert_eq!(
        e["message"],
        format!("could not find the entity with '{{name=\"{name}\"}}'")
    );
    let r = admin(&env, "DELETE", &format!("/upstreams/{name}"), None).await;
    assert_eq!(r.status, 204);
    let r = admin(
        &env,
        "GET",
        "/upstreams/00000000-0000-0000-0000-000000000000",
        None,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn patch_merges_healthchecks() {
    // §1.2: nested PATCH of healthchecks merges sub-records.
    let env = env(Profile::V3).await;
    let name = Env::unique("merge.svc");
    let body =
        json!({ "name": name, "healthchecks": { "active": { "healthy": { "interval": 5 } } } });
    expect(&env, "POST", "/upstreams", Some(body), 201).await;
    let u = expect(
        &env,
        "PATCH",
        &format!("/upstreams/{name}"),
        Some(json!({ "healthchecks": { "passive": { "unhealthy": { "http_failures": 3 } } } })),
        200,
    )
    .await;
    assert_eq!(u["healthchecks"]["active"]["healthy"]["interval"], 5);
    assert_eq!(
        u["healthchecks"]["passive"]["unhealthy"]["http_failures"],
        3
    );
    assert_eq!(
        u["healthchecks"]["passive"]["unhealthy"]["http_statuses"],
        json!([429, 500, 503])
    );
}

#[tokio::test]
async fn service_defaults_and_url_shorthand() {
    // §1.4 service defaults; url shorthand (REAL-2.8.5 url=http://blue.svc:8080/base).
    let env = env(Profile::V28).await;
    let s = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": Env::unique("app"), "host": "blue.svc" })),
        201,
    )
    .await;
    assert_eq!(s["port"], 80);
    assert_eq!(s["protocol"], "http");
    assert_eq!(s["retries"], 5);
    assert_eq!(s["connect_timeout"], 60000);
    assert_eq!(s["read_timeout"], 60000);
    assert_eq!(s["write_timeout"], 60000);
    assert_eq!(s["enabled"], true);
    assert!(s["path"].is_null() && s["tags"].is_null() && s["tls_verify"].is_null());
    assert!(s["created_at"].is_i64() && s["updated_at"].is_i64());
    let s = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": Env::unique("app2"), "url": "http://blue.svc:8080/base" })),
        201,
    )
    .await;
    assert_eq!(
        (s["host"].clone(), s["port"].clone(), s["path"].clone()),
        (json!("blue.svc"), json!(8080), json!("/base"))
    );
}

#[tokio::test]
async fn service_validation_messages() {
    // Transcript: host required, utf8 name, protocol set, port range, path must start with /.
    let env = env(Profile::V28).await;
    let e = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": "app3" })),
        400,
    )
    .await;
    assert_eq!(
        e["message"],
        "schema violation (host: required field missing)"
    );
    let e = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": "bad name!", "host": "x" })),
        400,
    )
    .await;
    assert_eq!(
        e["fields"]["name"],
        "invalid value 'bad name!': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
    );
    let e = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": "p", "host": "x", "protocol": "ftp" })),
        400,
    )
    .await;
    assert_eq!(
        e["fields"]["protocol"],
        "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"
    );
    let e = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": "p", "host": "x", "port": 70000 })),
        400,
    )
    .await;
    assert_eq!(e["fields"]["port"], "value should be between 0 and 65535");
    let e = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": "p", "host": "x", "path": "nopath" })),
        400,
    )
    .await;
    assert_eq!(e["fields"]["path"], "should start with: /");
}

#[tokio::test]
async fn routes_defaults_and_entity_check() {
    // §1.5 route defaults (transcript POST /services/app/routes); route needs a criterion.
    let env = env(Profile::V28).await;
    let svc = Env::unique("rsvc");
    expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": svc, "host": "blue.svc" })),
        201,
    )
    .await;
    let r = expect(
        &env,
        "POST",
        &format!("/services/{svc}/routes"),
        Some(json!({ "name": Env::unique("r1"), "paths": ["/app"] })),
        201,
    )
    .await;
    assert_eq!(r["protocols"], json!(["http", "https"]));
    assert_eq!(r["strip_path"], true);
    assert_eq!(r["preserve_host"], false);
    assert_eq!(r["regex_priority"], 0);
    assert_eq!(r["path_handling"], "v0");
    assert_eq!(r["https_redirect_status_code"], 426);
    assert_eq!(r["request_buffering"], true);
    assert!(r["hosts"].is_null() && r["methods"].is_null() && r["destinations"].is_null());
    let e = expect(
        &env,
        "POST",
        &format!("/services/{svc}/routes"),
        Some(json!({ "name": Env::unique("r2") })),
        400,
    )
    .await;
    assert_eq!(
        e["message"],
        "schema violation (must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https')"
    );
    let listed = expect(&env, "GET", &format!("/services/{svc}/routes"), None, 200).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn route_service_reference_by_name_and_missing_fk() {
    // Transcript: POST /routes with service {"name"} accepted; unknown id → 400 code 4.
    let env = env(Profile::V3).await;
    let svc = Env::unique("fk");
    let s = expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": svc, "host": "blue.svc" })),
        201,
    )
    .await;
    let r = expect(
        &env,
        "POST",
        "/routes",
        Some(json!({ "paths": ["/x"], "service": { "name": svc } })),
        201,
    )
    .await;
    assert_eq!(r["service"]["id"], s["id"]);
    let e = expect(
        &env,
        "POST",
        "/routes",
        Some(
            json!({ "paths": ["/x"], "service": { "id": "00000000-0000-0000-0000-000000000000" } }),
        ),
        400,
    )
    .await;
    assert_eq!(e["code"], 4);
    assert_eq!(
        e["message"],
        "the foreign key '{id=\"00000000-0000-0000-0000-000000000000\"}' does not reference an existing 'services' entity."
    );
}

#[tokio::test]
async fn delete_service_referenced_by_routes() {
    // Transcript DELETE /services/app with routes → 400 code 4 @referenced_by.
    let env = env(Profile::V28).await;
    let svc = Env::unique("ref");
    expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": svc, "host": "blue.svc" })),
        201,
    )
    .await;
    expect(
        &env,
        "POST",
        &format!("/services/{svc}/routes"),
        Some(json!({ "paths": ["/r"] })),
        201,
    )
    .await;
    let e = expect(&env, "DELETE", &format!("/services/{svc}"), None, 400).await;
    assert_eq!(e["fields"]["@referenced_by"], "routes");
    assert_eq!(
        e["message"],
        "an existing 'routes' entity references this 'services' entity"
    );
}

async fn pagination(env: &Env) {
    // §2.4 + diffs admin.page.size-offset-next: 2.8 next has offset,tags; 3.x offset,size,tags.
    let tag = Env::unique("page");
    for _ in 0..3 {
        expect(
            env,
            "POST",
            "/upstreams",
            Some(json!({ "name": Env::unique("pg.svc"), "tags": [tag] })),
            201,
        )
        .await;
    }
    let page = expect(
        env,
        "GET",
        &format!("/upstreams?size=2&tags={tag}"),
        None,
        200,
    )
    .await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    let offset = page["offset"].as_str().unwrap_or_default().to_owned();
    let next = page["next"].as_str().unwrap_or_default().to_owned();
    assert!(
        next.starts_with(&format!("/upstreams?offset={offset}")),
        "{next}"
    );
    assert!(next.contains(&format!("tags={tag}")), "{next}");
    assert_eq!(next.contains("size=2"), is_v3(env).await, "{next}");
    let rest = expect(env, "GET", &next, None, 200).await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(1));
    assert!(rest["next"].is_null());
    assert!(rest.get("offset").is_none());
}

async fn tags_endpoint(env: &Env) {
    // §2.4 "GET /tags/{tag} lists entities of all kinds" (kong/api/routes/tags.lua): one row
    // {entity_name, entity_id, tag} per tagged entity, paged; next is /tags/{tag}?offset=….
    let tag = Env::unique("tagged");
    let up = expect(
        env,
        "POST",
        "/upstreams",
        Some(json!({ "name": Env::unique("tg.svc"), "tags": [tag, "other"] })),
        201,
    )
    .await;
    let name = up["name"].as_str().unwrap_or_default().to_owned();
    let target = expect(
        env,
        "POST",
        &format!("/upstreams/{name}/targets"),
        Some(json!({ "target": "127.0.0.1:19001", "tags": [tag] })),
        201,
    )
    .await;
    let service = expect(
        env,
        "POST",
        "/services",
        Some(json!({ "name": Env::unique("tg"), "host": name, "tags": [tag] })),
        201,
    )
    .await;
    let all = expect(env, "GET", &format!("/tags/{tag}"), None, 200).await;
    let mut rows: Vec<(String, String)> = all["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            assert_eq!(r["tag"], tag.as_str(), "{r}");
            (
                r["entity_name"].as_str().unwrap_or_default().to_owned(),
                r["entity_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    rows.sort();
    let mut want = vec![
        (
            "services".to_owned(),
            service["id"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "targets".to_owned(),
            target["id"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "upstreams".to_owned(),
            up["id"].as_str().unwrap_or_default().to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(rows, want);
    assert!(all["next"].is_null());
    let first = expect(env, "GET", &format!("/tags/{tag}?size=2"), None, 200).await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2));
    let next = first["next"].as_str().unwrap_or_default().to_owned();
    assert!(next.starts_with(&format!("/tags/{tag}?offset=")), "{next}");
    let rest = expect(env, "GET", &next, None, 200).await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(1));
    assert!(rest["next"].is_null());
}

#[tokio::test]
async fn tags_endpoint_v28() {
    tags_endpoint(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn tags_endpoint_v3() {
    tags_endpoint(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn pagination_v28() {
    pagination(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn pagination_v3() {
    pagination(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn page_size_and_offset_errors() {
    // Transcript: size 0/1001 → 400 code 9; §8 size=abc → "size must be a number";
    // bad offset → 400 code 7.
    let env = env(Profile::V28).await;
    for size in ["0", "1001"] {
        let e = expect(&env, "GET", &format!("/services?size={size}"), None, 400).await;
        assert_eq!(
            e,
            json!({ "name": "invalid size", "code": 9, "message": "size must be an integer between 1 and 1000" })
        );
    }
    let e = expect(&env, "GET", "/services?size=abc", None, 400).await;
    assert_eq!(e["message"], "size must be a number");
    let e = expect(&env, "GET", "/services?offset=garbage", None, 400).await;
    assert_eq!(
        e,
        json!({ "name": "invalid offset", "code": 7, "message": "'garbage' is not a valid offset: bad json encoding" })
    );
    expect(&env, "GET", "/services?size=1000", None, 200).await;
}

#[tokio::test]
async fn tag_filters_and_or_mixed() {
    // §2.4 tags: `,` = AND, `/` = OR, mixed → 400 code 11 (transcript bodies).
    let env = env(Profile::V3).await;
    let (a, b) = (Env::unique("ta"), Env::unique("tb"));
    let both = Env::unique("t1.svc");
    let only_a = Env::unique("t2.svc");
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": both, "tags": [a, b] })),
        201,
    )
    .await;
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": only_a, "tags": [a] })),
        201,
    )
    .await;
    let names = |v: &serde_json::Value| {
        let mut n: Vec<String> = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["name"].as_str().map(str::to_owned))
            .collect();
        n.sort();
        n
    };
    let and = expect(&env, "GET", &format!("/upstreams?tags={a},{b}"), None, 200).await;
    assert_eq!(names(&and), vec![both.clone()]);
    let or = expect(&env, "GET", &format!("/upstreams?tags={a}/{b}"), None, 200).await;
    let mut expected = vec![both, only_a];
    expected.sort();
    assert_eq!(names(&or), expected);
    let e = expect(
        &env,
        "GET",
        &format!("/upstreams?tags={a},{b}/c"),
        None,
        400,
    )
    .await;
    assert_eq!(
        e,
        json!({ "name": "invalid options", "options": { "tags": "invalid filter syntax" }, "code": 11, "message": "invalid option (tags: invalid filter syntax)" })
    );
}

async fn empty_tags(env: &Env) {
    // diffs admin.tags.invalid-filter: 2.8 → 500; 3.x → 400 code 11 "cannot be null".
    let r = admin(env, "GET", "/upstreams?tags=", None).await;
    if is_v3(env).await {
        assert_eq!(r.status, 400);
        assert_eq!(r.json["message"], "invalid option (tags: cannot be null)");
        assert_eq!(r.json["code"], 11);
    } else {
        assert_eq!(r.status, 500);
        assert_eq!(r.json, json!({ "message": "An unexpected error occurred" }));
    }
}

#[tokio::test]
async fn empty_tags_v28() {
    empty_tags(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn empty_tags_v3() {
    empty_tags(&env(Profile::V3).await).await;
}

async fn tag_characters(env: &Env) {
    // diffs admin.tags.invalid-tag-value: "bad tag" 400 on 2.8, 201 on 3.x; "a,b" 400 on both.
    let r = admin(
        env,
        "POST",
        "/upstreams",
        Some(json!({ "name": Env::unique("tag.svc"), "tags": ["bad tag"] })),
    )
    .await;
    if is_v3(env).await {
        assert_eq!(r.status, 201);
    } else {
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json["message"],
            "schema violation (tags.1: invalid tag 'bad tag': expected printable ascii (except `,` and `/`) or valid utf-8 sequences)"
        );
    }
    let r = admin(
        env,
        "POST",
        "/upstreams",
        Some(json!({ "name": Env::unique("tag.svc"), "tags": ["a,b"] })),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn tag_characters_v28() {
    tag_characters(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn tag_characters_v3() {
    tag_characters(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn unknown_path_wrong_method_bad_json() {
    // §2.1: unknown path 404, wrong method 405, malformed JSON 400 (transcript bodies).
    let env = env(Profile::V28).await;
    let r = admin(&env, "GET", "/nonexistent", None).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (404, json!({ "message": "Not found" }))
    );
    let r = admin(&env, "DELETE", "/upstreams", None).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (405, json!({ "message": "Method not allowed" }))
    );
    let r = admin_raw(
        &env,
        "POST",
        "/upstreams",
        "application/json",
        "{\"name\":\"json.svc\"",
    )
    .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (400, json!({ "message": "Cannot parse JSON body" }))
    );
}

#[tokio::test]
async fn unknown_field_is_a_schema_violation() {
    // §2.5 schema violation for an unknown field ("unknown field").
    let env = env(Profile::V3).await;
    let e = expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": Env::unique("u.svc"), "colour": "blue" })),
        400,
    )
    .await;
    assert_eq!(e["fields"]["colour"], "unknown field");
    assert_eq!(e["message"], "schema violation (colour: unknown field)");
}

#[tokio::test]
async fn form_urlencoded_bodies() {
    // §2.1 body formats: form-urlencoded accepted; diffs admin.target.weight-type: form strings
    // coerced.
    let env = env(Profile::V3).await;
    let name = Env::unique("form.svc");
    let r = admin_raw(
        &env,
        "POST",
        "/upstreams",
        "application/x-www-form-urlencoded",
        &format!("name={name}&slots=100"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["slots"], 100);
    let r = admin_raw(
        &env,
        "POST",
        &format!("/upstreams/{name}/targets"),
        "application/x-www-form-urlencoded",
        "target=127.0.0.1:19005&weight=10",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["weight"], 10);
}

#[tokio::test]
async fn oversized_body_is_refused_not_hung() {
    // Bad input: nginx client_max_body_size 10m on the Admin API → 413, never a hang.
    let env = env(Profile::V3).await;
    let big = "x".repeat(11 * 1024 * 1024);
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        admin_raw(&env, "POST", "/upstreams", "application/json", &big),
    )
    .await;
    let r = r.unwrap_or_else(|_| panic!("oversized body hung"));
    assert_eq!(r.status, 413);
}
