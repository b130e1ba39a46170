//! Helpers shared by the conformance and end-to-end suites (`e2e` holds the latter's). HTTP
//! only, so every suite also runs against a real Kong (`KONG_ADMIN_URL`).

#![allow(dead_code)]

pub mod e2e;

use std::time::Duration;

use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A stand-in of `profile` with short knobs (or the real Kong when configured).
pub async fn env(profile: Profile) -> Env {
    Env::start_with(
        StandIn::builder()
            .profile(profile)
            .router_delay(Duration::from_millis(200)),
    )
    .await
}

/// Whether the Kong under test is 3.x.
pub async fn is_v3(env: &Env) -> bool {
    env.version().await.major >= 3
}

async fn send(env: &Env, base: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    try_send(env, base, method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One request; a transport failure is an `Err` with its text.
async fn try_send(
    env: &Env,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Resp, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = env.client().request(method, format!("{base}{path}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Resp {
        status,
        headers,
        text,
        json,
    })
}

/// Admin API request.
pub async fn admin(env: &Env, method: &str, path: &str, body: Option<Value>) -> Resp {
    send(env, env.admin_url(), method, path, body).await
}

/// Admin API request with a raw body and content type.
pub async fn admin_raw(
    env: &Env,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let resp = env
        .client()
        .request(method, format!("{}{path}", env.admin_url()))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

/// Proxy request (GET).
pub async fn proxy(env: &Env, path: &str) -> Resp {
    send(env, env.proxy_url(), "GET", path, None).await
}

/// A proxy `GET` whose transport failure (a pooled connection the server just closed, say) is
/// an answer too: status 0, for loops that wait for a state and must not die of one reset.
pub async fn proxy_or_failure(env: &Env, path: &str) -> Resp {
    try_send(env, env.proxy_url(), "GET", path, None)
        .await
        .unwrap_or_else(|text| Resp {
            status: 0,
            headers: HeaderMap::new(),
            text,
            json: Value::Null,
        })
}

/// A proxy `GET` of `url` sent over a bare HTTP/1.1 connection, with exactly the `Accept`
/// header given (`None`: no `Accept` at all, which reqwest cannot send: it always adds
/// `Accept: */*`).
pub async fn raw_get(url: &str, accept: Option<&str>) -> Resp {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let host = parsed.host_str().unwrap_or("localhost").to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n",
        &parsed[url::Position::BeforePath..]
    );
    if let Some(accept) = accept {
        request.push_str(&format!("Accept: {accept}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(name, value);
        }
    }
    let body = body.to_owned();
    Resp {
        status,
        headers,
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        text: body,
    }
}

/// Admin request that must answer `status`; returns the JSON.
pub async fn expect(
    env: &Env,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let r = admin(env, method, path, body).await;
    assert_eq!(r.status, status, "{method} {path}: {}", r.text);
    r.json
}

/// Polls the proxy at `path` until `check` accepts the answer (or `timeout`).
pub async fn wait_proxy(
    env: &Env,
    path: &str,
    timeout: Duration,
    check: impl Fn(&Resp) -> bool,
) -> Option<Duration> {
    let start = std::time::Instant::now();
    loop {
        let r = proxy(env, path).await;
        if check(&r) {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `X-Color` of a proxied answer.
pub fn color(r: &Resp) -> Option<String> {
    r.header("x-color").map(str::to_owned)
}

/// Creates upstream `name` with `targets` (address, weight), a service `name` pointing at it and
/// a route on path `/<name>`; waits until the route is live. Returns the route path.
pub async fn app(
    env: &Env,
    name: &str,
    targets: &[(String, u32)],
    upstream_body: Option<Value>,
) -> String {
    let mut body = upstream_body.unwrap_or_else(|| serde_json::json!({}));
    body["name"] = Value::String(format!("{name}-up"));
    expect(env, "POST", "/upstreams", Some(body), 201).await;
    for (target, weight) in targets {
        expect(
            env,
            "POST",
            &format!("/upstreams/{name}-up/targets"),
            Some(serde_json::json!({ "target": target, "weight": weight })),
            201,
        )
        .await;
    }
    expect(
        env,
        "POST",
        "/services",
        Some(serde_json::json!({ "name": name, "host": format!("{name}-up") })),
        201,
    )
    .await;
    let path = format!("/{name}");
    expect(
        env,
        "POST",
        &format!("/services/{name}/routes"),
        Some(serde_json::json!({ "name": name, "paths": [path] })),
        201,
    )
    .await;
    let live = wait_proxy(env, &path, Duration::from_secs(12), |r| r.status != 404).await;
    assert!(live.is_some(), "route {path} never became live");
    path
}
