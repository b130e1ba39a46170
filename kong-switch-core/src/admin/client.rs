//! The one place that talks HTTP to the Admin API.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use url::Url;

use crate::model::{NameOrId, NodeInfo, NodeStatus, Route, Service};

use super::config::AdminConfig;
use super::error::{Error, KongError, Result, is_transient_status};
use super::handles::{Entities, ListParams, Targets, Upstreams};
use super::node::Node;
use super::{AdminRequest, Method};

/// Header carrying the RBAC token (Kong Enterprise `rbac_auth_header` default).
pub const ADMIN_TOKEN_HEADER: &str = "Kong-Admin-Token";

/// The `User-Agent` this client sends: `kong-switch/<version>`.
pub const USER_AGENT_VALUE: &str = concat!("kong-switch/", env!("CARGO_PKG_VERSION"));

/// Longest body excerpt kept in [`Error::UnexpectedBody`].
const SNIPPET_CHARS: usize = 160;

/// A Kong Admin API client: cheap to clone (one `Arc` inside), shared by all handles.
///
/// Every request goes through [`KongClient::execute`] (or its siblings); the per-entity
/// handles ([`KongClient::services`], [`KongClient::upstreams`], …) only build
/// [`AdminRequest`] values.
///
/// Entity writes made through the handles are refused locally with [`Error::ReadOnly`] when
/// the node is known not to take them. The node is known only after [`KongClient::node`] ran
/// once: the switch engine calls it first; the client never fetches `GET /` implicitly.
#[derive(Clone)]
pub struct KongClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: AdminConfig,
    http: reqwest::Client,
    node: OnceCell<Arc<Node>>,
}

impl fmt::Debug for KongClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KongClient")
            .field("config", &self.inner.config)
            .field("node", &self.inner.node.get().map(|n| (n.version, n.mode)))
            .finish()
    }
}

/// An Admin API answer as received: any status, headers, raw body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: bytes::Bytes,
}

impl RawResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `Content-Type` header, if readable.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }
}

