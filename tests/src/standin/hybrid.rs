//! Hybrid mode (kong-admin-api.md §10): one control plane (Admin API and database, no proxy)
//! pushes its whole configuration to data planes (proxy and Status API, no Admin API).
//!
//! A data plane is a DB-less [`Node`] over its own store: a push replaces that store, so the
//! data plane's `configuration_hash` changes at once while, on 3.x, its proxy and balancers
//! follow `proxy_lag` later (the store's propagation delay). The control plane's pusher follows
//! Kong's rate limit: a write when no push ran for `db_update_frequency` is pushed after
//! `push_delay`; otherwise at the end of that window. The push carries what the database holds
//! at that moment, so a burst of writes can arrive as a partial push first. Each data plane
//! reports its hash to the control plane `report_lag` after applying a push and pings every
//! `ping_interval`; a stopped data plane keeps its row with a frozen `last_seen`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::http::{self as h, Body, HangUp};
use super::node::{Node, sort_newest_first};
use super::store::{Config, Store};
use super::{
    Faults, Knobs, KongVersion, NodeCounters, Profile, RequestLog, Shared, StartError, offset_port,
    proxy,
};

/// Kong's `cluster_data_plane_purge_delay` default (14 days), the `ttl` of a data-plane row.
const PURGE_DELAY_SECS: u64 = 1_209_600;

/// The hash a data plane reports before its first configuration.
const NO_CONFIG_HASH: &str = "00000000000000000000000000000000";

/// Hybrid-mode timing knobs. [`HybridKnobs::kong`] gives the values measured on real Kong
/// (kong-admin-api.md §10); tests shorten them. The push window is the builder's
/// `db_update_frequency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HybridKnobs {
    /// How long after a write on a quiet control plane the push happens (measured: the data
    /// plane's hash changed 0.06–0.26 s after the write returned). Default 100 ms.
    pub push_delay: Duration,
    /// How long after applying a push a data plane's row on the control plane shows the new
    /// hash and `last_seen` (measured 0.1–0.9 s, usually about 0.8 s). Default 800 ms.
    pub report_lag: Duration,
    /// How often a data plane pings the control plane when nothing changes (Kong: 30 s).
    pub ping_interval: Duration,
    /// How long a data plane's proxy and balancers lag its `configuration_hash` (measured on
    /// 3.9.3: typically 0.6–0.8 s; on 2.8.5 they changed together). Default 700 ms on 3.x, 0 on
    /// 2.8.
    pub proxy_lag: Duration,
}

impl HybridKnobs {
    /// Kong's values for `version`.
    pub fn kong(version: KongVersion) -> Self {
        Self {
            push_delay: Duration::from_millis(100),
            report_lag: Duration::from_millis(800),
            ping_interval: Duration::from_secs(30),
            proxy_lag: match version {
                KongVersion::V3 => Duration::from_millis(700),
                KongVersion::V28 => Duration::ZERO,
            },
        }
    }
}

/// Addresses and identity of one data plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlaneHandle {
    index: usize,
    id: String,
    hostname: String,
    proxy_addr: SocketAddr,
    status_addr: SocketAddr,
}

impl DataPlaneHandle {
    /// Position of the data plane (0 = first).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The data plane's id, as listed by the control plane's `/clustering/data-planes`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hostname the control plane lists.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Proxy address.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    /// Status API address.
    pub fn status_addr(&self) -> SocketAddr {
        self.status_addr
    }

    /// Proxy base URL (no trailing slash).
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    /// Status API base URL (no trailing slash).
    pub fn status_url(&self) -> String {
        format!("http://{}", self.status_addr)
    }
}

/// What the control plane knows about one data plane.
#[derive(Debug, Clone)]
struct Row {
    config_hash: String,
    last_seen: u64,
}

/// One data plane as the cluster runs it.
struct DataPlane {
    handle: DataPlaneHandle,
    node: Arc<Node>,
    token: CancellationToken,
    stopped: AtomicBool,
    row: Mutex<Row>,
}

impl DataPlane {
    fn running(&self) -> bool {
        !self.stopped.load(Ordering::SeqCst)
    }

    fn hash(&self) -> String {
        self.node
            .shared
            .store
            .config_hash()
            .unwrap_or_else(|| NO_CONFIG_HASH.to_owned())
    }

