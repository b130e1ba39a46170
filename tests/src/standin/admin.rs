//! The Admin API: request parsing, fault injection, logging, routing to the handlers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::entities::{self, Kind, Mode};
use super::errors::ApiError;
use super::faults::{FaultAction, LoggedRequest};
use super::http::{self as h, Body, HangUp};
use super::node::{Node, sort_newest_first};
use super::schema::is_uuid;
use super::store::Config;
use super::{KongVersion, declarative};

/// Characters Kong leaves alone in `next` URLs.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// nginx `client_max_body_size` of the Admin API (10m).
const MAX_BODY: usize = 10 * 1024 * 1024;

/// A parsed request body.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    Empty,
    Json(Map<String, Value>),
    Form(Map<String, Value>),
    /// JSON that is not an object, or not JSON at all with a JSON content type.
    BadJson,
    /// `application/x-yaml` and other types Kong's Admin API refuses (415 on `/config`).
    Unsupported,
}

impl Input {
    /// The object (empty for no body).
    pub(crate) fn object(&self) -> Map<String, Value> {
        match self {
            Input::Json(m) | Input::Form(m) => m.clone(),
            _ => Map::new(),
        }
    }

    fn is_form(&self) -> bool {
        matches!(self, Input::Form(_))
    }

    fn log_value(&self, raw: &Bytes) -> Value {
        match self {
            Input::Json(m) | Input::Form(m) => Value::Object(m.clone()),
            Input::Empty => Value::Null,
            _ => Value::String(String::from_utf8_lossy(raw).into_owned()),
        }
    }
}

/// Parses a body by content type.
pub(crate) fn parse_input(content_type: Option<&str>, raw: &Bytes) -> Input {
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Input::Empty;
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        return Input::Form(parse_form(raw));
    }
    if ct.starts_with("application/json") || ct.is_empty() || ct.starts_with("text/plain") {
        return match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(m)) => Input::Json(m),
            _ => Input::BadJson,
        };
    }
    if ct.starts_with("multipart/form-data") {
        return Input::Form(parse_multipart(&ct, raw));
    }
    Input::Unsupported
}

/// `a.b=1&tags[]=x&tags=y` → nested JSON object with string leaves.
fn parse_form(raw: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in form_urlencoded::parse(raw) {
        insert_form_value(&mut out, &key, value.into_owned());
    }
    out
}

fn insert_form_value(out: &mut Map<String, Value>, key: &str, value: String) {
    let (key, is_array) = match key.find('[') {
        Some(i) => (&key[..i], true),
        None => (key, false),
    };
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut cursor = out;
    for part in parts {
        let entry = cursor
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cursor = next;
    }
    let leaf = if value.is_empty() {
        Value::Null
    } else {
        Value::String(value)
    };
    match cursor.get_mut(last) {
        Some(Value::Array(items)) => items.push(leaf),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, leaf]);
        }
        None if is_array => {
            cursor.insert(last.to_owned(), Value::Array(vec![leaf]));
        }
        None => {
            cursor.insert(last.to_owned(), leaf);
        }
    }
}

/// Minimal `multipart/form-data` (text parts only).
fn parse_multipart(content_type: &str, raw: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return out;
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let text = String::from_utf8_lossy(raw);
    for part in text.split(boundary.as_str()) {
        let Some((head, body)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        let value = body.strip_suffix("\r\n").unwrap_or(body).to_owned();
        insert_form_value(&mut out, name, value);
    }
    out
}

/// Query parameters, first value wins; `raw` kept for the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Self { pairs }
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn truthy(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "yes" | "on"))
    }
}