impl KongClient {
    /// Builds the HTTP client (TLS settings, timeouts, default headers) from `config`.
    pub fn new(config: AdminConfig) -> Result<KongClient> {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        for (name, value) in &config.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(token) = &config.token {
            let mut value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                Error::invalid(
                    "token",
                    "the admin token contains characters not allowed in an HTTP header",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(ADMIN_TOKEN_HEADER, value);
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // The Admin API does not redirect; following one could send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(config.insecure_skip_verify);
        for cert in &config.ca_certs {
            builder = builder.add_root_certificate(cert.clone());
        }
        if let Some(identity) = &config.identity {
            builder = builder.identity(identity.clone());
        }
        let http = builder.build().map_err(|e| {
            Error::invalid(
                "tls",
                format!("could not set up the HTTP client: {}", e.without_url()),
            )
        })?;
        Ok(KongClient {
            inner: Arc::new(Inner {
                config,
                http,
                node: OnceCell::new(),
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &AdminConfig {
        &self.inner.config
    }

    /// The full URL of `req`: base URL + workspace (entity paths only) + path + query.
    pub fn url_for(&self, req: &AdminRequest) -> Url {
        let config = &self.inner.config;
        let mut url = config.base_url.clone();
        let prefix = config.base_url.path().trim_end_matches('/');
        let path = match config.workspace.as_deref() {
            Some(ws) if is_workspaced(&req.path) => {
                format!("{prefix}/{}{}", super::encode_segment(ws), req.path)
            }
            _ => format!("{prefix}{}", req.path),
        };
        url.set_path(&path);
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&req.query);
        }
        url
    }

    /// The one place that does I/O. Decodes a JSON body into `T`; a decode error names the
    /// JSON path (`data[2].weight`).
    pub async fn execute<T: DeserializeOwned>(&self, req: &AdminRequest) -> Result<T> {
        let raw = self.execute_raw(req).await?;
        if !raw.is_success() {
            return Err(self.error_from(req, &raw));
        }
        self.decode(req, &raw)
    }

    /// Like [`KongClient::execute`], but a Kong 404 is `Ok(None)`.
    pub async fn execute_opt<T: DeserializeOwned>(&self, req: &AdminRequest) -> Result<Option<T>> {
        match self.execute(req).await {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// For 204/empty answers (DELETE, health marks): any 2xx is success, the body is ignored.
    pub async fn execute_empty(&self, req: &AdminRequest) -> Result<()> {
        let raw = self.execute_raw(req).await?;
        if raw.is_success() {
            Ok(())
        } else {
            Err(self.error_from(req, &raw))
        }
    }

    /// Raw answer (status, headers, body) for callers that need headers (e.g. `Server`).
    ///
    /// Any HTTP status is `Ok`; only transport failures are errors. GETs are retried on
    /// transient failures per the [`RetryPolicy`](super::RetryPolicy); the last answer is
    /// returned.
    pub async fn execute_raw(&self, req: &AdminRequest) -> Result<RawResponse> {
        let policy = self.inner.config.retry;
        let retries = if req.method.is_read() {
            policy.max_retries
        } else {
            0
        };
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(req, attempt).await;
            let transient = match &outcome {
                Ok(raw) => is_transient_status(raw.status),
                Err(e) => e.is_transient(),
            };
            if !transient || attempt >= retries {
                return outcome;
            }
            let wait = policy.backoff(attempt);
            tracing::debug!(
                method = %req.method,
                path = %req.path,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying read after a transient failure"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, req: &AdminRequest, attempt: u32) -> Result<RawResponse> {
        let url = self.url_for(req);
        let mut builder = self
            .inner
            .http
            .request(req.method.as_reqwest(), url.clone());
        if let Some((user, password)) = &self.inner.config.basic_auth {
            builder = builder.basic_auth(user, password.as_ref().map(|p| p.expose_secret()));
        }
        if let Some(body) = &req.body {
            let bytes = serde_json::to_vec(body).map_err(|e| Error::Encode {
                method: req.method,
                path: req.path.clone(),
                message: e.to_string(),
            })?;
            builder = builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(bytes);
        }
        let started = Instant::now();
        let result = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(RawResponse {
                status,
                headers,
                body,
            })
        }
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(raw) => {
                tracing::debug!(
                    method = %req.method,
                    path = %req.path,
                    status = raw.status,
                    elapsed_ms,
                    attempt,
                    "kong admin request"
                );
                Ok(raw)
            }
            Err(e) => {
                tracing::debug!(
                    method = %req.method,
                    path = %req.path,
                    elapsed_ms,
                    attempt,
                    error = %e.without_url_ref(),
                    "kong admin request failed"
                );
                Err(self.transport_error(req, &url, e))
            }
        }
    }

    fn transport_error(&self, req: &AdminRequest, url: &Url, e: reqwest::Error) -> Error {
        let shown = display_url(url);
        if e.is_connect() {
            Error::Connect {
                method: req.method,
                url: shown,
                source: e.without_url(),
            }
        } else if e.is_timeout() {
            Error::Timeout {
                method: req.method,
                path: req.path.clone(),
                after: self.inner.config.request_timeout,
            }
        } else {
            Error::Transport {
                method: req.method,
                url: shown,
                source: e.without_url(),
            }
        }
    }

    fn decode<T: DeserializeOwned>(&self, req: &AdminRequest, raw: &RawResponse) -> Result<T> {
        if raw.body.iter().all(u8::is_ascii_whitespace) {
            return Err(self.unexpected_body(req, raw));
        }
        let mut de = serde_json::Deserializer::from_slice(&raw.body);
        let value: T = match serde_path_to_error::deserialize(&mut de) {
            Ok(value) => value,
            Err(e) if e.inner().classify() == serde_json::error::Category::Data => {
                return Err(Error::Decode {
                    method: req.method,
                    path: req.path.clone(),
                    json_path: e.path().to_string(),
                    message: e.inner().to_string(),
                });
            }
            // Syntax errors and premature end: HTML, plain text, truncated JSON.
            Err(_) => return Err(self.unexpected_body(req, raw)),
        };
        // Trailing garbage after the JSON value.
        de.end().map_err(|_| self.unexpected_body(req, raw))?;
        Ok(value)
    }

    fn error_from(&self, req: &AdminRequest, raw: &RawResponse) -> Error {
        #[derive(serde::Deserialize)]
        struct Body {
            message: Option<serde_json::Value>,
            name: Option<String>,
            code: Option<i64>,
            fields: Option<serde_json::Value>,
            options: Option<serde_json::Value>,
        }
        match serde_json::from_slice::<Body>(&raw.body) {
            Ok(body) => Error::Kong(Box::new(KongError {
                method: req.method,
                path: req.path.clone(),
                status: raw.status,
                message: body.message.map(|m| match m {
                    serde_json::Value::String(s) => self.redact(&s),
                    other => self.redact(&other.to_string()),
                }),
                name: body.name,
                code: body.code,
                fields: body.fields.or(body.options),
            })),
            Err(_) => self.unexpected_body(req, raw),
        }
    }

    fn unexpected_body(&self, req: &AdminRequest, raw: &RawResponse) -> Error {
        Error::UnexpectedBody {
            method: req.method,
            path: req.path.clone(),
            status: raw.status,
            content_type: raw.content_type().map(str::to_owned),
            snippet: self.redact(&snippet(&raw.body)),
        }
    }

    /// Removes the token from text Kong (or whatever answered) echoed back.
    fn redact(&self, text: &str) -> String {
        match &self.inner.config.token {
            Some(token) if !token.expose_secret().is_empty() => {
                text.replace(token.expose_secret(), "[redacted]")
            }
            _ => text.to_owned(),
        }
    }

    /// `GET /` (not cached).
    pub async fn node_info(&self) -> Result<NodeInfo> {
        self.execute(&Self::node_info_request()).await
    }

    /// The request behind [`KongClient::node_info`].
    pub fn node_info_request() -> AdminRequest {
        AdminRequest::get("/")
    }

    /// `GET /status`.
    pub async fn node_status(&self) -> Result<NodeStatus> {
        self.execute(&AdminRequest::get("/status")).await
    }

    /// `GET /` once, cached in the client: version, mode, capabilities.
    pub async fn node(&self) -> Result<Arc<Node>> {
        self.inner
            .node
            .get_or_try_init(|| async {
                self.node_info().await.map(|info| Arc::new(Node::new(info)))
            })
            .await
            .cloned()
    }

    /// The node, if [`KongClient::node`] already fetched it. Never does I/O.
    pub fn cached_node(&self) -> Option<Arc<Node>> {
        self.inner.node.get().cloned()
    }

    /// Refuses `req` locally if the cached node is known not to take entity writes.
    pub(crate) fn check_writable(&self, req: &AdminRequest) -> Result<()> {
        match self.inner.node.get() {
            Some(node) if req.is_write() && !node.writes_entities() => Err(Error::ReadOnly {
                mode: node.mode,
                request: format!("{} {}", req.method, req.path),
            }),
            _ => Ok(()),
        }
    }

    /// `/services`.
    pub fn services(&self) -> Entities<Service> {
        Entities::new(self.clone(), "/services".to_owned())
    }

    /// `/routes`.
    pub fn routes(&self) -> Entities<Route> {
        Entities::new(self.clone(), "/routes".to_owned())
    }

    /// `/upstreams`, plus health.
    pub fn upstreams(&self) -> Upstreams {
        Upstreams::new(self.clone())
    }

    /// `/upstreams/{u}/targets`, plus health marks.
    pub fn targets(&self, upstream: impl Into<NameOrId>) -> Targets {
        Targets::new(self.clone(), upstream.into())
    }

    /// `/services/{s}/routes` as a handle (reads only make sense here).
    pub fn routes_of(&self, service: &NameOrId) -> Entities<Route> {
        Entities::new(
            self.clone(),
            format!("/services/{}/routes", service.to_segment()),
        )
    }

    /// `GET /services/{s}/routes`, all pages.
    pub async fn routes_of_service(&self, service: &NameOrId) -> Result<Vec<Route>> {
        self.routes_of(service)
            .list_all(&ListParams::default())
            .await
    }

    /// DB-less: `GET /config`. Kong returns the configuration as a string in `config`; it is
    /// decoded as JSON when it is JSON, else the (YAML) text is returned as a JSON string.
    pub async fn get_config(&self) -> Result<serde_json::Value> {
        #[derive(serde::Deserialize)]
        struct ConfigAnswer {
            config: serde_json::Value,
        }
        let answer: ConfigAnswer = self.execute(&AdminRequest::get("/config")).await?;
        Ok(match answer.config {
            serde_json::Value::String(text) => {
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
            }
            other => other,
        })
    }

    /// DB-less: `POST /config` with a JSON declarative document (replaces the whole
    /// configuration).
    pub fn post_config_request(doc: &serde_json::Value) -> AdminRequest {
        AdminRequest::new(Method::Post, "/config").with_body(doc.clone())
    }

    /// Sends [`KongClient::post_config_request`]; returns Kong's answer (the loaded entities).
    pub async fn post_config(&self, doc: &serde_json::Value) -> Result<serde_json::Value> {
        self.execute(&Self::post_config_request(doc)).await
    }
}

/// Whether the workspace prefix applies: entity endpoints yes; `GET /`, `/status`, `/config`
/// and `/clustering` (node-level endpoints) no.
fn is_workspaced(path: &str) -> bool {
    let first = path
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    !matches!(first, "" | "status" | "config" | "clustering")
}

/// The URL as it may be shown: without user info (the client never puts any there; this is
/// a second guard).
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// A short, printable excerpt of a body.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut last_space = true;
    for c in text.chars() {
        if out.chars().count() >= SNIPPET_CHARS {
            out.push('…');
            break;
        }
        if c.is_whitespace() || c.is_control() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out.trim_end().to_owned()
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    /// The error text without the URL reqwest appends.
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), "<url>");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str, ws: Option<&str>) -> KongClient {
        let mut b = AdminConfig::builder(base).unwrap();
        if let Some(ws) = ws {
            b = b.workspace(ws);
        }
        KongClient::new(b.build().unwrap()).unwrap()
    }

    #[test]
    fn urls_join_prefix_workspace_path_and_query() {
        let c = client("https://gw/kong-admin/", Some("team-a"));
        let req = AdminRequest::get("/services/orders").with_query("tags", "a,b");
        assert_eq!(
            c.url_for(&req).as_str(),
            "https://gw/kong-admin/team-a/services/orders?tags=a%2Cb"
        );
        assert_eq!(
            c.url_for(&AdminRequest::get("/")).as_str(),
            "https://gw/kong-admin/"
        );
        assert_eq!(
            c.url_for(&AdminRequest::get("/status")).as_str(),
            "https://gw/kong-admin/status"
        );
    }

    #[test]
    fn encoded_segments_stay_encoded() {
        let c = client("http://localhost:8001", None);
        let req = AdminRequest::get(format!(
            "/upstreams/u/targets/{}",
            super::super::encode_segment("a b/c")
        ));
        assert_eq!(
            c.url_for(&req).as_str(),
            "http://localhost:8001/upstreams/u/targets/a%20b%2Fc"
        );
    }

    #[test]
    fn snippets_are_short_and_single_line() {
        let s = snippet(b"<html>\n  <body>\r\n\tBad Gateway</body></html>");
        assert_eq!(s, "<html> <body> Bad Gateway</body></html>");
        let long = "x".repeat(1000);
        assert!(snippet(long.as_bytes()).chars().count() <= SNIPPET_CHARS + 1);
    }

    #[test]
    fn node_level_paths_are_not_workspaced() {
        assert!(is_workspaced("/services"));
        assert!(is_workspaced("/upstreams/u/health"));
        assert!(!is_workspaced("/"));
        assert!(!is_workspaced("/status/ready"));
        assert!(!is_workspaced("/config"));
        assert!(!is_workspaced("/clustering/data-planes"));
    }
}
