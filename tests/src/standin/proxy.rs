//! The proxy: routes a request with the node's router snapshot, balances it over the upstream's
//! targets (or resolves a plain host), forwards it and relays the answer, with Kong's error
//! statuses and bodies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::KongVersion;
use super::http::{self as h, Body, HangUp};
use super::node::{Node, Outcome};

/// Hop-by-hop headers never forwarded.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

struct ProxyCtx {
    version: KongVersion,
    request_id: String,
    started: Instant,
}

impl ProxyCtx {
    fn server(&self) -> String {
        match self.version {
            KongVersion::V28 => "kong/2.8.5".into(),
            KongVersion::V3 => "kong/3.9.3".into(),
        }
    }

    /// Kong's JSON error (`{"message": ..}`, plus `request_id` on 3.x, pretty-printed there).
    fn error(&self, status: StatusCode, message: &str) -> Response<Body> {
        let mut resp = match self.version {
            KongVersion::V28 => h::json(status, &json!({ "message": message })),
            KongVersion::V3 => {
                let text = format!(
                    "{{\n  \"message\":{},\n  \"request_id\":\"{}\"\n}}",
                    Value::String(message.to_owned()),
                    self.request_id
                );
                let mut r = h::raw(status, "application/json; charset=utf-8", text);
                *r.status_mut() = status;
                r
            }
        };
        self.decorate_error(&mut resp);
        resp
    }

    /// nginx-level failures (502/504) come as text/plain.
    fn text_error(&self, status: StatusCode, message: &str) -> Response<Body> {
        let text = match self.version {
            KongVersion::V28 => message.to_owned(),
            KongVersion::V3 => format!("{message}\nrequest_id: {}", self.request_id),
        };
        let mut resp = h::raw(status, "text/plain; charset=utf-8", text);
        self.decorate_error(&mut resp);
        resp
    }

    fn decorate_error(&self, resp: &mut Response<Body>) {
        let latency = self.started.elapsed().as_millis().to_string();
        let headers = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.server()) {
            headers.insert(hyper::header::SERVER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&latency) {
            headers.insert("x-kong-response-latency", v);
        }
        if self.version == KongVersion::V3
            && let Ok(v) = HeaderValue::from_str(&self.request_id)
        {
            headers.insert("x-kong-request-id", v);
        }
        h::nginx_reason(resp);
    }
}

/// One resolved upstream peer for an attempt.
struct Peer {
    sock: SocketAddr,
    host_header: String,
    health_key: Option<String>,
}