/// Handles one Admin API request on `node`.
pub(crate) async fn handle(
    node: Arc<Node>,
    req: Request<Incoming>,
) -> Result<Response<Body>, HangUp> {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().map(str::to_owned);
    node.shared
        .counters(node.index)
        .requests
        .fetch_add(1, Ordering::Relaxed);
    let raw = match h::read_body(body, MAX_BODY).await {
        Ok(raw) => raw,
        Err(true) => {
            return Ok(finish(
                &node,
                h::nginx_html(StatusCode::PAYLOAD_TOO_LARGE),
                started,
            ));
        }
        Err(false) => return Err(HangUp),
    };
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let input = parse_input(content_type, &raw);
    node.shared.log.push(LoggedRequest {
        node: node.index,
        method: method.as_str().to_owned(),
        path: path.clone(),
        query: raw_query.clone(),
        body: input.log_value(&raw),
    });
    let fault = node.shared.faults.take(node.index, method.as_str(), &path);
    let mut after = None;
    match fault {
        Some(FaultAction::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(FaultAction::Respond { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let resp = h::json(
                status,
                &json!({ "message": "An unexpected error occurred" }),
            );
            return Ok(finish(&node, resp, started));
        }
        Some(FaultAction::Drop) => return Err(HangUp),
        Some(FaultAction::ApplyLate { ms }) => {
            let node = Arc::clone(&node);
            let query = Query::parse(raw_query.as_deref());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let request = AdminRequest {
                    node: &node,
                    method,
                    path,
                    query,
                    input,
                };
                // Nobody waits for the answer: the client was hung up on.
                let _ = request.dispatch().await;
            });
            return Err(HangUp);
        }
        Some(other) => after = Some(other),
        None => {}
    }
    let query = Query::parse(raw_query.as_deref());
    let request = AdminRequest {
        node: &node,
        method,
        path,
        query,
        input,
    };
    let resp = match request.dispatch().await {
        Ok(resp) => resp,
        Err(err) => h::json(err.status, &err.body),
    };
    match after {
        Some(FaultAction::RespondAfterApply { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let resp = h::json(
                status,
                &json!({ "message": "An unexpected error occurred" }),
            );
            Ok(finish(&node, resp, started))
        }
        Some(FaultAction::DropAfterApply) => Err(HangUp),
        _ => Ok(finish(&node, resp, started)),
    }
}

fn finish(node: &Node, mut resp: Response<Body>, started: std::time::Instant) -> Response<Body> {
    let headers = resp.headers_mut();
    let server = format!("kong/{}", node.shared.profile.version_string());
    if let Ok(v) = http::HeaderValue::from_str(&server) {
        headers.insert(http::header::SERVER, v);
    }
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&started.elapsed().as_millis().to_string()) {
        headers.insert("x-kong-admin-latency", v);
    }
    h::nginx_reason(&mut resp);
    resp
}

type Reply = Result<Response<Body>, ApiError>;

fn ok(status: StatusCode, body: &Value) -> Reply {
    Ok(h::json(status, body))
}

struct AdminRequest<'a> {
    node: &'a Arc<Node>,
    method: Method,
    path: String,
    query: Query,
    input: Input,
}

