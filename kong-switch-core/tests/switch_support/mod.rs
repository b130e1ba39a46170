//! A small stateful Kong stand-in on wiremock for the switch scenario tests: enough of the
//! Admin API for the engine (services, routes, upstreams, targets, health, `/config`), a
//! proxy whose `x-color` header follows the service, and failure injection. Every request
//! is recorded by wiremock; `writes()` returns the non-GET ones in order.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kong_switch_core::admin::{AdminConfig, KongClient, RetryPolicy};
use kong_switch_core::state::FileLog;
use kong_switch_core::switch::Engine;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

/// The fake's entities.
#[derive(Debug, Default)]
pub struct State {
    pub version: String,
    pub router_delay_s: f64,
    pub database: String,
    pub services: Vec<Value>,
    pub routes: Vec<Value>,
    pub upstreams: Vec<Value>,
    /// upstream name → targets
    pub targets: BTreeMap<String, Vec<Value>>,
    /// target id → health
    pub health: BTreeMap<String, String>,
    /// `(method, path, status)`: answer `status` instead; a path `…#<weight>` fails only
    /// writes of that weight
    pub fail: Vec<(String, String, u16)>,
    /// When the service host last changed (the proxy follows after `router_delay_s`).
    pub changed_at: Option<Instant>,
    pub previous_host: Option<String>,
    /// Proxy answers 500 when set.
    pub proxy_broken: bool,
    /// The proxy answers 500 while some target tagged green has at least this weight.
    pub proxy_breaks_at_green_weight: Option<u64>,
    /// DB-less: the declarative config served by `GET /config`.
    pub config: Option<Value>,
}

pub struct FakeKong {
    pub admin: MockServer,
    pub proxy: MockServer,
    pub state: Arc<Mutex<State>>,
}

struct Admin(Arc<Mutex<State>>);
struct Proxy(Arc<Mutex<State>>);

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({"message": "Not found"}))
}

fn find<'a>(list: &'a mut [Value], key: &str, by: &[&str]) -> Option<&'a mut Value> {
    list.iter_mut().find(|v| {
        by.iter()
            .any(|f| v.get(*f).and_then(Value::as_str) == Some(key))
    })
}

fn merge(entity: &mut Value, patch: &Value) {
    if let (Some(e), Some(p)) = (entity.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            e.insert(k.clone(), v.clone());
        }
    }
}

fn has_tags(entity: &Value, query: &str) -> bool {
    let tags: Vec<&str> = entity
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    query.split(',').all(|t| tags.contains(&t))
}