    /// The data plane tells the control plane its hash (after a push, or a ping).
    fn report(&self) {
        if self.running() {
            let hash = self.hash();
            let mut row = lock(&self.row);
            row.config_hash = hash;
            row.last_seen = epoch_secs();
        }
    }
}

/// The control plane's side of hybrid mode: the data planes, their rows and the pusher.
pub(crate) struct Cluster {
    version: KongVersion,
    knobs: HybridKnobs,
    window: Duration,
    store: Store,
    planes: Vec<Arc<DataPlane>>,
    cert_expiry: u64,
    shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Listening addresses of data plane 0; data plane `i` uses port + 100·i.
pub(crate) struct PlaneAddrs {
    pub(crate) proxy: SocketAddr,
    pub(crate) status: SocketAddr,
}

impl Cluster {
    /// Starts `count` data planes, each loaded with the control plane's current configuration
    /// (as after their first connection), and the pusher and ping tasks.
    pub(crate) async fn start(
        profile: Profile,
        knobs: HybridKnobs,
        window: Duration,
        store: Store,
        count: usize,
        addrs: PlaneAddrs,
        shutdown: CancellationToken,
    ) -> Result<(Arc<Cluster>, Vec<JoinHandle<()>>), StartError> {
        let version = profile.version();
        let dbless = match version {
            KongVersion::V28 => Profile::DbLess28,
            KongVersion::V3 => Profile::DbLess3,
        };
        let mut planes = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..count {
            let proxy_addr = offset_port(addrs.proxy, i);
            let status_addr = offset_port(addrs.status, i);
            let proxy_listener = h::bind(proxy_addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr: proxy_addr,
                    source,
                })?;
            let status_listener =
                h::bind(status_addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: status_addr,
                        source,
                    })?;
            let proxy_addr = proxy_listener.local_addr().unwrap_or(proxy_addr);
            let status_addr = status_listener.local_addr().unwrap_or(status_addr);
            let token = shutdown.child_token();
            // A data plane is a DB-less node over its own store; the store's propagation
            // delay is the proxy's lag behind the hash.
            let shared = Arc::new(Shared {
                profile: dbless,
                knobs: Knobs {
                    router_delay: Duration::ZERO,
                    balancer_delay: Duration::ZERO,
                    db_update_frequency: knobs.proxy_lag,
                },
                store: Store::new(knobs.proxy_lag + Duration::from_secs(1)),
                faults: Faults::default(),
                log: RequestLog::default(),
                nodes: RwLock::new(Vec::new()),
                counters: vec![NodeCounters::default()],
                listen: RwLock::new(vec![(status_addr.to_string(), proxy_addr.to_string())]),
                shutdown: token.clone(),
                hybrid: None,
            });
            let config = store.current();
            shared
                .store
                .replace(usize::MAX, (*config).clone(), config_hash(&config));
            shared.store.settle();
            let node = Arc::new(Node::new(0, Arc::clone(&shared), token.clone()));
            *shared
                .nodes
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = vec![Arc::downgrade(&node)];
            tasks.push(tokio::spawn(Arc::clone(&node).run()));
            let proxy_node = Arc::clone(&node);
            tasks.push(h::spawn_server(
                proxy_listener,
                token.clone(),
                true,
                move |req, peer| proxy::handle(Arc::clone(&proxy_node), req, peer),
            ));
            let status_node = Arc::clone(&node);
            tasks.push(h::spawn_server(
                status_listener,
                token.clone(),
                true,
                move |req, _| status_api(Arc::clone(&status_node), req),
            ));
            let handle = DataPlaneHandle {
                index: i,
                // The control plane lists a data plane under its node id, the `node_id` its
                // Status API reports (kong-3.9.3/hybrid.txt: row id 8fa0f993-… is the DP's
                // /upstreams/{u}/health node_id).
                id: node.node_id.clone(),
                hostname: format!("kong-standin-dp-{}", i + 1),
                proxy_addr,
                status_addr,
            };
            let row = Row {
                config_hash: NO_CONFIG_HASH.to_owned(),
                last_seen: epoch_secs(),
            };
            let plane = Arc::new(DataPlane {
                handle,
                node,
                token,
                stopped: AtomicBool::new(false),
                row: Mutex::new(row),
            });
            plane.report();
            planes.push(plane);
        }
        let cluster = Arc::new(Cluster {
            version,
            knobs,
            window,
            store,
            planes,
            cert_expiry: epoch_secs() + 3 * 365 * 86_400,
            shutdown,
        });
        tasks.push(tokio::spawn(Arc::clone(&cluster).run_pusher()));
        tasks.push(tokio::spawn(Arc::clone(&cluster).run_pings()));
        Ok((cluster, tasks))
    }

    /// The data planes' handles.
    pub(crate) fn handles(&self) -> Vec<DataPlaneHandle> {
        self.planes.iter().map(|p| p.handle.clone()).collect()
    }

    /// Stops data plane `i` (like `kong stop`): its servers close, it gets no more pushes and
    /// sends no more pings; the control plane keeps its row as it was.
    pub(crate) fn stop(&self, i: usize) {
        if let Some(plane) = self.planes.get(i) {
            plane.stopped.store(true, Ordering::SeqCst);
            plane.token.cancel();
        }
    }

    /// Pushes follow the database: at once (after `push_delay`) when the last push is at least
    /// `window` old, otherwise at the end of that window.
    async fn run_pusher(self: Arc<Self>) {
        let tick = Duration::from_millis(10);
        let mut pushed = self.store.visible(usize::MAX, Duration::ZERO).seq;
        let mut pending: Option<Instant> = None;
        let mut last_push: Option<Instant> = None;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
            let head = self.store.visible(usize::MAX, Duration::ZERO);
            if head.seq == pushed {
                continue;
            }
            let now = Instant::now();
            let since = *pending.get_or_insert(now);
            let mut due = since + self.knobs.push_delay;
            if let Some(last) = last_push {
                due = due.max(last + self.window);
            }
            if now >= due {
                self.push(&head.config);
                pushed = head.seq;
                pending = None;
                last_push = Some(now);
            }
        }
    }

    /// Sends `config` to every running data plane; each reports back after `report_lag`.
    fn push(&self, config: &Config) {
        let hash = config_hash(config);
        for plane in self.planes.iter().filter(|p| p.running()) {
            if plane.hash() == hash {
                continue;
            }
            plane
                .node
                .shared
                .store
                .replace(usize::MAX, config.clone(), hash.clone());
            let plane = Arc::clone(plane);
            let lag = self.knobs.report_lag;
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(lag) => plane.report(),
                }
            });
        }
    }

    async fn run_pings(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(self.knobs.ping_interval) => {}
            }
            for plane in &self.planes {
                plane.report();
            }
        }
    }

    /// One row of `GET /clustering/data-planes`, in the version's shape.
    fn row_json(&self, plane: &DataPlane) -> Value {
        let row = lock(&plane.row).clone();
        let ttl = PURGE_DELAY_SECS.saturating_sub(epoch_secs().saturating_sub(row.last_seen));
        let mut item = json!({
            "id": plane.handle.id,
            "hostname": plane.handle.hostname,
            "ip": plane.handle.proxy_addr.ip().to_string(),
            "version": match self.version {
                KongVersion::V28 => "2.8.5",
                KongVersion::V3 => "3.9.3",
            },
            "config_hash": row.config_hash,
            "last_seen": row.last_seen,
            "sync_status": "normal",
            "ttl": ttl,
        });
        if self.version == KongVersion::V3 {
            item["updated_at"] = json!(row.last_seen);
            item["labels"] = json!({});
            item["rpc_capabilities"] = json!([]);
            item["cert_details"] = json!({ "expiry_timestamp": self.cert_expiry });
        }
        item
    }

    /// `GET /clustering/data-planes`.
    pub(crate) fn data_planes_body(&self) -> Value {
        let data: Vec<Value> = self.planes.iter().map(|p| self.row_json(p)).collect();
        json!({ "data": data, "next": null })
    }

    /// `GET /clustering/status` (answered with `Deprecation: true`).
    pub(crate) fn status_body(&self) -> Value {
        let mut out = Map::new();
        for plane in &self.planes {
            let row = lock(&plane.row).clone();
            out.insert(
                plane.handle.id.clone(),
                json!({
                    "config_hash": row.config_hash,
                    "hostname": plane.handle.hostname,
                    "ip": plane.handle.proxy_addr.ip().to_string(),
                    "last_seen": row.last_seen,
                }),
            );
        }
        Value::Object(out)
    }

    /// The address the control plane's `GET /` reports as `cluster_listen`.
    pub(crate) fn cluster_listen(&self) -> &'static str {
        "127.0.0.1:8005"
    }
}