impl AdminRequest<'_> {
    fn version(&self) -> KongVersion {
        self.node.shared.profile.version()
    }

    fn dbless(&self) -> bool {
        self.node.shared.profile.is_dbless()
    }

    fn db(&self) -> Arc<Config> {
        self.node.shared.store.current()
    }

    fn body(&self) -> Result<Map<String, Value>, ApiError> {
        match &self.input {
            Input::BadJson => Err(ApiError::bad_json()),
            other => Ok(other.object()),
        }
    }

    async fn dispatch(&self) -> Reply {
        if self.method == Method::OPTIONS {
            let mut resp = h::empty(StatusCode::NO_CONTENT);
            resp.headers_mut().insert(
                http::header::ACCESS_CONTROL_ALLOW_METHODS,
                http::HeaderValue::from_static("GET, HEAD, PUT, PATCH, POST, DELETE"),
            );
            return Ok(resp);
        }
        let trimmed = self.path.trim_matches('/');
        let segments: Vec<String> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed
                .split('/')
                .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
                .collect()
        };
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let m = &self.method;
        let get = *m == Method::GET || *m == Method::HEAD;
        match seg.as_slice() {
            [] if get => ok(StatusCode::OK, &self.root_info()),
            ["status"] if get => ok(StatusCode::OK, &self.status()),
            ["clustering", "data-planes"] if get && self.node.shared.is_control_plane() => {
                let cluster = self
                    .node
                    .shared
                    .hybrid
                    .as_ref()
                    .ok_or_else(ApiError::not_found)?;
                ok(StatusCode::OK, &cluster.data_planes_body())
            }
            ["clustering", "status"] if get && self.node.shared.is_control_plane() => {
                let cluster = self
                    .node
                    .shared
                    .hybrid
                    .as_ref()
                    .ok_or_else(ApiError::not_found)?;
                let mut resp = h::json(StatusCode::OK, &cluster.status_body());
                resp.headers_mut()
                    .insert("deprecation", http::HeaderValue::from_static("true"));
                Ok(resp)
            }
            ["config"] if get => declarative::get_config(self.node, &self.query),
            ["config"] if *m == Method::POST => {
                declarative::post_config(self.node, &self.query, &self.input)
            }
            ["services"] | ["routes"] | ["upstreams"] => {
                let kind = kind_of(seg[0]);
                match *m {
                    Method::GET => self.list_entities(kind, None),
                    Method::POST => self.create(kind, None),
                    _ => Err(ApiError::method_not_allowed()),
                }
            }
            [table @ ("services" | "routes" | "upstreams"), key] => {
                self.item(kind_of(table), key, None).await
            }
            ["services", s, "routes"] => {
                let service = self.find_parent(s)?;
                match *m {
                    Method::GET => self.list_entities(Kind::Route, Some(&service)),
                    Method::POST => self.create(Kind::Route, Some(&service)),
                    _ => Err(ApiError::method_not_allowed()),
                }
            }
            ["services", s, "routes", r] => {
                let service = self.find_parent(s)?;
                self.item(Kind::Route, r, Some(&service)).await
            }
            ["routes", r, "service"] if get => {
                let db = self.db();
                let route = db.find("routes", r).ok_or_else(ApiError::not_found)?;
                let sid = route["service"]["id"].as_str().unwrap_or_default();
                let service = db.services.get(sid).ok_or_else(ApiError::not_found)?;
                ok(StatusCode::OK, service)
            }
            ["upstreams", u, "health"] if get => {
                let db = self.db();
                let up = db.find("upstreams", u).ok_or_else(ApiError::not_found)?;
                let body = self
                    .node
                    .health_body(up, &db, self.query.truthy("balancer_health"))
                    .await;
                ok(StatusCode::OK, &body)
            }
            ["upstreams", u, "targets"] => match *m {
                Method::GET => self.list_targets(u, false),
                Method::POST => self.create_target(u),
                _ => Err(ApiError::method_not_allowed()),
            },
            ["upstreams", u, "targets", "all"] => {
                if get {
                    self.list_targets(u, true)
                } else {
                    Err(ApiError::method_not_allowed())
                }
            }
            ["upstreams", u, "targets", t] => self.target_item(u, t),
            ["tags"] if get => self.tagged(None),
            ["tags", tag] if get => self.tagged(Some(tag)),
            [
                "upstreams",
                u,
                "targets",
                t,
                action @ ("healthy" | "unhealthy"),
            ] => self.post_health(u, t, None, *action == "healthy").await,
            [
                "upstreams",
                u,
                "targets",
                t,
                address,
                action @ ("healthy" | "unhealthy"),
            ] => {
                self.post_health(u, t, Some(address), *action == "healthy")
                    .await
            }
            []
            | ["status"]
            | ["config"]
            | ["routes", _, "service"]
            | ["upstreams", _, "health"]
            | ["tags"]
            | ["tags", _] => Err(ApiError::method_not_allowed()),
            _ => Err(ApiError::not_found()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Root and status
    // -----------------------------------------------------------------------------------------

    fn root_info(&self) -> Value {
        let shared = &self.node.shared;
        let profile = shared.profile;
        let v3 = profile.version() == KongVersion::V3;
        let knobs = &shared.knobs;
        let (admin, proxy) = shared.listen_addrs(self.node.index);
        let mut configuration = json!({
            "role": "traditional",
            "database": if profile.is_dbless() { "off" } else { "postgres" },
            "db_update_frequency": secs(knobs.db_update_frequency),
            "db_update_propagation": 0,
            "db_cache_ttl": 0,
            "worker_consistency": if v3 { "eventual" } else { "strict" },
            "worker_state_update_frequency": secs(knobs.router_delay_reported()),
            "admin_listen": [admin],
            "proxy_listen": [proxy],
            "status_listen": ["off"],
            "stream_listen": ["off"],
            "cluster_listen": ["0.0.0.0:8005"],
            "cluster_control_plane": "127.0.0.1:8005",
            "nginx_worker_processes": "1",
            "nginx_main_worker_processes": "1",
            "proxy_error_log": "logs/error.log",
            "log_level": "notice",
            "error_default_type": "text/plain",
            "prefix": "/usr/local/kong",
            "plugins": ["bundled"],
            "loaded_plugins": {},
            "anonymous_reports": false,
            "kic": false,
            "upstream_keepalive_pool_size": if v3 { 512 } else { 60 },
        });
        if let Some(cluster) = &shared.hybrid {
            configuration["role"] = json!("control_plane");
            configuration["proxy_listen"] = json!(["off"]);
            configuration["cluster_listen"] = json!([cluster.cluster_listen()]);
            configuration["cluster_mtls"] = json!("shared");
            configuration["cluster_data_plane_purge_delay"] = json!(1_209_600);
        }
        if v3 {
            configuration["router_flavor"] = json!("traditional_compatible");
            configuration["dedicated_config_processing"] = json!(true);
        }
        let mut root = json!({
            "plugins": { "available_on_server": {}, "enabled_in_cluster": [] },
            "tagline": "Welcome to kong",
            "version": profile.version_string(),
            "hostname": format!("kong-standin-{}", self.node.index + 1),
            "node_id": self.node.node_id,
            "lua_version": if v3 { "LuaJIT 2.1.1700206165" } else { "2.1.0-beta3" },
            "pids": { "master": std::process::id(), "workers": [std::process::id()] },
            "timers": { "running": 0, "pending": 1 },
            "configuration": configuration,
        });
        if v3 {
            root["edition"] = json!("community");
        }
        root
    }

    fn status(&self) -> Value {
        let counters = self.node.shared.counters(self.node.index);
        let total = counters.requests.load(Ordering::Relaxed);
        let mut status = json!({
            "database": { "reachable": true },
            "memory": {
                "workers_lua_vms": [{ "pid": std::process::id(), "http_allocated_gc": "40.00 MiB" }],
                "lua_shared_dicts": {
                    "kong": { "capacity": "5.00 MiB", "allocated_slabs": "0.04 MiB" },
                    "kong_db_cache": { "capacity": "128.00 MiB", "allocated_slabs": "0.76 MiB" },
                },
            },
            "server": {
                "connections_active": 1,
                "connections_reading": 0,
                "connections_writing": 1,
                "connections_waiting": 0,
                "connections_accepted": total,
                "connections_handled": total,
                "total_requests": total,
            },
        });
        if self.dbless() {
            let hash = self
                .node
                .shared
                .store
                .config_hash()
                .unwrap_or_else(|| "0".repeat(32));
            status["configuration_hash"] = json!(hash);
        }
        status
    }

    // -----------------------------------------------------------------------------------------
    // Services, routes, upstreams
    // -----------------------------------------------------------------------------------------

    fn find_parent(&self, key: &str) -> Result<Value, ApiError> {
        self.db()
            .find("services", key)
            .cloned()
            .ok_or_else(ApiError::not_found)
    }

    fn list_entities(&self, kind: Kind, service: Option<&Value>) -> Reply {
        let db = self.db();
        let items: Vec<&Value> = db
            .table(kind.table())
            .values()
            .filter(|v| service.is_none_or(|s| v["service"]["id"] == s["id"]))
            .collect();
        let page = self.page(items, service.is_some())?;
        ok(StatusCode::OK, &page)
    }

    /// DB-backed paging: id order, opaque base64 offsets, `next` per version ([`Self::next_url`];
    /// `nested` for a collection under its parent, e.g. `/services/{s}/routes`).
    fn page(&self, items: Vec<&Value>, nested: bool) -> Result<Value, ApiError> {
        let size = self.page_size()?;
        let filter = self.tag_filter()?;
        let after = match self.query.get("offset") {
            Some(offset) => {
                Some(decode_offset(offset).ok_or_else(|| ApiError::invalid_offset(offset))?)
            }
            None => None,
        };
        let mut selected: Vec<&Value> = items
            .into_iter()
            .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
            .filter(|v| {
                after
                    .as_deref()
                    .is_none_or(|a| v["id"].as_str().unwrap_or_default() > a)
            })
            .collect();
        let more = selected.len() > size;
        selected.truncate(size);
        let data: Vec<Value> = selected.iter().map(|v| (*v).clone()).collect();
        let mut page = json!({ "data": data, "next": null });
        if more && let Some(last) = selected.last() {
            let offset = encode_offset(last["id"].as_str().unwrap_or_default());
            page["next"] = json!(self.next_url(&offset, nested));
            page["offset"] = json!(offset);
        }
        Ok(page)
    }

    /// `next` of a page (`kong/api/endpoints.lua` `get_collection_endpoint`): a top-level
    /// collection carries the `tags` filter (2.8.5 transcript: "next already carries
    /// &tags=…") and on 3.x also the page `size` (kong-admin-api.md §2.4: "3.2+ appends
    /// `&tags=..&size=..`"); a collection under its parent (`/upstreams/{u}/targets`,
    /// `/services/{s}/routes`) carries only the offset (2.8.5 transcript: `?size=1` →
    /// `"next":"/upstreams/blue.svc/targets?offset=1"`, the same on 3.9.3).
    fn next_url(&self, offset: &str, nested: bool) -> String {
        let mut next = format!(
            "{}?offset={}",
            self.path,
            utf8_percent_encode(offset, QUERY)
        );
        if nested {
            return next;
        }
        if let Some(tags) = self.query.get("tags") {
            next.push_str(&format!("&tags={}", utf8_percent_encode(tags, QUERY)));
        }
        if self.version() == KongVersion::V3
            && let Some(size) = self.query.get("size")
        {
            next.push_str(&format!("&size={}", utf8_percent_encode(size, QUERY)));
        }
        next
    }

    fn page_size(&self) -> Result<usize, ApiError> {
        let Some(raw) = self.query.get("size") else {
            return Ok(100);
        };
        let Ok(n) = raw.trim().parse::<f64>() else {
            return Err(ApiError::invalid_size("size must be a number"));
        };
        if n.fract() != 0.0 || !(1.0..=1000.0).contains(&n) {
            return Err(ApiError::invalid_size(
                "size must be an integer between 1 and 1000",
            ));
        }
        Ok(n as usize)
    }

    fn tag_filter(&self) -> Result<Option<TagFilter>, ApiError> {
        let Some(raw) = self.query.get("tags") else {
            return Ok(None);
        };
        if raw.is_empty() {
            return Err(match self.version() {
                KongVersion::V28 => ApiError::unexpected(),
                KongVersion::V3 => ApiError::invalid_option("tags", "cannot be null"),
            });
        }
        let and = raw.contains(',');
        let or = raw.contains('/');
        if and && or {
            return Err(ApiError::invalid_option("tags", "invalid filter syntax"));
        }
        let tags: Vec<String> = raw.split([',', '/']).map(str::to_owned).collect();
        if tags.iter().any(String::is_empty) {
            return Err(ApiError::invalid_option("tags", "invalid filter syntax"));
        }
        Ok(Some(TagFilter { tags, any: or }))
    }

    fn create(&self, kind: Kind, service: Option<&Value>) -> Reply {
        if self.dbless() {
            return Err(ApiError::operation_unsupported(format!(
                "cannot create '{}' entities when not using a database",
                kind.table()
            )));
        }
        let mut input = self.body()?;
        if let Some(service) = service {
            input.insert("service".into(), json!({ "id": service["id"] }));
        }
        let version = self.version();
        let form = self.input.is_form();
        let index = self.node.index;
        let created = self.node.shared.store.write(index, |db| {
            if kind == Kind::Route {
                entities::resolve_service_ref(&mut input, db)?;
            }
            if let Some(Value::String(id)) = input.get("id")
                && db.table(kind.table()).contains_key(id)
            {
                return Err(ApiError::primary_key(id));
            }
            let entity = entities::build(kind, input, None, Mode::Create, version, form)?;
            entities::store(kind, entity, db)
        })?;
        ok(StatusCode::CREATED, &created)
    }

    async fn item(&self, kind: Kind, key: &str, service: Option<&Value>) -> Reply {
        let db = self.db();
        let found = db
            .find(kind.table(), key)
            .filter(|v| service.is_none_or(|s| v["service"]["id"] == s["id"]))
            .cloned();
        let key_name = if is_uuid(key) { "id" } else { "name" };
        match self.method {
            Method::GET | Method::HEAD => {
                found.map_or_else(|| Err(ApiError::not_found()), |v| ok(StatusCode::OK, &v))
            }
            Method::PATCH => {
                let Some(existing) = found else {
                    return Err(ApiError::entity_not_found(key_name, key));
                };
                if self.dbless() {
                    return Err(ApiError::operation_unsupported(format!(
                        "cannot update '{}' entities by '{key_name}' when not using a database",
                        kind.table()
                    )));
                }
                let mut input = self.body()?;
                if let Some(service) = service {
                    input.insert("service".into(), json!({ "id": service["id"] }));
                }
                self.save(kind, input, Some(existing), Mode::Patch, StatusCode::OK)
            }
            Method::PUT => {
                if self.dbless() {
                    return Err(ApiError::operation_unsupported(format!(
                        "cannot create or update '{}' entities by '{key_name}' when not using a database",
                        kind.table()
                    )));
                }
                let mut input = self.body()?;
                if let Some(service) = service {
                    input.insert("service".into(), json!({ "id": service["id"] }));
                }
                if key_name == "name" {
                    input.insert("name".into(), json!(key));
                } else if found.is_none() {
                    input.insert("id".into(), json!(key));
                }
                let mode = if found.is_some() {
                    Mode::Replace
                } else {
                    Mode::Create
                };
                self.save(kind, input, found, mode, StatusCode::OK)
            }
            Method::DELETE => {
                let Some(existing) = found else {
                    return Ok(h::empty(StatusCode::NO_CONTENT));
                };
                if self.dbless() {
                    return Err(ApiError::operation_unsupported(format!(
                        "cannot remove '{}' entities by '{key_name}' when not using a database",
                        kind.table()
                    )));
                }
                let id = existing["id"].as_str().unwrap_or_default().to_owned();
                self.node.shared.store.write(self.node.index, |db| {
                    match kind {
                        Kind::Service => {
                            if db
                                .routes
                                .values()
                                .any(|r| r["service"]["id"].as_str() == Some(id.as_str()))
                            {
                                return Err(ApiError::referenced_by("routes", "services"));
                            }
                        }
                        Kind::Upstream => {
                            db.targets = db
                                .targets
                                .iter()
                                .filter(|(_, t)| t["upstream"]["id"].as_str() != Some(id.as_str()))
                                .map(|(k, t)| (k.clone(), t.clone()))
                                .collect();
                        }
                        Kind::Route => {}
                    }
                    db.table_mut(kind.table()).remove(&id);
                    Ok(())
                })?;
                Ok(h::empty(StatusCode::NO_CONTENT))
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    fn save(
        &self,
        kind: Kind,
        mut input: Map<String, Value>,
        existing: Option<Value>,
        mode: Mode,
        status: StatusCode,
    ) -> Reply {
        let version = self.version();
        let form = self.input.is_form();
        let saved = self.node.shared.store.write(self.node.index, |db| {
            if kind == Kind::Route {
                entities::resolve_service_ref(&mut input, db)?;
            }
            // Re-read inside the write lock: the entity may have changed meanwhile.
            let current = existing
                .as_ref()
                .and_then(|e| {
                    db.table(kind.table())
                        .get(e["id"].as_str().unwrap_or_default())
                })
                .cloned();
            let entity = entities::build(kind, input, current.as_ref(), mode, version, form)?;
            entities::store(kind, entity, db)
        })?;
        ok(status, &saved)
    }

    // -----------------------------------------------------------------------------------------
    // Targets
    // -----------------------------------------------------------------------------------------

    fn list_targets(&self, upstream: &str, all: bool) -> Reply {
        let db = self.db();
        let up = db
            .find("upstreams", upstream)
            .ok_or_else(ApiError::not_found)?;
        let id = up["id"].as_str().unwrap_or_default();
        let filter = self.tag_filter()?;
        let mut items: Vec<&Value> = db
            .targets_of(id)
            .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
            .collect();
        if all {
            // The raw rows in the database's primary-key order (2.8.5 transcript: /targets/all
            // lists 3da56a87-…, d9289136-…, f973e0be-…).
            items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        } else {
            sort_newest_first(&mut items);
        }
        let size = match self.query.get("size") {
            None => 100,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) => usize::try_from(n.clamp(0, 1000)).unwrap_or(0),
                Err(_) => return Err(ApiError::invalid_size("size must be a number")),
            },
        };
        let start = match self.query.get("offset") {
            None => 0,
            Some(raw) => raw
                .parse::<usize>()
                .map_err(|_| ApiError::invalid_offset(raw))?,
        };
        let data: Vec<Value> = items
            .iter()
            .skip(start)
            .take(size)
            .map(|v| (*v).clone())
            .collect();
        let end = start + size;
        let mut page = json!({ "data": data, "next": null });
        if end < items.len() || size == 0 {
            let offset = end.to_string();
            page["next"] = json!(self.next_url(&offset, true));
            page["offset"] = json!(offset);
        }
        ok(StatusCode::OK, &page)
    }

    /// `GET /tags` and `GET /tags/{tag}` (`kong/api/routes/tags.lua`): one row
    /// `{entity_name, entity_id, tag}` per tag of every service, route, upstream and target, in
    /// entity id order, paged like a DB-backed list; `next` is `/tags/{tag}?offset=…`.
    fn tagged(&self, only: Option<&str>) -> Reply {
        let size = self.page_size()?;
        let after = match self.query.get("offset") {
            Some(offset) => {
                Some(decode_offset(offset).ok_or_else(|| ApiError::invalid_offset(offset))?)
            }
            None => None,
        };
        let db = self.db();
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for table in ["services", "routes", "upstreams", "targets"] {
            for entity in db.table(table).values() {
                let id = entity["id"].as_str().unwrap_or_default();
                for tag in entity["tags"].as_array().into_iter().flatten() {
                    let tag = tag.as_str().unwrap_or_default();
                    if only.is_none_or(|t| t == tag) {
                        rows.push((id.to_owned(), table.to_owned(), tag.to_owned()));
                    }
                }
            }
        }
        rows.sort();
        let mut selected: Vec<&(String, String, String)> = rows
            .iter()
            .filter(|(id, _, tag)| {
                after
                    .as_deref()
                    .is_none_or(|a| format!("{id}|{tag}").as_str() > a)
            })
            .collect();
        let more = selected.len() > size;
        selected.truncate(size);
        let data: Vec<Value> = selected
            .iter()
            .map(|(id, table, tag)| json!({ "entity_name": table, "entity_id": id, "tag": tag }))
            .collect();
        let mut page = json!({ "data": data, "next": null });
        if more && let Some((id, _, tag)) = selected.last() {
            let offset = encode_offset(&format!("{id}|{tag}"));
            page["next"] = json!(format!(
                "{}?offset={}",
                self.path.trim_end_matches('/'),
                utf8_percent_encode(&offset, QUERY)
            ));
            page["offset"] = json!(offset);
        }
        ok(StatusCode::OK, &page)
    }

    fn create_target(&self, upstream: &str) -> Reply {
        let db = self.db();
        let Some(up) = db.find("upstreams", upstream) else {
            return Err(match self.version() {
                KongVersion::V28 => ApiError::unexpected(),
                KongVersion::V3 => ApiError::not_found(),
            });
        };
        if self.dbless() {
            return Err(ApiError::operation_unsupported(
                "cannot create 'targets' entities when not using a database".into(),
            ));
        }
        let upstream_id = up["id"].as_str().unwrap_or_default().to_owned();
        let input = self.body()?;
        let version = self.version();
        let form = self.input.is_form();
        let (entity, updated) = self.node.shared.store.write(self.node.index, |db| {
            let built = entities::build_target(
                input.clone(),
                None,
                Mode::Create,
                &upstream_id,
                version,
                form,
            )?;
            let address = built["target"].as_str().unwrap_or_default().to_owned();
            if let Some(existing) =
                entities::find_target_by_address(db, &upstream_id, &address).cloned()
            {
                if version == KongVersion::V3 {
                    return Err(entities::duplicate_target(&address, &upstream_id));
                }
                // 2.8: the legacy upsert updates the existing target.
                let mut merged = existing.as_object().cloned().unwrap_or_default();
                for (k, v) in built {
                    if input.contains_key(&k) || k == "weight" {
                        merged.insert(k, v);
                    }
                }
                merged.insert("id".into(), existing["id"].clone());
                merged.insert("created_at".into(), existing["created_at"].clone());
                merged.insert("target".into(), json!(address));
                let value = Value::Object(merged);
                db.targets.insert(
                    existing["id"].as_str().unwrap_or_default().to_owned(),
                    value.clone(),
                );
                return Ok((value, true));
            }
            let id = built["id"].as_str().unwrap_or_default().to_owned();
            if db.targets.contains_key(&id) {
                return Err(ApiError::primary_key(&id));
            }
            let value = Value::Object(built);
            db.targets.insert(id, value.clone());
            Ok((value, false))
        })?;
        if updated {
            let mut resp = h::json(StatusCode::OK, &entity);
            resp.headers_mut()
                .insert("deprecation", http::HeaderValue::from_static("true"));
            return Ok(resp);
        }
        ok(StatusCode::CREATED, &entity)
    }

    fn target_item(&self, upstream: &str, key: &str) -> Reply {
        let db = self.db();
        let up = db
            .find("upstreams", upstream)
            .ok_or_else(ApiError::not_found)?;
        let upstream_id = up["id"].as_str().unwrap_or_default().to_owned();
        let found = entities::find_target(&db, &upstream_id, key).cloned();
        let method = self.method.clone();
        if method == Method::GET || method == Method::HEAD {
            return found.map_or_else(|| Err(ApiError::not_found()), |v| ok(StatusCode::OK, &v));
        }
        if !matches!(method, Method::PUT | Method::PATCH | Method::DELETE) {
            return Err(ApiError::method_not_allowed());
        }
        let Some(existing) = found else {
            return Err(ApiError::not_found());
        };
        if self.dbless() {
            let verb = if method == Method::DELETE {
                "remove"
            } else {
                "update"
            };
            return Err(ApiError::operation_unsupported(format!(
                "cannot {verb} 'targets' entities when not using a database"
            )));
        }
        let target_id = existing["id"].as_str().unwrap_or_default().to_owned();
        if method == Method::DELETE {
            self.node
                .shared
                .store
                .write::<(), ApiError>(self.node.index, |db| {
                    db.targets.remove(&target_id);
                    Ok(())
                })?;
            return Ok(h::empty(StatusCode::NO_CONTENT));
        }
        let input = self.body()?;
        // PUT on a target is an update like PATCH, not a replace: Kong routes both to the same
        // `update_entity` (`kong/api/routes/upstreams.lua` `update_target_cb`; 2.8.5 transcript:
        // PUT {"weight":7} kept the target's address, id and created_at). Fields not sent keep
        // their values.
        let mode = Mode::Patch;
        let version = self.version();
        let form = self.input.is_form();
        let saved = self.node.shared.store.write(self.node.index, |db| {
            let current = db
                .targets
                .get(&target_id)
                .cloned()
                .ok_or_else(ApiError::not_found)?;
            let built =
                entities::build_target(input, Some(&current), mode, &upstream_id, version, form)?;
            let address = built["target"].as_str().unwrap_or_default().to_owned();
            if let Some(other) = entities::find_target_by_address(db, &upstream_id, &address)
                && other["id"].as_str() != Some(target_id.as_str())
            {
                return Err(entities::duplicate_target(&address, &upstream_id));
            }
            let value = Value::Object(built);
            db.targets.insert(target_id.clone(), value.clone());
            Ok(value)
        })?;
        ok(StatusCode::OK, &saved)
    }

    async fn post_health(
        &self,
        upstream: &str,
        target: &str,
        address: Option<&str>,
        healthy: bool,
    ) -> Reply {
        // 3.x registers no health-mark routes on a control plane (kong-admin-api.md §10).
        if self.node.shared.is_control_plane() && self.version() == KongVersion::V3 {
            return Err(ApiError::not_found());
        }
        let expected = match self.version() {
            KongVersion::V28 => Method::POST,
            KongVersion::V3 => Method::PUT,
        };
        if self.method != expected {
            return Err(ApiError::method_not_allowed());
        }
        let db = self.db();
        let up = db
            .find("upstreams", upstream)
            .ok_or_else(ApiError::not_found)?
            .clone();
        let upstream_id = up["id"].as_str().unwrap_or_default().to_owned();
        let entity = entities::find_target(&db, &upstream_id, target)
            .cloned()
            .ok_or_else(ApiError::not_found)?;
        let name = up["name"].as_str().unwrap_or_default().to_owned();
        if !self.node.has_balancer(&upstream_id) {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                format!("Upstream {name} has no balancer"),
            ));
        }
        if !super::schema::healthchecks_enabled(&up) {
            return Err(ApiError::message(
                StatusCode::BAD_REQUEST,
                format!("no healthchecker found for {name}"),
            ));
        }
        let keys: Vec<String> = match address {
            Some(address) => vec![address.to_owned()],
            None => {
                let view = self.node.view().config;
                let live = view
                    .upstreams
                    .get(&upstream_id)
                    .cloned()
                    .unwrap_or(up.clone());
                let balancer = self.node.balancer_view(&view, &live).await;
                balancer
                    .targets
                    .iter()
                    .filter(|t| t.entity["id"] == entity["id"])
                    .filter_map(|t| t.dns.as_ref().ok())
                    .flat_map(|(_, addrs)| addrs.iter().map(super::node::Address::key))
                    .collect()
            }
        };
        self.node.mark(&name, &keys, healthy);
        self.node
            .shared
            .broadcast_mark(self.node.index, name, keys, healthy);
        Ok(h::empty(StatusCode::NO_CONTENT))
    }
}

fn kind_of(table: &str) -> Kind {
    match table {
        "services" => Kind::Service,
        "routes" => Kind::Route,
        _ => Kind::Upstream,
    }
}

fn secs(d: Duration) -> Value {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        json!(s as u64)
    } else {
        json!(s)
    }
}

fn encode_offset(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!([id]).to_string())
}

fn decode_offset(offset: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(offset.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(offset))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get(0)?.as_str().map(str::to_owned)
}

/// `tags=a,b` (all) or `tags=a/b` (any).
struct TagFilter {
    tags: Vec<String>,
    any: bool,
}

impl TagFilter {
    fn matches(&self, entity: &Value) -> bool {
        let has = |t: &String| {
            entity["tags"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(t.as_str())))
        };
        if self.any {
            self.tags.iter().any(has)
        } else {
            self.tags.iter().all(has)
        }
    }
}