impl Respond for Admin {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().expect("state");
        let method = req.method.to_string();
        let path = req.url.path().to_owned();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        // `path` fails every time; `path#<weight>` only when that weight is written
        let with_weight = body.get("weight").map(|w| format!("{path}#{w}"));
        if let Some((_, _, status)) = s
            .fail
            .iter()
            .find(|(m, p, _)| *m == method && (*p == path || Some(p) == with_weight.as_ref()))
        {
            return ResponseTemplate::new(*status)
                .set_body_json(json!({"message": "An unexpected error occurred"}));
        }
        let tags = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "tags")
            .map(|(_, v)| v.into_owned());
        let seg: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let list = |items: Vec<Value>| ok(json!({"data": items, "next": null}));
        match (method.as_str(), seg.as_slice()) {
            ("GET", [""]) => ok(json!({
                "version": s.version,
                "configuration": {
                    "role": "traditional",
                    "database": s.database,
                    "db_update_frequency": 5,
                    "worker_state_update_frequency": s.router_delay_s,
                    "worker_consistency": if s.router_delay_s > 0.0 { "eventual" } else { "strict" }
                }
            })),
            // DB-less: a hash of the loaded configuration, as Kong's md5.
            ("GET", ["status"]) => ok(json!({
                "database": {"reachable": true},
                "configuration_hash": s.config.as_ref().map(|c| {
                    use std::hash::{Hash, Hasher};
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    c.to_string().hash(&mut hasher);
                    format!("{:032x}", hasher.finish())
                }),
            })),
            ("GET", ["config"]) => match &s.config {
                Some(c) => ok(json!({"config": serde_json::to_string(c).unwrap_or_default()})),
                None => not_found(),
            },
            ("POST", ["config"]) => {
                // apply the service hosts of the posted document to the entity views
                if let Some(services) = body.get("services").and_then(Value::as_array) {
                    for posted in services {
                        let name = posted
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let host = posted.get("host").cloned().unwrap_or(Value::Null);
                        if let Some(svc) = find(&mut s.services, name, &["name"]) {
                            svc["host"] = host;
                        }
                    }
                }
                s.config = Some(body.clone());
                ResponseTemplate::new(201).set_body_json(json!({}))
            }
            ("GET", ["services"]) => list(
                s.services
                    .iter()
                    .filter(|v| tags.as_deref().is_none_or(|t| has_tags(v, t)))
                    .cloned()
                    .collect(),
            ),
            ("GET", ["services", k]) => match find(&mut s.services, k, &["name", "id"]) {
                Some(v) => ok(v.clone()),
                None => not_found(),
            },
            ("PATCH", ["services", k]) => {
                let k = k.to_string();
                let previous = find(&mut s.services, &k, &["name", "id"])
                    .and_then(|v| v.get("host").and_then(Value::as_str).map(str::to_owned));
                match find(&mut s.services, &k, &["name", "id"]) {
                    Some(v) => {
                        merge(v, &body);
                        let out = v.clone();
                        s.previous_host = previous;
                        s.changed_at = Some(Instant::now());
                        ok(out)
                    }
                    None => not_found(),
                }
            }
            ("GET", ["services", k, "routes"]) => {
                let id = find(&mut s.services, k, &["name", "id"])
                    .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
                match id {
                    Some(id) => list(
                        s.routes
                            .iter()
                            .filter(|r| r["service"]["id"] == json!(id))
                            .cloned()
                            .collect(),
                    ),
                    None => not_found(),
                }
            }
            ("GET", ["routes", k]) => match find(&mut s.routes, k, &["name", "id"]) {
                Some(v) => ok(v.clone()),
                None => not_found(),
            },
            ("PATCH", ["routes", k]) => match find(&mut s.routes, k, &["name", "id"]) {
                Some(v) => {
                    merge(v, &body);
                    ok(v.clone())
                }
                None => not_found(),
            },
            ("GET", ["upstreams"]) => list(
                s.upstreams
                    .iter()
                    .filter(|v| tags.as_deref().is_none_or(|t| has_tags(v, t)))
                    .cloned()
                    .collect(),
            ),
            ("GET", ["upstreams", u]) => match find(&mut s.upstreams, u, &["name", "id"]) {
                Some(v) => ok(v.clone()),
                None => not_found(),
            },
            ("GET", ["upstreams", u, "targets"]) => {
                if find(&mut s.upstreams, u, &["name", "id"]).is_none() {
                    return not_found();
                }
                list(s.targets.get(*u).cloned().unwrap_or_default())
            }
            ("GET", ["upstreams", u, "health"]) => {
                if find(&mut s.upstreams, u, &["name", "id"]).is_none() {
                    return not_found();
                }
                let health = s.health.clone();
                let data: Vec<Value> = s
                    .targets
                    .get(*u)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|mut t| {
                        let id = t["id"].as_str().unwrap_or_default().to_owned();
                        t["health"] =
                            json!(health.get(&id).cloned().unwrap_or_else(|| "HEALTHY".into()));
                        t
                    })
                    .collect();
                ok(json!({"data": data, "next": null, "node_id": "node-1"}))
            }
            ("GET", ["upstreams", u, "targets", t]) => {
                match s
                    .targets
                    .get_mut(*u)
                    .and_then(|ts| find(ts, t, &["id", "target"]))
                {
                    Some(v) => ok(v.clone()),
                    None => not_found(),
                }
            }
            ("PATCH", ["upstreams", u, "targets", t]) => {
                match s
                    .targets
                    .get_mut(*u)
                    .and_then(|ts| find(ts, t, &["id", "target"]))
                {
                    Some(v) => {
                        merge(v, &body);
                        ok(v.clone())
                    }
                    None => not_found(),
                }
            }
            _ => ResponseTemplate::new(405).set_body_json(json!({"message": "Method not allowed"})),
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Respond for Proxy {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let s = self.0.lock().expect("state");
        let green_weight = s
            .targets
            .values()
            .flatten()
            .filter(|t| {
                t["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.contains(&json!("kong-switch.color=green")))
            })
            .filter_map(|t| t["weight"].as_u64())
            .max()
            .unwrap_or(0);
        if s.proxy_broken
            || s.proxy_breaks_at_green_weight
                .is_some_and(|w| green_weight >= w)
        {
            return ResponseTemplate::new(500);
        }
        let service = req.url.path().trim_start_matches('/').to_owned();
        let current = s
            .services
            .iter()
            .find(|v| v["name"] == json!(service))
            .and_then(|v| v["host"].as_str())
            .unwrap_or_default()
            .to_owned();
        // the router follows a host change only after the rebuild delay (Kong 3.x)
        let host = match (s.changed_at, &s.previous_host) {
            (Some(at), Some(prev)) if at.elapsed() < Duration::from_secs_f64(s.router_delay_s) => {
                prev.clone()
            }
            _ => current,
        };
        let color = if host.ends_with("-green") {
            "green"
        } else {
            "blue"
        };
        ResponseTemplate::new(200)
            .insert_header("x-color", color)
            .set_body_string(color)
    }
}

