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
    /// The request's `Accept` header: Kong picks an error body's format from it.
    accept: Option<String>,
}

/// The format of a proxy error body, as Kong negotiates it from the request's `Accept` header
/// (`kong/tools/utils.lua` `get_mime_type` on 2.8; `kong/tools/http.lua` `get_response_type`
/// on 3.x). Transcripts: `kong-2.8.5/proxy-errors.txt`, `kong-3.9.3/proxy-errors.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorFormat {
    Json,
    Html,
    Xml,
    Plain,
}

impl ErrorFormat {
    /// No `Accept` header: `error_default_type` (default `text/plain`); otherwise the media type
    /// (3.x: the first one of highest `q`), `*/*` and unknown types giving JSON.
    fn negotiate(accept: Option<&str>, version: KongVersion) -> ErrorFormat {
        let Some(accept) = accept else {
            return ErrorFormat::Plain;
        };
        match version {
            // 2.8 reads the whole header as one media type.
            KongVersion::V28 => Self::of_media_type(accept),
            KongVersion::V3 => {
                let mut best = (0.0_f64, ErrorFormat::Json);
                for value in accept.split(',') {
                    let mut parts = value.split(';').map(str::trim);
                    let media = parts.next().unwrap_or_default();
                    if !media.contains('/') {
                        continue;
                    }
                    let q = parts
                        .find_map(|p| p.strip_prefix("q="))
                        .and_then(|q| q.trim().parse::<f64>().ok())
                        .unwrap_or(1.0);
                    if q > best.0 {
                        best = (q, Self::of_media_type(media));
                    }
                }
                best.1
            }
        }
    }

    fn of_media_type(media: &str) -> ErrorFormat {
        let media = media
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.split_once('/') {
            Some(("*", "*")) => ErrorFormat::Json,
            Some(("text", "*")) => ErrorFormat::Plain,
            Some(("application", "*")) => ErrorFormat::Json,
            Some(("text", "html")) => ErrorFormat::Html,
            Some(("text", "plain")) => ErrorFormat::Plain,
            Some(("application", "xml")) => ErrorFormat::Xml,
            _ => ErrorFormat::Json,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ErrorFormat::Json => "application/json; charset=utf-8",
            ErrorFormat::Html => "text/html; charset=utf-8",
            ErrorFormat::Xml => "application/xml; charset=utf-8",
            ErrorFormat::Plain => "text/plain; charset=utf-8",
        }
    }

    /// Kong's error template filled in (2.8.5 templates have no request id).
    fn render(self, version: KongVersion, message: &str, request_id: &str) -> String {
        match (version, self) {
            (KongVersion::V28, ErrorFormat::Json) => {
                format!("{{\n  \"message\":\"{message}\"\n}}")
            }
            (KongVersion::V28, ErrorFormat::Plain) => format!("{message}\n"),
            (KongVersion::V28, ErrorFormat::Xml) => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{message}</message>\n</error>\n"
            ),
            (KongVersion::V28, ErrorFormat::Html) => format!(
                "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Kong Error</title>\n  </head>\n  <body>\n    <h1>Kong Error</h1>\n    <p>{message}.</p>\n  </body>\n</html>\n"
            ),
            (KongVersion::V3, ErrorFormat::Json) => {
                format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{request_id}\"\n}}")
            }
            (KongVersion::V3, ErrorFormat::Plain) => {
                format!("{message}\nrequest_id: {request_id}\n")
            }
            (KongVersion::V3, ErrorFormat::Xml) => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{message}</message>\n  <requestid>{request_id}</requestid>\n</error>\n"
            ),
            (KongVersion::V3, ErrorFormat::Html) => format!(
                "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>{message}.</p>\n    <p>request_id: {request_id}</p>\n  </body>\n</html>\n"
            ),
        }
    }
}

impl ProxyCtx {
    fn server(&self) -> String {
        match self.version {
            KongVersion::V28 => "kong/2.8.5".into(),
            KongVersion::V3 => "kong/3.9.3".into(),
        }
    }

    /// An answer Kong makes itself (no route, no peer, name resolution): on 2.8
    /// `kong.response.exit` with a table, compact JSON whatever the `Accept`
    /// (`{"message":"name resolution failed"}`, 36 bytes); on 3.x `kong.response.error`,
    /// negotiated like [`ProxyCtx::upstream_error`] and carrying the request id.
    fn error(&self, status: StatusCode, message: &str) -> Response<Body> {
        let mut resp = match self.version {
            KongVersion::V28 => h::json(status, &json!({ "message": message })),
            KongVersion::V3 => self.negotiated(status, message),
        };
        self.decorate(&mut resp, false);
        resp
    }

    /// nginx-level failures of the upstream (502/504, Kong's `error_handlers.lua`): the body
    /// format follows the `Accept` header on both versions, with `Via` and the upstream/proxy
    /// latency headers (2.8.5 sends no `Server` header here).
    fn upstream_error(&self, status: StatusCode, message: &str) -> Response<Body> {
        let mut resp = self.negotiated(status, message);
        self.decorate(&mut resp, true);
        resp
    }