/// Handles one proxied request on `node`.
pub(crate) async fn handle(
    node: Arc<Node>,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Result<Response<Body>, HangUp> {
    let ctx = ProxyCtx {
        version: node.shared.profile.version(),
        request_id: format!("{:032x}", rand::random::<u128>()),
        started: Instant::now(),
    };
    let (parts, body) = req.into_parts();
    let host_header = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    let path = parts.uri.path().to_owned();
    let router = node.router();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(matched) = router.find(
        parts.method.as_str(),
        host_header.as_deref(),
        &path,
        &header,
    ) else {
        return Ok(ctx.error(StatusCode::NOT_FOUND, "no Route matched with those values"));
    };
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Err(HangUp);
    };
    let service = &matched.service;

    // Upstream path: service path + (stripped) request path.
    let rest = if matched.strip_path {
        &path[matched.matched_prefix.min(path.len())..]
    } else {
        path.as_str()
    };
    let upstream_path = join_paths(service["path"].as_str(), rest);
    let upstream_uri_path = match parts.uri.query() {
        Some(q) => format!("{upstream_path}?{q}"),
        None => upstream_path,
    };

    let service_host = service["host"].as_str().unwrap_or_default().to_owned();
    let service_port = service["port"].as_u64().unwrap_or(80).min(65535) as u16;
    let retries = service["retries"].as_u64().unwrap_or(5) as usize;
    let connect_timeout =
        Duration::from_millis(service["connect_timeout"].as_u64().unwrap_or(60000));
    let read_timeout = Duration::from_millis(service["read_timeout"].as_u64().unwrap_or(60000));

    // The balancer uses live data (3.x: not delayed by the router rebuild).
    let live = node.view().config;
    let upstream = live.upstream_by_name(&service_host).cloned();
    let balancer = match &upstream {
        Some(up) => {
            node.ensure_balancer(up["id"].as_str().unwrap_or_default());
            Some(node.balancer_view(&live, up).await)
        }
        None => None,
    };
    let direct = if balancer.is_none() {
        match node.resolve(&service_host).await {
            Ok(ips) => ips.first().copied(),
            Err(_) => {
                return Ok(ctx.error(StatusCode::SERVICE_UNAVAILABLE, "name resolution failed"));
            }
        }
    } else {
        None
    };

    let mut tried: Vec<String> = Vec::new();
    let mut last_failure = Outcome::TcpFailure;
    for _attempt in 0..=retries {
        let peer = match (&balancer, direct) {
            (Some(view), _) => {
                let Some(addr) = node.pick(view, &tried).or_else(|| {
                    // Every peer failed once: Kong retries over the ring again.
                    if tried.is_empty() {
                        None
                    } else {
                        node.pick(view, &[])
                    }
                }) else {
                    if tried.is_empty() {
                        return Ok(ctx.error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "failure to get a peer from the ring-balancer",
                        ));
                    }
                    break;
                };
                let target_host = view
                    .targets
                    .iter()
                    .find(|t| {
                        t.dns
                            .as_ref()
                            .is_ok_and(|(_, a)| a.iter().any(|x| x.key() == addr.key()))
                    })
                    .map(|t| t.host.clone())
                    .unwrap_or_else(|| addr.ip.clone());
                let host_header = match view.upstream["host_header"].as_str() {
                    Some(hh) => hh.to_owned(),
                    None if addr.port == 80 => target_host,
                    None => format!("{target_host}:{}", addr.port),
                };
                Peer {
                    sock: addr.sock,
                    host_header,
                    health_key: Some(addr.key()),
                }
            }
            (None, Some(ip)) => Peer {
                sock: SocketAddr::new(ip, service_port),
                host_header: if service_port == 80 {
                    service_host.clone()
                } else {
                    format!("{service_host}:{service_port}")
                },
                health_key: None,
            },
            (None, None) => {
                return Ok(ctx.error(StatusCode::SERVICE_UNAVAILABLE, "name resolution failed"));
            }
        };
        let forwarded_host = if matched.preserve_host {
            host_header
                .clone()
                .unwrap_or_else(|| peer.host_header.clone())
        } else {
            peer.host_header.clone()
        };
        let mut builder = Request::builder()
            .method(parts.method.clone())
            .uri(format!("http://{}{}", peer.sock, upstream_uri_path));
        for (name, value) in &parts.headers {
            if name == hyper::header::HOST || HOP.contains(&name.as_str()) {
                continue;
            }
            builder = builder.header(name, value);
        }
        builder = builder.header(hyper::header::HOST, forwarded_host);
        let client_ip = client.ip().to_string();
        builder = builder
            .header("x-real-ip", client_ip.as_str())
            .header("x-forwarded-for", client_ip.as_str())
            .header("x-forwarded-proto", "http")
            .header(
                "x-forwarded-host",
                host_header.as_deref().unwrap_or_default(),
            )
            .header("x-forwarded-path", path.as_str());
        if ctx.version == KongVersion::V3 {
            builder = builder.header("x-kong-request-id", ctx.request_id.as_str());
        }
        let Ok(request) = builder.body(Full::new(body.clone())) else {
            return Ok(ctx.text_error(
                StatusCode::BAD_GATEWAY,
                "An invalid response was received from the upstream server",
            ));
        };
        let sent = Instant::now();
        let outcome = tokio::time::timeout(
            connect_timeout.max(read_timeout),
            node.client.request(request),
        )
        .await;
        match outcome {
            Ok(Ok(resp)) => {
                let status = resp.status();
                let (mut rparts, rbody) = resp.into_parts();
                let bytes = match tokio::time::timeout(read_timeout, rbody.collect()).await {
                    Ok(Ok(b)) => b.to_bytes(),
                    Ok(Err(_)) => {
                        report(&node, &upstream, &peer, Outcome::TcpFailure);
                        return Ok(ctx.text_error(
                            StatusCode::BAD_GATEWAY,
                            "An invalid response was received from the upstream server",
                        ));
                    }
                    Err(_) => {
                        report(&node, &upstream, &peer, Outcome::Timeout);
                        return Ok(ctx.text_error(
                            StatusCode::GATEWAY_TIMEOUT,
                            "The upstream server is timing out",
                        ));
                    }
                };
                report(&node, &upstream, &peer, Outcome::Status(status.as_u16()));
                let upstream_latency = sent.elapsed().as_millis();
                for hop in HOP {
                    rparts.headers.remove(*hop);
                }
                let mut out = Response::from_parts(rparts, Full::new(bytes));
                let headers = out.headers_mut();
                let via = format!("1.1 {}", ctx.server());
                if let Ok(v) = HeaderValue::from_str(&via) {
                    headers.insert(hyper::header::VIA, v);
                }
                insert(
                    headers,
                    "x-kong-upstream-latency",
                    &upstream_latency.to_string(),
                );
                insert(headers, "x-kong-proxy-latency", "0");
                if ctx.version == KongVersion::V3 {
                    insert(headers, "x-kong-request-id", &ctx.request_id);
                }
                return Ok(out);
            }
            Ok(Err(_)) => {
                last_failure = Outcome::TcpFailure;
                report(&node, &upstream, &peer, Outcome::TcpFailure);
            }
            Err(_) => {
                last_failure = Outcome::Timeout;
                report(&node, &upstream, &peer, Outcome::Timeout);
            }
        }
        if let Some(key) = peer.health_key {
            tried.push(key);
        }
    }
    Ok(match last_failure {
        Outcome::Timeout => ctx.text_error(
            StatusCode::GATEWAY_TIMEOUT,
            "The upstream server is timing out",
        ),
        _ => ctx.text_error(
            StatusCode::BAD_GATEWAY,
            "An invalid response was received from the upstream server",
        ),
    })
}

fn insert(headers: &mut hyper::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

fn report(node: &Node, upstream: &Option<Value>, peer: &Peer, outcome: Outcome) {
    if let (Some(up), Some(key)) = (upstream, &peer.health_key) {
        node.report(up, key, outcome, false);
    }
}

/// Kong's `v0` path handling: service path + remaining request path.
fn join_paths(service_path: Option<&str>, rest: &str) -> String {
    let base = service_path.unwrap_or_default();
    if base.is_empty() {
        return if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
    }
    if rest.is_empty() {
        return base.to_owned();
    }
    match (base.ends_with('/'), rest.starts_with('/')) {
        (true, true) => format!("{base}{}", &rest[1..]),
        (false, false) => format!("{base}/{rest}"),
        _ => format!("{base}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::join_paths;

    #[test]
    fn paths_join_like_kong_v0() {
        assert_eq!(join_paths(None, ""), "/");
        assert_eq!(join_paths(None, "/x"), "/x");
        assert_eq!(join_paths(Some("/base"), "/x"), "/base/x");
        assert_eq!(join_paths(Some("/base"), ""), "/base");
        assert_eq!(join_paths(Some("/base/"), "/x"), "/base/x");
    }
}
