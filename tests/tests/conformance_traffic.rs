//! Conformance: proxy, balancing, health (active, passive, manual), liveness per version,
//! several nodes. Each test cites the fact it checks.

mod common;

use std::time::Duration;

use common::{admin, app, color, env, expect, is_v3, proxy, raw_get, wait_proxy};
use kong_switch_tests::backend::BackendMode;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::json;

async fn health_checks_off_shape(env: &Env) {
    // §2.3 /health shape (REAL-2.8.5 transcript): target + health + data{host, port, dns,
    // nodeWeight, weight{total, available, unavailable}, addresses[]}; node_id; checks off →
    // HEALTHCHECKS_OFF. balancer_health per diffs health.off.balancer-health.
    let name = Env::unique("hs");
    let up = format!("{name}-up");
    expect(env, "POST", "/upstreams", Some(json!({ "name": up })), 201).await;
    expect(
        env,
        "POST",
        &format!("/upstreams/{up}/targets"),
        Some(json!({ "target": "127.0.0.1:19001", "weight": 7 })),
        201,
    )
    .await;
    let ok = Env::wait_until(Duration::from_secs(8), || async {
        admin(env, "GET", &format!("/upstreams/{up}/health"), None)
            .await
            .json["data"][0]
            .get("health")
            .is_some()
    })
    .await;
    assert!(ok.is_some(), "balancer never appeared");
    let h = expect(env, "GET", &format!("/upstreams/{up}/health"), None, 200).await;
    let t = &h["data"][0];
    assert_eq!(t["health"], "HEALTHCHECKS_OFF");
    assert_eq!(t["target"], "127.0.0.1:19001");
    assert_eq!(t["data"]["host"], "127.0.0.1");
    assert_eq!(t["data"]["port"], 19001);
    assert_eq!(t["data"]["dns"], "A");
    assert_eq!(t["data"]["nodeWeight"], 7);
    assert_eq!(
        t["data"]["weight"],
        json!({ "total": 7, "available": 7, "unavailable": 0 })
    );
    assert_eq!(t["data"]["addresses"][0]["health"], "HEALTHCHECKS_OFF");
    assert_eq!(t["data"]["addresses"][0]["ip"], "127.0.0.1");
    assert!(h["next"].is_null());
    let root = expect(env, "GET", "/", None, 200).await;
    assert_eq!(h["node_id"], root["node_id"]);
    let bh = expect(
        env,
        "GET",
        &format!("/upstreams/{up}/health?balancer_health=1"),
        None,
        200,
    )
    .await;
    assert_eq!(bh["data"]["health"], "HEALTHCHECKS_OFF");
    if is_v3(env).await {
        assert_eq!(bh["data"]["balancer_health"], "HEALTHY");
        assert!(bh["data"]["details"].is_object());
    } else {
        assert_eq!(
            bh["data"].as_object().map(|o| o.len()),
            Some(2),
            "{{id, health}} only"
        );
    }
}