impl FakeKong {
    pub async fn start(version: &str, router_delay_s: f64) -> FakeKong {
        let state = Arc::new(Mutex::new(State {
            version: version.into(),
            router_delay_s,
            database: "postgres".into(),
            ..State::default()
        }));
        let admin = MockServer::start().await;
        Mock::given(any())
            .respond_with(Admin(state.clone()))
            .mount(&admin)
            .await;
        let proxy = MockServer::start().await;
        Mock::given(any())
            .respond_with(Proxy(state.clone()))
            .mount(&proxy)
            .await;
        FakeKong {
            admin,
            proxy,
            state,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }

    pub fn client(&self) -> KongClient {
        let config = AdminConfig::builder(&self.admin.uri())
            .expect("url")
            .retries(RetryPolicy::none())
            .build()
            .expect("config");
        KongClient::new(config).expect("client")
    }

    /// A fresh engine over this fake (fresh client: no cached node) and `log`.
    pub fn engine(&self, log: FileLog) -> Engine<FileLog> {
        Engine::new(self.client(), log)
    }

    pub fn proxy_url(&self, service: &str) -> url::Url {
        format!("{}/{service}", self.proxy.uri())
            .parse()
            .expect("url")
    }

    /// Every request received, as `METHOD /path`.
    pub async fn requests(&self) -> Vec<String> {
        self.admin
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect()
    }

    /// The writes received, in order, as `METHOD /path body`.
    pub async fn writes(&self) -> Vec<String> {
        self.admin
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() != "GET")
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                format!("{} {} {body}", r.method, r.url.path())
            })
            .collect()
    }

    /// `orders` → upstream `orders-blue`; upstreams `orders-blue`/`orders-green` with one
    /// target each.
    pub fn upstream_topology(&self) {
        let mut s = self.state();
        s.services.push(json!({"id": "svc-orders", "name": "orders", "host": "orders-blue", "port": 80, "tags": ["app=orders"]}));
        for (id, name, addr) in [
            ("up-b", "orders-blue", "10.0.0.1:8000"),
            ("up-g", "orders-green", "10.0.0.2:8000"),
        ] {
            s.upstreams.push(json!({"id": id, "name": name}));
            s.targets.insert(
                name.into(),
                vec![json!({"id": format!("t-{name}"), "target": addr, "weight": 100, "upstream": {"id": id}})],
            );
        }
    }
}

pub fn temp_log() -> (tempfile::TempDir, FileLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = FileLog::open(dir.path()).expect("log");
    (dir, log)
}

pub fn reopen(dir: &tempfile::TempDir) -> FileLog {
    FileLog::open(dir.path()).expect("log")
}

/// Body helper for assertions.
pub fn w(method: &str, path: &str, body: Value) -> String {
    format!("{method} {path} {body}")
}