/// The hash of a configuration's content: identical content gives an identical hash.
pub(crate) fn config_hash(config: &Config) -> String {
    let tables: Vec<Value> = ["services", "routes", "upstreams", "targets"]
        .iter()
        .map(|t| Value::Array(config.table(t).values().map(canonical).collect()))
        .collect();
    let text = Value::Array(tables).to_string();
    hex::encode(<md5::Md5 as md5::Digest>::digest(text.as_bytes()))
}

/// `v` with every object's keys sorted.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn not_found() -> Response<Body> {
    h::json(StatusCode::NOT_FOUND, &json!({ "message": "Not found" }))
}

/// A data plane's Status API: `/status` (with `configuration_hash`), `/status/ready` (3.x),
/// `/upstreams/{u}/health` and `/upstreams/{u}/targets`; every other path and every write
/// answers 404 (kong-admin-api.md §10).
async fn status_api(node: Arc<Node>, req: Request<Incoming>) -> Result<Response<Body>, HangUp> {
    node.shared
        .counters(0)
        .requests
        .fetch_add(1, Ordering::Relaxed);
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let balancer_health = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(k, v)| k == "balancer_health" && !matches!(v.as_ref(), "" | "0" | "false"))
    });
    let segments: Vec<String> = req
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let version = node.shared.profile.version();
    let mut resp = match seg.as_slice() {
        ["status"] if get => h::json(StatusCode::OK, &status_body(&node)),
        ["status", "ready"] if get && version == KongVersion::V3 => {
            h::json(StatusCode::OK, &json!({ "message": "ready" }))
        }
        ["upstreams", u, "health"] if get => {
            let config = node.shared.store.current();
            match config.find("upstreams", u) {
                Some(up) => {
                    let body = node.health_body(up, &config, balancer_health).await;
                    h::json(StatusCode::OK, &body)
                }
                None => not_found(),
            }
        }
        ["upstreams", u, "targets"] if get => {
            let config = node.shared.store.current();
            match config.find("upstreams", u) {
                Some(up) => {
                    let id = up["id"].as_str().unwrap_or_default();
                    let mut list: Vec<&Value> = config.targets_of(id).collect();
                    sort_newest_first(&mut list);
                    let data: Vec<Value> = list.into_iter().cloned().collect();
                    h::json(StatusCode::OK, &json!({ "data": data, "next": null }))
                }
                None => not_found(),
            }
        }
        _ => not_found(),
    };
    let server = format!("kong/{}", node.shared.profile.version_string());
    if let Ok(v) = http::HeaderValue::from_str(&server) {
        resp.headers_mut().insert(http::header::SERVER, v);
    }
    Ok(resp)
}