#[tokio::test]
async fn health_checks_off_shape_v28() {
    health_checks_off_shape(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn health_checks_off_shape_v3() {
    health_checks_off_shape(&env(Profile::V3).await).await;
}

async fn manual_health_methods(env: &Env) {
    // diffs health.post-health-methods / no-checker: 2.8 POST (checks off → 400 "no
    // healthchecker found for <u>"), PUT → 405; 3.x PUT, POST → 405. Missing target → 404.
    let up = Env::unique("mh-up");
    expect(env, "POST", "/upstreams", Some(json!({ "name": up })), 201).await;
    expect(
        env,
        "POST",
        &format!("/upstreams/{up}/targets"),
        Some(json!({ "target": "127.0.0.1:19001" })),
        201,
    )
    .await;
    let base = format!("/upstreams/{up}/targets/127.0.0.1:19001/unhealthy");
    let (right, wrong) = if is_v3(env).await {
        ("PUT", "POST")
    } else {
        ("POST", "PUT")
    };
    let r = admin(env, wrong, &base, None).await;
    assert_eq!(
        (r.status, r.json.clone()),
        (405, json!({ "message": "Method not allowed" }))
    );
    let r = admin(
        env,
        right,
        &format!("/upstreams/{up}/targets/127.0.0.1:19999/healthy"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    if !is_v3(env).await {
        let r = admin(env, right, &base, None).await;
        assert_eq!(
            (r.status, r.json.clone()),
            (
                400,
                json!({ "message": format!("no healthchecker found for {up}") })
            )
        );
    }
}

#[tokio::test]
async fn manual_health_methods_v28() {
    manual_health_methods(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn manual_health_methods_v3() {
    manual_health_methods(&env(Profile::V3).await).await;
}

async fn manual_mark_takes_target_out(env: &Env) {
    // diffs health.passive.manual-toggle(-put): with passive checks on, the manual mark makes the
    // target UNHEALTHY within ms and the proxy stops using it; healthy brings it back.
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let name = Env::unique("mm");
    let passive = json!({ "healthchecks": { "passive": { "unhealthy": { "http_failures": 5 } } } });
    let path = app(
        env,
        &name,
        &[(env.target_for(&blue), 100), (env.target_for(&green), 100)],
        Some(passive),
    )
    .await;
    let method = if is_v3(env).await { "PUT" } else { "POST" };
    let mark = format!(
        "/upstreams/{name}-up/targets/{}/unhealthy",
        env.target_for(&blue)
    );
    let r = admin(env, method, &mark, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let h = expect(
        env,
        "GET",
        &format!("/upstreams/{name}-up/health"),
        None,
        200,
    )
    .await;
    let blue_health = h["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["target"] == env.target_for(&blue).as_str())
        .map(|t| t["health"].clone());
    assert_eq!(blue_health, Some(json!("UNHEALTHY")));
    for _ in 0..10 {
        assert_eq!(color(&proxy(env, &path).await).as_deref(), Some("green"));
    }
    let r = admin(env, method, &mark.replace("/unhealthy", "/healthy"), None).await;
    assert_eq!(r.status, 204);
    let mut colors = std::collections::HashSet::new();
    for _ in 0..10 {
        colors.extend(color(&proxy(env, &path).await));
    }
    assert_eq!(colors.len(), 2);
}

#[tokio::test]
async fn manual_mark_takes_target_out_v28() {
    manual_mark_takes_target_out(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn manual_mark_takes_target_out_v3() {
    manual_mark_takes_target_out(&env(Profile::V3).await).await;
}

async fn dns_error_target(env: &Env) {
    // §2.3 / §8 / proxy-errors.txt (both versions): a target whose host does not resolve →
    // DNS_ERROR, addresses is {} and dns carries the resolver error. diffs health.dns-error: on
    // 3.x only once the balancer exists (~5 s; /health lists the bare target before).
    let up = Env::unique("dns-up");
    expect(env, "POST", "/upstreams", Some(json!({ "name": up })), 201).await;
    expect(
        env,
        "POST",
        &format!("/upstreams/{up}/targets"),
        Some(json!({ "target": "no-such-host.invalid:80" })),
        201,
    )
    .await;
    let path = format!("/upstreams/{up}/health");
    let balanced = Env::wait_until(Duration::from_secs(12), || async {
        admin(env, "GET", &path, None).await.json["data"][0]
            .get("health")
            .is_some()
    })
    .await;
    assert!(balanced.is_some(), "the balancer never appeared");
    let h = expect(env, "GET", &path, None, 200).await;
    assert_eq!(h["data"][0]["health"], "DNS_ERROR", "{h}");
    assert_eq!(h["data"][0]["data"]["addresses"], json!({}));
    assert_eq!(
        h["data"][0]["data"]["weight"],
        json!({ "total": 0, "available": 0, "unavailable": 0 })
    );
    assert!(
        h["data"][0]["data"]["dns"]
            .as_str()
            .is_some_and(|s| s.contains("name error"))
    );
}

#[tokio::test]
async fn dns_error_target_v28() {
    dns_error_target(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn dns_error_target_v3() {
    dns_error_target(&env(Profile::V3).await).await;
}

async fn empty_upstream_health(env: &Env) {
    // proxy-errors.txt: an upstream with no targets has `{"data":[],"next":null,"node_id":..}`
    // on both versions; diffs health.off.empty-upstream: `?balancer_health=1` is
    // {id, health: HEALTHCHECKS_OFF} on 2.8.5; 3.9.3 (once the balancer exists, ~5 s) adds
    // balancer_health UNHEALTHY and empty details.
    let up = Env::unique("empty-up");
    let created = expect(env, "POST", "/upstreams", Some(json!({ "name": up })), 201).await;
    let h = expect(env, "GET", &format!("/upstreams/{up}/health"), None, 200).await;
    assert_eq!(
        (h["data"].clone(), h["next"].clone()),
        (json!([]), json!(null))
    );
    assert!(h["node_id"].is_string());
    let path = format!("/upstreams/{up}/health?balancer_health=1");
    let balanced = Env::wait_until(Duration::from_secs(12), || async {
        admin(env, "GET", &path, None)
            .await
            .json
            .get("data")
            .is_some()
    })
    .await;
    assert!(balanced.is_some(), "the balancer never appeared");
    let bh = expect(env, "GET", &path, None, 200).await["data"].clone();
    assert_eq!(bh["id"], created["id"]);
    assert_eq!(bh["health"], "HEALTHCHECKS_OFF");
    if is_v3(env).await {
        assert_eq!(bh["balancer_health"], "UNHEALTHY", "{bh}");
        let details = &bh["details"];
        assert_eq!(details["healthy"], false, "{bh}");
        assert_eq!(
            details["weight"],
            json!({ "total": 0, "available": 0, "unavailable": 0 })
        );
        let hosts_empty = details["hosts"].as_object().is_some_and(|o| o.is_empty())
            || details["hosts"].as_array().is_some_and(|a| a.is_empty());
        assert!(hosts_empty, "{bh}");
    } else {
        assert_eq!(
            bh.as_object().map(|o| o.len()),
            Some(2),
            "{{id, health}}: {bh}"
        );
    }
}

#[tokio::test]
async fn empty_upstream_health_v28() {
    empty_upstream_health(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn empty_upstream_health_v3() {
    empty_upstream_health(&env(Profile::V3).await).await;
}

async fn weight_zero_health(env: &Env) {
    // §8 / diffs health.active.weight0-target: checks on → weight-0 target HEALTHY on 2.8,
    // HEALTHCHECKS_OFF on 3.x.
    let up = Env::unique("w0-up");
    let body = json!({ "name": up, "healthchecks": { "passive": { "unhealthy": { "http_failures": 1 } } } });
    expect(env, "POST", "/upstreams", Some(body), 201).await;
    expect(
        env,
        "POST",
        &format!("/upstreams/{up}/targets"),
        Some(json!({ "target": "127.0.0.1:19001", "weight": 0 })),
        201,
    )
    .await;
    let path = format!("/upstreams/{up}/health");
    Env::wait_until(Duration::from_secs(8), || async {
        !admin(env, "GET", &path, None).await.json["data"][0]["health"].is_null()
    })
    .await;
    let health = admin(env, "GET", &path, None).await.json["data"][0]["health"].clone();
    let expected = if is_v3(env).await {
        "HEALTHCHECKS_OFF"
    } else {
        "HEALTHY"
    };
    assert_eq!(health, expected);
}

#[tokio::test]
async fn weight_zero_health_v28() {
    weight_zero_health(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn weight_zero_health_v3() {
    weight_zero_health(&env(Profile::V3).await).await;
}

async fn dead_weight_zero_target_health(env: &Env) {
    // Issue 11 finding 4 (real 2.8.5) / diffs health.active.weight0-target: with active checks
    // on, a weight-0 target whose backend died still reads HEALTHY on 2.8 (its last check's
    // state: weight-0 targets get no new checks); 3.x says HEALTHCHECKS_OFF. A weight > 0
    // target beside it is checked and turns UNHEALTHY.
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let idle = env.backend("idle", "v3").await;
    let name = Env::unique("w0dead");
    let checks = json!({ "healthchecks": { "active": {
        "http_path": "/health", "timeout": 1,
        "healthy": { "interval": 0.2, "successes": 1 },
        "unhealthy": { "interval": 0.2, "http_failures": 1, "tcp_failures": 1, "timeouts": 1 } } } });
    app(
        env,
        &name,
        &[
            (env.target_for(&blue), 100),
            (env.target_for(&green), 100),
            (env.target_for(&idle), 0),
        ],
        Some(checks),
    )
    .await;
    let health_of = |h: &serde_json::Value, target: &str| {
        h["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["target"] == target)
            .map(|t| t["health"].clone())
    };
    let path = format!("/upstreams/{name}-up/health");
    green.set_mode(BackendMode::Down).await.ok();
    idle.set_mode(BackendMode::Down).await.ok();
    let green_down = Env::wait_until(Duration::from_secs(8), || async {
        health_of(
            &admin(env, "GET", &path, None).await.json,
            &env.target_for(&green),
        ) == Some(json!("UNHEALTHY"))
    })
    .await;
    assert!(
        green_down.is_some(),
        "the weight-100 target is checked and goes UNHEALTHY"
    );
    let h = admin(env, "GET", &path, None).await.json;
    let expected = if is_v3(env).await {
        "HEALTHCHECKS_OFF"
    } else {
        "HEALTHY"
    };
    assert_eq!(
        health_of(&h, &env.target_for(&idle)),
        Some(json!(expected)),
        "{h:#}"
    );
}

#[tokio::test]
async fn dead_weight_zero_target_health_v28() {
    dead_weight_zero_target_health(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn dead_weight_zero_target_health_v3() {
    dead_weight_zero_target_health(&env(Profile::V3).await).await;
}

async fn no_route_404(env: &Env) {
    // §4 / diffs proxy.no-route-404: 404 {"message":"no Route matched with those values"};
    // 3.x adds request_id and X-Kong-Request-Id.
    let r = proxy(env, &format!("/{}", Env::unique("nothing-here"))).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["message"], "no Route matched with those values");
    if is_v3(env).await {
        let id = r.json["request_id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(id.len(), 32);
        assert_eq!(r.header("x-kong-request-id"), Some(id.as_str()));
    } else {
        assert_eq!(
            r.json,
            json!({ "message": "no Route matched with those values" })
        );
    }
}

#[tokio::test]
async fn no_route_404_v28() {
    no_route_404(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn no_route_404_v3() {
    no_route_404(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn weighted_balancing_90_10() {
    // §4 weighted round-robin: 90/10 weights → 90% ± 3% of 1,000 proxied requests to blue;
    // diffs proxy.weighted-80-20 shares hold on both versions.
    let env = env(Profile::V3).await;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let name = Env::unique("w90");
    let path = app(
        &env,
        &name,
        &[(env.target_for(&blue), 90), (env.target_for(&green), 10)],
        None,
    )
    .await;
    let mut blues = 0;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let client = env.client().clone();
        let url = format!("{}{path}", env.proxy_url());
        set.spawn(async move {
            let r = client.get(url).send().await.ok()?;
            r.headers()
                .get("x-color")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        if set.len() >= 16
            && let Some(Ok(Some(c))) = set.join_next().await
        {
            blues += usize::from(c == "blue");
        }
    }
    while let Some(res) = set.join_next().await {
        if let Ok(Some(c)) = res {
            blues += usize::from(c == "blue");
        }
    }
    assert!((870..=930).contains(&blues), "blue got {blues} of 1000");
}

/// Asserts a proxy error Kong made itself, as curl's and reqwest's `Accept: */*` gets it
/// (proxy-errors.txt of each version): 2.8.5 compact JSON `{"message":..}` with no trailing
/// newline; 3.x the pretty template with `request_id` (also in `X-Kong-Request-Id`), no trailing
/// newline.
fn assert_kong_error(r: &common::Resp, v3: bool, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    if v3 {
        let id = r.json["request_id"].as_str().unwrap_or_default().to_owned();
        assert!(
            id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "request_id {id:?}"
        );
        assert_eq!(
            r.text,
            format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{id}\"\n}}")
        );
        assert_eq!(r.header("x-kong-request-id"), Some(id.as_str()));
    } else {
        assert_eq!(r.text, format!("{{\"message\":\"{message}\"}}"));
    }
}

async fn ring_balancer_failures_503(env: &Env) {
    // §1.3 / diffs proxy.all-weights-zero-503 and proxy.no-targets-503: all weights zero →
    // 503 "failure to get a peer from the ring-balancer"; an upstream with no targets → same
    // 503 (3.x: + request_id, proxy-errors.txt).
    let v3 = is_v3(env).await;
    let blue = env.backend("blue", "v1").await;
    let name = Env::unique("zero");
    let path = app(env, &name, &[(env.target_for(&blue), 100)], None).await;
    expect(
        env,
        "PATCH",
        &format!("/upstreams/{name}-up/targets/{}", env.target_for(&blue)),
        Some(json!({ "weight": 0 })),
        200,
    )
    .await;
    let r = wait_proxy(env, &path, Duration::from_secs(8), |r| r.status == 503).await;
    assert!(r.is_some());
    let message = "failure to get a peer from the ring-balancer";
    assert_kong_error(&proxy(env, &path).await, v3, 503, message);
    expect(
        env,
        "DELETE",
        &format!("/upstreams/{name}-up/targets/{}", env.target_for(&blue)),
        None,
        204,
    )
    .await;
    assert_kong_error(&proxy(env, &path).await, v3, 503, message);
}

#[tokio::test]
async fn ring_balancer_failures_503_v28() {
    ring_balancer_failures_503(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn ring_balancer_failures_503_v3() {
    ring_balancer_failures_503(&env(Profile::V3).await).await;
}

async fn name_resolution_failed_503(env: &Env) {
    // proxy-errors.txt / diffs proxy.name-resolution-failed-503: service host neither an
    // upstream nor resolvable → 503 "name resolution failed" (3.x: + request_id).
    let v3 = is_v3(env).await;
    let name = Env::unique("dns");
    expect(
        env,
        "POST",
        "/services",
        Some(json!({ "name": name, "host": "no-such-upstream.invalid" })),
        201,
    )
    .await;
    expect(
        env,
        "POST",
        &format!("/services/{name}/routes"),
        Some(json!({ "paths": [format!("/{name}")] })),
        201,
    )
    .await;
    let r = wait_proxy(env, &format!("/{name}"), Duration::from_secs(12), |r| {
        r.status != 404
    })
    .await;
    assert!(r.is_some());
    let r = proxy(env, &format!("/{name}")).await;
    assert_kong_error(&r, v3, 503, "name resolution failed");
}

#[tokio::test]
async fn name_resolution_failed_503_v28() {
    name_resolution_failed_503(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn name_resolution_failed_503_v3() {
    name_resolution_failed_503(&env(Profile::V3).await).await;
}

/// The 502 body Kong's error handler renders for each `Accept` (proxy-errors.txt of each
/// version): (Accept header, content type, body with `{id}` standing for the request id).
fn dead_backend_bodies(v3: bool) -> Vec<(Option<&'static str>, &'static str, String)> {
    let m = "An invalid response was received from the upstream server";
    if v3 {
        vec![
            (
                None,
                "text/plain; charset=utf-8",
                format!("{m}\nrequest_id: {{id}}\n"),
            ),
            (
                Some("*/*"),
                "application/json; charset=utf-8",
                format!("{{\n  \"message\":\"{m}\",\n  \"request_id\":\"{{id}}\"\n}}"),
            ),
            (
                Some("application/json"),
                "application/json; charset=utf-8",
                format!("{{\n  \"message\":\"{m}\",\n  \"request_id\":\"{{id}}\"\n}}"),
            ),
            (
                Some("text/html"),
                "text/html; charset=utf-8",
                format!(
                    "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    \
                     <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    \
                     <p>{m}.</p>\n    <p>request_id: {{id}}</p>\n  </body>\n</html>\n"
                ),
            ),
        ]
    } else {
        vec![
            (None, "text/plain; charset=utf-8", format!("{m}\n")),
            (
                Some("*/*"),
                "application/json; charset=utf-8",
                format!("{{\n  \"message\":\"{m}\"\n}}"),
            ),
            (
                Some("application/json"),
                "application/json; charset=utf-8",
                format!("{{\n  \"message\":\"{m}\"\n}}"),
            ),
            (
                Some("text/html"),
                "text/html; charset=utf-8",
                format!(
                    "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    \
                     <title>Kong Error</title>\n  </head>\n  <body>\n    <h1>Kong Error</h1>\n    \
                     <p>{m}.</p>\n  </body>\n</html>\n"
                ),
            ),
        ]
    }
}

async fn dead_backend_502_follows_accept(env: &Env) {
    // §8 / diffs proxy.backend-down-502 / proxy-errors.txt: a dead backend with no health
    // checks → 502 "An invalid response was received from the upstream server", its format
    // picked from Accept: none → text/plain, */* or application/json → JSON, text/html → HTML;
    // 3.x adds the request id to every format.
    let v3 = is_v3(env).await;
    let blue = env.backend("blue", "v1").await;
    let name = Env::unique("dead");
    let path = app(env, &name, &[(env.target_for(&blue), 100)], None).await;
    blue.set_mode(BackendMode::Down).await.ok();
    for (accept, content_type, template) in dead_backend_bodies(v3) {
        let r = raw_get(&format!("{}{path}", env.proxy_url()), accept).await;
        assert_eq!(r.status, 502, "Accept {accept:?}: {}", r.text);
        assert_eq!(
            r.header("content-type"),
            Some(content_type),
            "Accept {accept:?}"
        );
        let id = r.header("x-kong-request-id").unwrap_or_default().to_owned();
        assert_eq!(id.len(), if v3 { 32 } else { 0 }, "X-Kong-Request-Id");
        assert_eq!(r.text, template.replace("{id}", &id), "Accept {accept:?}");
    }
}

#[tokio::test]
async fn dead_backend_502_follows_accept_v28() {
    dead_backend_502_follows_accept(&env(Profile::V28).await).await;
}

#[tokio::test]
async fn dead_backend_502_follows_accept_v3() {
    dead_backend_502_follows_accept(&env(Profile::V3).await).await;
}

#[tokio::test]
async fn forwarding_strip_path_method_query_body() {
    // §1.5 strip_path default true; service path prefix (url shorthand); method, query, body and
    // headers forwarded; backend status and headers relayed (proxy.strip-path).
    let env = env(Profile::V3).await;
    let blue = env.backend("blue", "v1").await;
    let name = Env::unique("fwd");
    let url = format!("http://{}/base", env.target_for(&blue));
    expect(
        &env,
        "POST",
        "/services",
        Some(json!({ "name": name, "url": url })),
        201,
    )
    .await;
    expect(
        &env,
        "POST",
        &format!("/services/{name}/routes"),
        Some(json!({ "paths": [format!("/{name}")] })),
        201,
    )
    .await;
    wait_proxy(&env, &format!("/{name}/x"), Duration::from_secs(8), |r| {
        r.status == 200
    })
    .await;
    let r = env
        .client()
        .post(format!("{}/{name}/x?q=1", env.proxy_url()))
        .body("hello")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.headers().get("x-color").and_then(|v| v.to_str().ok()),
        Some("blue")
    );
    assert!(r.headers().get("via").is_some());
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(body["path"], "/base/x");
}

#[tokio::test]
async fn active_health_check_marks_unhealthy_and_recovers() {
    // §6 / §8 active checks (interval, successes, http_failures, tcp_failures): a failing
    // backend becomes UNHEALTHY and gets no traffic; back to HEALTHY after it recovers.
    let env = env(Profile::V3).await;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let name = Env::unique("active");
    let checks = json!({ "healthchecks": { "active": {
        "http_path": "/health", "timeout": 1,
        "healthy": { "interval": 0.1, "successes": 1 },
        "unhealthy": { "interval": 0.1, "http_failures": 1, "tcp_failures": 1, "timeouts": 1 } } } });
    let path = app(
        &env,
        &name,
        &[(env.target_for(&blue), 100), (env.target_for(&green), 100)],
        Some(checks),
    )
    .await;
    green.set_mode(BackendMode::Failing).await.ok();
    let green_target = env.target_for(&green);
    let health_of = |h: &serde_json::Value| {
        h["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["target"] == green_target.as_str())
            .map(|t| t["health"].clone())
    };
    let down = Env::wait_until(Duration::from_secs(5), || async {
        health_of(
            &admin(&env, "GET", &format!("/upstreams/{name}-up/health"), None)
                .await
                .json,
        ) == Some(json!("UNHEALTHY"))
    })
    .await;
    assert!(down.is_some(), "green never became UNHEALTHY");
    for _ in 0..10 {
        assert_eq!(color(&proxy(&env, &path).await).as_deref(), Some("blue"));
    }
    green.set_mode(BackendMode::Healthy).await.ok();
    let up = Env::wait_until(Duration::from_secs(5), || async {
        health_of(
            &admin(&env, "GET", &format!("/upstreams/{name}-up/health"), None)
                .await
                .json,
        ) == Some(json!("HEALTHY"))
    })
    .await;
    assert!(up.is_some(), "green never recovered");
}

#[tokio::test]
async fn all_targets_unhealthy_503() {
    // §8: all targets failing active checks → proxy 503 failure to get a peer.
    let env = env(Profile::V28).await;
    let blue = env.backend("blue", "v1").await;
    let name = Env::unique("allbad");
    let checks = json!({ "healthchecks": { "active": { "healthy": { "interval": 0.1, "successes": 1 },
        "unhealthy": { "interval": 0.1, "http_failures": 1, "tcp_failures": 1 } } } });
    let path = app(&env, &name, &[(env.target_for(&blue), 100)], Some(checks)).await;
    blue.set_mode(BackendMode::Down).await.ok();
    let r = wait_proxy(&env, &path, Duration::from_secs(5), |r| r.status == 503).await;
    assert!(r.is_some());
    assert_eq!(
        proxy(&env, &path).await.json["message"],
        "failure to get a peer from the ring-balancer"
    );
}

#[tokio::test]
async fn passive_checks_from_traffic() {
    // §1.2 passive checks: proxied 500s count as http_failures; at the threshold the target
    // turns UNHEALTHY (circuit breaker) and the proxy answers from the other target.
    let env = env(Profile::V3).await;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let name = Env::unique("passive");
    let checks = json!({ "healthchecks": { "passive": { "unhealthy": { "http_failures": 2 } } } });
    let path = app(
        &env,
        &name,
        &[(env.target_for(&blue), 100), (env.target_for(&green), 100)],
        Some(checks),
    )
    .await;
    green.set_mode(BackendMode::Failing).await.ok();
    for _ in 0..8 {
        proxy(&env, &path).await;
    }
    for _ in 0..6 {
        let r = proxy(&env, &path).await;
        assert_eq!((r.status, color(&r).as_deref()), (200, Some("blue")));
    }
}

#[tokio::test]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: a shortened router delay (real Kong: 5 s, router_is_strict_on_28 and the e2e switch tests cover it)"
)]
async fn router_delay_v3_is_observed() {
    // §6/§7: on 3.x a service host change reaches the proxy only at the next router rebuild
    // (worker_state_update_frequency, shortened knob here); blue answers meanwhile; target
    // weight changes apply at once.
    let delay = Duration::from_millis(800);
    let env = Env::start_with(StandIn::builder().profile(Profile::V3).router_delay(delay)).await;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let name = Env::unique("rd");
    let path = app(&env, &name, &[(env.target_for(&blue), 100)], None).await;
    let green_up = format!("{name}-green");
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": green_up })),
        201,
    )
    .await;
    expect(
        &env,
        "POST",
        &format!("/upstreams/{green_up}/targets"),
        Some(json!({ "target": env.target_for(&green) })),
        201,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(850)).await;
    expect(
        &env,
        "PATCH",
        &format!("/services/{name}"),
        Some(json!({ "host": green_up })),
        200,
    )
    .await;
    let first = proxy(&env, &path).await;
    assert_eq!(
        color(&first).as_deref(),
        Some("blue"),
        "3.x: not on the next request"
    );
    let switched = wait_proxy(&env, &path, Duration::from_secs(3), |r| {
        color(r).as_deref() == Some("green")
    })
    .await;
    let took = switched.unwrap_or_else(|| panic!("never switched"));
    assert!(took <= delay + Duration::from_millis(300), "took {took:?}");
    // Balancer changes are immediate on 3.x.
    expect(
        &env,
        "POST",
        &format!("/upstreams/{green_up}/targets"),
        Some(json!({ "target": env.target_for(&blue), "weight": 100 })),
        201,
    )
    .await;
    expect(
        &env,
        "PATCH",
        &format!("/upstreams/{green_up}/targets/{}", env.target_for(&green)),
        Some(json!({ "weight": 0 })),
        200,
    )
    .await;
    assert_eq!(color(&proxy(&env, &path).await).as_deref(), Some("blue"));
}

#[tokio::test]
async fn router_is_strict_on_28() {
    // §7 / traffic.txt: on 2.8 a service host PATCH is live on the next request.
    let env = env(Profile::V28).await;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let name = Env::unique("strict");
    let path = app(&env, &name, &[(env.target_for(&blue), 100)], None).await;
    let green_up = format!("{name}-green");
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": green_up })),
        201,
    )
    .await;
    expect(
        &env,
        "POST",
        &format!("/upstreams/{green_up}/targets"),
        Some(json!({ "target": env.target_for(&green) })),
        201,
    )
    .await;
    expect(
        &env,
        "PATCH",
        &format!("/services/{name}"),
        Some(json!({ "host": green_up })),
        200,
    )
    .await;
    if env.is_standin() {
        assert_eq!(color(&proxy(&env, &path).await).as_deref(), Some("green"));
    } else {
        // A real 3.x Kong needs up to worker_state_update_frequency (§6).
        let limit = if is_v3(&env).await { 12 } else { 2 };
        let switched = wait_proxy(&env, &path, Duration::from_secs(limit), |r| {
            color(r).as_deref() == Some("green")
        })
        .await;
        assert!(switched.is_some());
    }
}

#[tokio::test]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: a lengthened balancer delay (dns_error_target_v3 waits through the real one)"
)]
async fn new_upstream_has_no_balancer_on_3x() {
    // §9 / diffs health.off.shape: on 3.x a new upstream has no balancer for a while: /health
    // lists bare targets and PUT .../unhealthy answers 400 "Upstream <u> has no balancer".
    let env = Env::start_with(
        StandIn::builder()
            .profile(Profile::V3)
            .router_delay(Duration::from_millis(200))
            .balancer_delay(Duration::from_millis(1500)),
    )
    .await;
    assert!(env.is_standin(), "not ignored, so this is the stand-in");
    let up = Env::unique("nb-up");
    let body = json!({ "name": up, "healthchecks": { "passive": { "unhealthy": { "http_failures": 1 } } } });
    expect(&env, "POST", "/upstreams", Some(body), 201).await;
    expect(
        &env,
        "POST",
        &format!("/upstreams/{up}/targets"),
        Some(json!({ "target": "127.0.0.1:19001" })),
        201,
    )
    .await;
    let h = expect(&env, "GET", &format!("/upstreams/{up}/health"), None, 200).await;
    assert!(
        h["data"][0].get("health").is_none(),
        "bare target expected: {h}"
    );
    let r = admin(
        &env,
        "PUT",
        &format!("/upstreams/{up}/targets/127.0.0.1:19001/unhealthy"),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json.clone()),
        (
            400,
            json!({ "message": format!("Upstream {up} has no balancer") })
        )
    );
    let ready = Env::wait_until(Duration::from_secs(4), || async {
        admin(&env, "GET", &format!("/upstreams/{up}/health"), None)
            .await
            .json["data"][0]
            .get("health")
            .is_some()
    })
    .await;
    assert!(ready.is_some());
}

#[tokio::test]
#[cfg_attr(
    all(real_kong, not(real_node2)),
    ignore = "needs a second node on the same database: set KONG_NODE2_ADMIN_URL and KONG_NODE2_PROXY_URL"
)]
async fn multinode_shared_db_and_propagation() {
    // multinode.txt / diffs multinode.*: Admin API reads of every node see the shared DB at
    // once; another node's proxy switches only after db_update_frequency (4.96–5.02 s on real
    // 2.8.5 and 3.9.3; the stand-in's is shortened to 0.7 s); node ids differ.
    let env = Env::start_with(
        StandIn::builder()
            .profile(Profile::V28)
            .nodes(2)
            .db_update_frequency(Duration::from_millis(700)),
    )
    .await;
    let node2 = env
        .node2()
        .expect("not ignored, so a second node is configured")
        .clone();
    let (node2_admin, node2_proxy) = (node2.admin, node2.proxy);
    let v3 = is_v3(&env).await;
    let root = expect(&env, "GET", "/", None, 200).await;
    let frequency = Duration::from_secs_f64(
        root["configuration"]["db_update_frequency"]
            .as_f64()
            .unwrap_or(5.0),
    );
    // Up to two polls for a new service and route, plus the 3.x router rebuild (diffs
    // multinode.new-upstream-propagation: tolerance [0,12] s on 2.8.5, [0,17] s on 3.9.3).
    let propagation =
        frequency * 2 + if v3 { frequency } else { Duration::ZERO } + Duration::from_secs(2);
    let get = |url: String| {
        let client = env.client().clone();
        async move {
            let r = client.get(url).send().await.ok()?;
            let status = r.status().as_u16();
            let color = r
                .headers()
                .get("x-color")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            Some((status, color, body))
        }
    };
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let name = Env::unique("mn");
    let path = app(&env, &name, &[(env.target_for(&blue), 100)], None).await;
    let seen = get(format!("{node2_admin}/upstreams/{name}-up")).await;
    assert_eq!(
        seen.map(|s| s.0),
        Some(200),
        "node 2 reads the shared DB at once"
    );
    let live2 = Env::wait_until(propagation, || async {
        get(format!("{node2_proxy}{path}"))
            .await
            .and_then(|s| s.1)
            .as_deref()
            == Some("blue")
    })
    .await;
    assert!(live2.is_some());
    let green_up = format!("{name}-green");
    expect(
        &env,
        "POST",
        "/upstreams",
        Some(json!({ "name": green_up })),
        201,
    )
    .await;
    expect(
        &env,
        "POST",
        &format!("/upstreams/{green_up}/targets"),
        Some(json!({ "target": env.target_for(&green) })),
        201,
    )
    .await;
    let patched = std::time::Instant::now();
    expect(
        &env,
        "PATCH",
        &format!("/services/{name}"),
        Some(json!({ "host": green_up })),
        200,
    )
    .await;
    assert_eq!(
        get(format!("{node2_proxy}{path}"))
            .await
            .and_then(|s| s.1)
            .as_deref(),
        Some("blue"),
        "node 2 not yet"
    );
    if v3 {
        // diffs multinode.service-host-propagation: node 1 switched after 2.4–4.9 s on 3.9.3.
        let local = wait_proxy(&env, &path, propagation, |r| {
            color(r).as_deref() == Some("green")
        })
        .await;
        assert!(local.is_some(), "node 1 never switched");
    } else {
        assert_eq!(
            color(&proxy(&env, &path).await).as_deref(),
            Some("green"),
            "node 1 at once (2.8)"
        );
    }
    let switched = Env::wait_until(propagation, || async {
        get(format!("{node2_proxy}{path}"))
            .await
            .and_then(|s| s.1)
            .as_deref()
            == Some("green")
    })
    .await;
    assert!(switched.is_some());
    assert!(
        patched.elapsed() >= frequency * 9 / 10,
        "{:?}",
        patched.elapsed()
    );
    let id1 = expect(&env, "GET", "/", None, 200).await["node_id"].clone();
    let id2 = get(format!("{node2_admin}/"))
        .await
        .map(|s| s.2["node_id"].clone());
    assert_ne!(Some(id1), id2);
}