    fn negotiated(&self, status: StatusCode, message: &str) -> Response<Body> {
        let format = ErrorFormat::negotiate(self.accept.as_deref(), self.version);
        let body = format.render(self.version, message, &self.request_id);
        h::raw(status, format.content_type(), body)
    }

    fn decorate(&self, resp: &mut Response<Body>, upstream: bool) {
        let latency = self.started.elapsed().as_millis().to_string();
        let headers = resp.headers_mut();
        if upstream {
            let via = match self.version {
                KongVersion::V28 => self.server(),
                KongVersion::V3 => format!("1.1 {}", self.server()),
            };
            insert(headers, "via", &via);
            insert(headers, "x-kong-upstream-latency", "0");
            insert(headers, "x-kong-proxy-latency", &latency);
        } else {
            insert(headers, "x-kong-response-latency", &latency);
        }
        if !(upstream && self.version == KongVersion::V28) {
            insert(headers, "server", &self.server());
        }
        if self.version == KongVersion::V3 {
            insert(headers, "x-kong-request-id", &self.request_id);
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
        accept: req
            .headers()
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
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
            return Ok(ctx.upstream_error(
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
                        return Ok(ctx.upstream_error(
                            StatusCode::BAD_GATEWAY,
                            "An invalid response was received from the upstream server",
                        ));
                    }
                    Err(_) => {
                        report(&node, &upstream, &peer, Outcome::Timeout);
                        return Ok(ctx.upstream_error(
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
        Outcome::Timeout => ctx.upstream_error(
            StatusCode::GATEWAY_TIMEOUT,
            "The upstream server is timing out",
        ),
        _ => ctx.upstream_error(
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
    use super::{ErrorFormat, KongVersion, join_paths};

    #[test]
    fn error_format_follows_accept_like_kong() {
        // (Accept, 2.8.5, 3.x): proxy-errors.txt for none, */*, application/json and
        // text/html; Kong's get_mime_type / get_response_type for the rest.
        let cases = [
            (None, ErrorFormat::Plain, ErrorFormat::Plain),
            (Some("*/*"), ErrorFormat::Json, ErrorFormat::Json),
            (
                Some("application/json"),
                ErrorFormat::Json,
                ErrorFormat::Json,
            ),
            (Some("text/html"), ErrorFormat::Html, ErrorFormat::Html),
            (Some("text/plain"), ErrorFormat::Plain, ErrorFormat::Plain),
            (Some("text/*"), ErrorFormat::Plain, ErrorFormat::Plain),
            (Some("application/xml"), ErrorFormat::Xml, ErrorFormat::Xml),
            (Some("image/png"), ErrorFormat::Json, ErrorFormat::Json),
            // 2.8 reads the whole header as one type; 3.x picks the highest q.
            (
                Some("text/html;q=0.5, application/json"),
                ErrorFormat::Html,
                ErrorFormat::Json,
            ),
            (
                Some("text/html,application/xhtml+xml"),
                ErrorFormat::Json,
                ErrorFormat::Html,
            ),
        ];
        for (accept, v28, v3) in cases {
            assert_eq!(
                ErrorFormat::negotiate(accept, KongVersion::V28),
                v28,
                "{accept:?}"
            );
            assert_eq!(
                ErrorFormat::negotiate(accept, KongVersion::V3),
                v3,
                "{accept:?}"
            );
        }
    }

    #[test]
    fn error_bodies_match_the_transcripts_byte_for_byte() {
        // Content-Length in proxy-errors.txt: 2.8.5 JSON 75, text 58, HTML 220; 3.9.3 JSON 126,
        // text 103, HTML 266 (32-hex request id).
        let m = "An invalid response was received from the upstream server";
        let id = "6fbf931c37c3d04d4ca527756cd8aa02";
        let len = |f: ErrorFormat, v| f.render(v, m, id).len();
        assert_eq!(len(ErrorFormat::Json, KongVersion::V28), 75);
        assert_eq!(len(ErrorFormat::Plain, KongVersion::V28), 58);
        assert_eq!(len(ErrorFormat::Html, KongVersion::V28), 220);
        assert_eq!(len(ErrorFormat::Json, KongVersion::V3), 126);
        assert_eq!(len(ErrorFormat::Plain, KongVersion::V3), 103);
        assert_eq!(len(ErrorFormat::Html, KongVersion::V3), 266);
    }

    #[test]
    fn paths_join_like_kong_v0() {
        assert_eq!(join_paths(None, ""), "/");
        assert_eq!(join_paths(None, "/x"), "/x");
        assert_eq!(join_paths(Some("/base"), "/x"), "/base/x");
        assert_eq!(join_paths(Some("/base"), ""), "/base");
        assert_eq!(join_paths(Some("/base/"), "/x"), "/base/x");
    }
}