fn status_body(node: &Node) -> Value {
    let total = node.shared.counters(0).requests.load(Ordering::Relaxed);
    json!({
        "server": {
            "connections_active": 1,
            "connections_reading": 0,
            "connections_writing": 1,
            "connections_waiting": 0,
            "connections_accepted": total,
            "connections_handled": total,
            "total_requests": total,
        },
        "memory": {
            "workers_lua_vms": [{ "pid": std::process::id(), "http_allocated_gc": "55.00 MiB" }],
            "lua_shared_dicts": {
                "kong": { "capacity": "5.00 MiB", "allocated_slabs": "0.04 MiB" },
                "kong_healthchecks": { "capacity": "5.00 MiB", "allocated_slabs": "0.05 MiB" },
            },
        },
        "configuration_hash": node
            .shared
            .store
            .config_hash()
            .unwrap_or_else(|| NO_CONFIG_HASH.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_content_gives_an_identical_hash_whatever_the_key_order() {
        let mut a = Config::default();
        a.services.insert(
            "s1".into(),
            json!({ "id": "s1", "name": "bg", "host": "bg-blue" }),
        );
        let mut b = Config::default();
        b.services.insert(
            "s1".into(),
            json!({ "host": "bg-blue", "name": "bg", "id": "s1" }),
        );
        assert_eq!(config_hash(&a), config_hash(&b));
        b.services.insert(
            "s1".into(),
            json!({ "host": "bg-green", "name": "bg", "id": "s1" }),
        );
        assert_ne!(config_hash(&a), config_hash(&b));
        assert_eq!(config_hash(&a).len(), 32);
    }
}
