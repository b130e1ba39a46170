//! One Kong node's in-memory state: its router snapshot, its balancers, and the health of every
//! address (active probes and passive observations). Kept apart from the store and from the
//! Admin API server so that a data plane could later be "a node without an Admin API".

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::router::Router;
use super::schema::{self, healthchecks_enabled};
use super::store::{Config, View};
use super::{KongVersion, Shared};

/// The pooled HTTP client used by the proxy.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Health of one address in this node's balancer.
#[derive(Debug, Clone, Default)]
struct AddrHealth {
    unhealthy: bool,
    successes: u32,
    http_failures: u32,
    tcp_failures: u32,
    timeouts: u32,
    last_probe: Option<Instant>,
    probing: bool,
}

/// What a health check (active or passive) observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Status(u16),
    TcpFailure,
    Timeout,
}

/// One resolved address of a target.
#[derive(Debug, Clone)]
pub(crate) struct Address {
    /// Kong's display form (`127.0.0.1`, `[0000:...:0001]`).
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) sock: SocketAddr,
    pub(crate) weight: u64,
}

impl Address {
    /// Health-table key.
    pub(crate) fn key(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// A target as this node's balancer sees it.
#[derive(Debug, Clone)]
pub(crate) struct TargetView {
    pub(crate) entity: Value,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) weight: u64,
    pub(crate) dns: Result<(&'static str, Vec<Address>), String>,
}

/// An upstream with its targets as this node's balancer sees it.
#[derive(Debug, Clone)]
pub(crate) struct BalancerView {
    pub(crate) upstream: Value,
    pub(crate) targets: Vec<TargetView>,
}

impl BalancerView {
    /// Upstream name.
    pub(crate) fn name(&self) -> &str {
        self.upstream["name"].as_str().unwrap_or_default()
    }
}

/// A cached DNS answer and when it was fetched.
type CachedLookup = (Instant, Result<Vec<IpAddr>, String>);

/// One node.
pub(crate) struct Node {
    pub(crate) index: usize,
    pub(crate) node_id: String,
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: HttpClient,
    probe_client: HttpClient,
    router: Mutex<Arc<Router>>,
    router_built: Mutex<Instant>,
    /// Upstream id → instant from which its balancer exists.
    balancers: Mutex<HashMap<String, Instant>>,
    /// (upstream name, `ip:port`) → health. Keyed by name on purpose: a re-created upstream
    /// inherits its targets' health, as on real Kong.
    health: Mutex<HashMap<(String, String), AddrHealth>>,
    /// Smooth weighted round-robin state per upstream id.
    wheels: Mutex<HashMap<String, HashMap<String, i64>>>,
    dns: Mutex<HashMap<String, CachedLookup>>,
    pub(crate) shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Node {
    /// A node over the shared store.
    pub(crate) fn new(index: usize, shared: Arc<Shared>, shutdown: CancellationToken) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector.clone());
        let probe_client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        let view = shared
            .store
            .visible(index, shared.knobs.db_update_frequency);
        let router = Arc::new(Router::build(view.seq, view.config));
        Self {
            index,
            node_id: uuid::Uuid::new_v4().to_string(),
            shared,
            client,
            probe_client,
            router: Mutex::new(router),
            router_built: Mutex::new(Instant::now()),
            balancers: Mutex::new(HashMap::new()),
            health: Mutex::new(HashMap::new()),
            wheels: Mutex::new(HashMap::new()),
            dns: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    fn version(&self) -> KongVersion {
        self.shared.profile.version()
    }

    /// Router changes wait for the background rebuild (3.x traditional, `worker_consistency =
    /// eventual`); 2.8 (strict) and DB-less `/config` loads apply on the next request.
    fn eventual(&self) -> bool {
        self.version() == KongVersion::V3 && !self.shared.profile.is_dbless()
    }

    /// The configuration this node's proxy and balancers see.
    pub(crate) fn view(&self) -> View {
        self.shared
            .store
            .visible(self.index, self.shared.knobs.db_update_frequency)
    }

    /// The router snapshot for the next request.
    pub(crate) fn router(&self) -> Arc<Router> {
        if !self.eventual() {
            let view = self.view();
            let mut router = lock(&self.router);
            if router.seq != view.seq {
                *router = Arc::new(Router::build(view.seq, view.config));
            }
            return Arc::clone(&router);
        }
        Arc::clone(&lock(&self.router))
    }

    /// Background work, run every few milliseconds: the 3.x router timer, balancer creation,
    /// active health checks.
    pub(crate) async fn run(self: Arc<Self>) {
        let tick = Duration::from_millis(20);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
            let view = self.view();
            if self.eventual() {
                let due = lock(&self.router_built).elapsed() >= self.shared.knobs.router_delay;
                if due {
                    *lock(&self.router_built) = Instant::now();
                    let mut router = lock(&self.router);
                    if router.seq != view.seq {
                        *router = Arc::new(Router::build(view.seq, Arc::clone(&view.config)));
                    }
                }
            }
            self.sync_balancers(&view.config);
            self.schedule_probes(&view.config).await;
        }
    }

    /// Registers balancers for new upstreams and forgets deleted ones.
    pub(crate) fn sync_balancers(&self, config: &Config) {
        if self.shared.is_control_plane() {
            // A hybrid control plane has no balancers: health lives on the data planes.
            return;
        }
        let delay = if self.eventual() {
            self.shared.knobs.balancer_delay
        } else {
            Duration::ZERO
        };
        let now = Instant::now();
        let mut balancers = lock(&self.balancers);
        balancers.retain(|id, _| config.upstreams.contains_key(id));
        for id in config.upstreams.keys() {
            balancers.entry(id.clone()).or_insert(now + delay);
        }
    }

    /// Whether the balancer of `upstream_id` exists yet (3.x creates it in the background).
    pub(crate) fn has_balancer(&self, upstream_id: &str) -> bool {
        self.sync_balancers(&self.view().config);
        lock(&self.balancers)
            .get(upstream_id)
            .is_some_and(|ready| *ready <= Instant::now())
    }

    /// The proxy path creates a missing balancer at once.
    pub(crate) fn ensure_balancer(&self, upstream_id: &str) {
        let now = Instant::now();
        let mut balancers = lock(&self.balancers);
        let ready = balancers.entry(upstream_id.to_owned()).or_insert(now);
        if *ready > now {
            *ready = now;
        }
    }

    /// Resolves a host name like Kong's resolver (A records first), with a small cache.
    pub(crate) async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if let Some((at, result)) = lock(&self.dns).get(host) {
            let ttl = if result.is_ok() {
                Duration::from_secs(30)
            } else {
                Duration::from_secs(1)
            };
            if at.elapsed() < ttl {
                return result.clone();
            }
        }
        let lookup = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::lookup_host((host.to_owned(), 0)),
        )
        .await;
        let result = match lookup {
            Ok(Ok(addrs)) => {
                let all: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                let v4: Vec<IpAddr> = all.iter().copied().filter(IpAddr::is_ipv4).collect();
                let mut chosen = if v4.is_empty() { all } else { v4 };
                chosen.dedup();
                if chosen.is_empty() {
                    Err("dns server error: 3 name error".to_owned())
                } else {
                    Ok(chosen)
                }
            }
            _ => Err("dns server error: 3 name error".to_owned()),
        };
        lock(&self.dns).insert(host.to_owned(), (Instant::now(), result.clone()));
        result
    }

    /// Builds the balancer view of an upstream from a configuration.
    pub(crate) async fn balancer_view(&self, config: &Config, upstream: &Value) -> BalancerView {
        let id = upstream["id"].as_str().unwrap_or_default();
        let mut targets = Vec::new();
        for entity in config.targets_of(id) {
            let address = entity["target"].as_str().unwrap_or_default();
            let Some((host, port)) = schema::split_host_port(address) else {
                continue;
            };
            let port = port.unwrap_or(8000).min(65535) as u16;
            let weight = entity["weight"].as_u64().unwrap_or(0);
            let dns = match self.resolve(&host).await {
                Ok(ips) => {
                    let record = if ips.iter().all(IpAddr::is_ipv6) {
                        "AAAA"
                    } else {
                        "A"
                    };
                    let addrs = ips
                        .into_iter()
                        .map(|ip| Address {
                            ip: display_ip(ip),
                            port,
                            sock: SocketAddr::new(ip, port),
                            weight,
                        })
                        .collect();
                    Ok((record, addrs))
                }
                Err(e) => Err(e),
            };
            targets.push(TargetView {
                entity: entity.clone(),
                host,
                port,
                weight,
                dns,
            });
        }
        BalancerView {
            upstream: upstream.clone(),
            targets,
        }
    }

    /// Reported health of one address: `HEALTHY`, `UNHEALTHY` or `HEALTHCHECKS_OFF`.
    pub(crate) fn address_health(&self, view: &BalancerView, addr: &Address) -> &'static str {
        if !healthchecks_enabled(&view.upstream) {
            return "HEALTHCHECKS_OFF";
        }
        if addr.weight == 0 && self.version() == KongVersion::V3 {
            return "HEALTHCHECKS_OFF";
        }
        let key = (view.name().to_owned(), addr.key());
        match lock(&self.health).get(&key) {
            Some(h) if h.unhealthy => "UNHEALTHY",
            _ => "HEALTHY",
        }
    }

    /// Whether the proxy may send traffic to `addr`.
    pub(crate) fn routable(&self, view: &BalancerView, addr: &Address) -> bool {
        addr.weight > 0 && self.address_health(view, addr) != "UNHEALTHY"
    }

    /// Picks the next peer by smooth weighted round-robin, skipping `exclude`d addresses.
    pub(crate) fn pick(&self, view: &BalancerView, exclude: &[String]) -> Option<Address> {
        let candidates: Vec<Address> = view
            .targets
            .iter()
            .filter_map(|t| t.dns.as_ref().ok())
            .flat_map(|(_, addrs)| addrs.iter().cloned())
            .filter(|a| self.routable(view, a) && !exclude.contains(&a.key()))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let id = view.upstream["id"].as_str().unwrap_or_default().to_owned();
        let mut wheels = lock(&self.wheels);
        let wheel = wheels.entry(id).or_default();
        wheel.retain(|k, _| candidates.iter().any(|c| &c.key() == k));
        let total: i64 = candidates.iter().map(|c| c.weight as i64).sum();
        let mut best: Option<(usize, i64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let current = wheel.entry(c.key()).or_insert(0);
            *current += c.weight as i64;
            if best.is_none_or(|(_, w)| *current > w) {
                best = Some((i, *current));
            }
        }
        let (i, _) = best?;
        if let Some(current) = wheel.get_mut(&candidates[i].key()) {
            *current -= total;
        }
        Some(candidates[i].clone())
    }

    /// Records an observation for `addr` (active or passive), flipping the state when a
    /// threshold is reached, like lua-resty-healthcheck.
    pub(crate) fn report(&self, upstream: &Value, addr_key: &str, outcome: Outcome, active: bool) {
        if !healthchecks_enabled(upstream) {
            return;
        }
        let kind = if active { "active" } else { "passive" };
        let hc = &upstream["healthchecks"][kind];
        let has = |list: &Value, code: u16| {
            list.as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_u64() == Some(u64::from(code))))
        };
        let limit = |v: &Value| v.as_u64().unwrap_or(0) as u32;
        let name = upstream["name"].as_str().unwrap_or_default().to_owned();
        let mut health = lock(&self.health);
        let h = health.entry((name, addr_key.to_owned())).or_default();
        let success =
            matches!(outcome, Outcome::Status(code) if has(&hc["healthy"]["http_statuses"], code));
        if success {
            h.http_failures = 0;
            h.tcp_failures = 0;
            h.timeouts = 0;
            if h.unhealthy {
                h.successes += 1;
                let need = limit(&hc["healthy"]["successes"]);
                if need > 0 && h.successes >= need {
                    h.unhealthy = false;
                    h.successes = 0;
                }
            }
            return;
        }
        let (counter, need) = match outcome {
            Outcome::Status(code) if has(&hc["unhealthy"]["http_statuses"], code) => (
                &mut h.http_failures,
                limit(&hc["unhealthy"]["http_failures"]),
            ),
            Outcome::Status(_) => return,
            Outcome::TcpFailure => (&mut h.tcp_failures, limit(&hc["unhealthy"]["tcp_failures"])),
            Outcome::Timeout => (&mut h.timeouts, limit(&hc["unhealthy"]["timeouts"])),
        };
        *counter += 1;
        let reached = need > 0 && *counter >= need;
        h.successes = 0;
        if reached && !h.unhealthy {
            h.unhealthy = true;
            h.http_failures = 0;
            h.tcp_failures = 0;
            h.timeouts = 0;
        }
    }

    /// Manual `healthy` / `unhealthy` mark (not persisted; other nodes get it later).
    pub(crate) fn mark(&self, upstream_name: &str, addr_keys: &[String], healthy: bool) {
        let mut health = lock(&self.health);
        for key in addr_keys {
            let h = health
                .entry((upstream_name.to_owned(), key.clone()))
                .or_default();
            *h = AddrHealth {
                unhealthy: !healthy,
                last_probe: h.last_probe,
                ..AddrHealth::default()
            };
        }
    }

    async fn schedule_probes(self: &Arc<Self>, config: &Config) {
        let now = Instant::now();
        for upstream in config.upstreams.values() {
            let active = &upstream["healthchecks"]["active"];
            let healthy_every = active["healthy"]["interval"].as_f64().unwrap_or(0.0);
            let unhealthy_every = active["unhealthy"]["interval"].as_f64().unwrap_or(0.0);
            if healthy_every <= 0.0 && unhealthy_every <= 0.0 {
                continue;
            }
            let id = upstream["id"].as_str().unwrap_or_default();
            let ready = lock(&self.balancers).get(id).is_some_and(|r| *r <= now);
            if !ready {
                continue;
            }
            let view = self.balancer_view(config, upstream).await;
            for target in &view.targets {
                let Ok((_, addrs)) = &target.dns else {
                    continue;
                };
                for addr in addrs {
                    // Neither version actively checks a weight-0 address: 3.x reports it
                    // HEALTHCHECKS_OFF, 2.8 keeps reporting the state of its last check
                    // (HEALTHY if never checked), even after the backend died, until its weight
                    // is raised and the next check runs (real 2.8.5, issue 11 finding 4).
                    if addr.weight == 0 {
                        continue;
                    }
                    let key = (view.name().to_owned(), addr.key());
                    let due = {
                        let mut health = lock(&self.health);
                        let h = health.entry(key).or_default();
                        let every = if h.unhealthy {
                            unhealthy_every
                        } else {
                            healthy_every
                        };
                        let due = every > 0.0
                            && !h.probing
                            && h.last_probe
                                .is_none_or(|t| t.elapsed().as_secs_f64() >= every);
                        if due {
                            h.probing = true;
                            h.last_probe = Some(now);
                        }
                        due
                    };
                    if due {
                        let node = Arc::clone(self);
                        let upstream = upstream.clone();
                        let addr = addr.clone();
                        let host = target.host.clone();
                        tokio::spawn(async move { node.probe(upstream, addr, host).await });
                    }
                }
            }
        }
    }

    async fn probe(self: Arc<Self>, upstream: Value, addr: Address, host: String) {
        let active = &upstream["healthchecks"]["active"];
        let timeout = Duration::from_secs_f64(active["timeout"].as_f64().unwrap_or(1.0).max(0.001));
        let kind = active["type"].as_str().unwrap_or("http");
        let outcome = if kind == "http" || kind == "https" {
            let path = active["http_path"].as_str().unwrap_or("/");
            let uri = format!("http://{}{}", addr.sock, path);
            let host_header = if addr.port == 80 {
                host
            } else {
                format!("{host}:{}", addr.port)
            };
            let mut builder = hyper::Request::get(uri).header(http::header::HOST, host_header);
            if let Some(headers) = active["headers"].as_object() {
                for (name, values) in headers {
                    for v in values
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        builder = builder.header(name.as_str(), v);
                    }
                }
            }
            match builder.body(Full::new(Bytes::new())) {
                Ok(req) => {
                    match tokio::time::timeout(timeout, self.probe_client.request(req)).await {
                        Ok(Ok(resp)) => {
                            let status = resp.status().as_u16();
                            let _ = resp.into_body().collect().await;
                            Outcome::Status(status)
                        }
                        Ok(Err(_)) => Outcome::TcpFailure,
                        Err(_) => Outcome::Timeout,
                    }
                }
                Err(_) => Outcome::TcpFailure,
            }
        } else {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr.sock)).await {
                Ok(Ok(_)) => Outcome::Status(200),
                Ok(Err(_)) => Outcome::TcpFailure,
                Err(_) => Outcome::Timeout,
            }
        };
        self.report(&upstream, &addr.key(), outcome, true);
        let name = upstream["name"].as_str().unwrap_or_default().to_owned();
        if let Some(h) = lock(&self.health).get_mut(&(name, addr.key())) {
            h.probing = false;
        }
    }

    /// `GET /upstreams/{u}/health` body for this node.
    pub(crate) async fn health_body(
        &self,
        upstream: &Value,
        db: &Config,
        balancer_health: bool,
    ) -> Value {
        let id = upstream["id"].as_str().unwrap_or_default();
        let view_cfg = self.view().config;
        let has_balancer = self.has_balancer(id);
        if balancer_health {
            if !has_balancer {
                return json!({ "next": null, "node_id": self.node_id });
            }
            let live = view_cfg
                .upstreams
                .get(id)
                .cloned()
                .unwrap_or_else(|| upstream.clone());
            let view = self.balancer_view(&view_cfg, &live).await;
            return json!({
                "data": self.balancer_health(&view),
                "next": null,
                "node_id": self.node_id,
            });
        }
        let mut entries: Vec<&Value> = db.targets_of(id).collect();
        sort_newest_first(&mut entries);
        if !has_balancer {
            let data: Vec<Value> = entries.into_iter().cloned().collect();
            return json!({ "data": data, "next": null, "node_id": self.node_id });
        }
        let live = view_cfg
            .upstreams
            .get(id)
            .cloned()
            .unwrap_or_else(|| upstream.clone());
        let view = self.balancer_view(&view_cfg, &live).await;
        let mut data = Vec::new();
        for entity in entries {
            let mut item = entity.clone();
            let seen = view.targets.iter().find(|t| t.entity["id"] == entity["id"]);
            match seen {
                Some(target) => {
                    let (health, detail) = self.target_health(&view, target);
                    item["health"] = json!(health);
                    item["data"] = detail;
                }
                None => item["health"] = json!("HEALTHCHECKS_OFF"),
            }
            data.push(item);
        }
        json!({ "data": data, "next": null, "node_id": self.node_id })
    }

    fn target_health(&self, view: &BalancerView, target: &TargetView) -> (&'static str, Value) {
        match &target.dns {
            Err(e) => (
                "DNS_ERROR",
                json!({
                    "host": target.host,
                    "port": target.port,
                    "dns": e,
                    "nodeWeight": target.weight,
                    "weight": { "total": 0, "available": 0, "unavailable": 0 },
                    "addresses": {},
                }),
            ),
            Ok((record, addrs)) => {
                let mut list = Vec::new();
                let (mut total, mut available, mut unavailable) = (0, 0, 0);
                let mut any_healthy = false;
                let mut any_unhealthy = false;
                for a in addrs {
                    let h = self.address_health(view, a);
                    total += a.weight;
                    if h == "UNHEALTHY" {
                        unavailable += a.weight;
                        any_unhealthy = true;
                    } else {
                        available += a.weight;
                    }
                    any_healthy |= h == "HEALTHY";
                    list.push(
                        json!({ "ip": a.ip, "port": a.port, "weight": a.weight, "health": h }),
                    );
                }
                let health = if any_healthy {
                    "HEALTHY"
                } else if any_unhealthy {
                    "UNHEALTHY"
                } else {
                    "HEALTHCHECKS_OFF"
                };
                let data = json!({
                    "host": target.host,
                    "port": target.port,
                    "dns": record,
                    "nodeWeight": total,
                    "weight": { "total": total, "available": available, "unavailable": unavailable },
                    "addresses": list,
                });
                (health, data)
            }
        }
    }

    fn balancer_health(&self, view: &BalancerView) -> Value {
        let enabled = healthchecks_enabled(&view.upstream);
        let (mut total, mut available, mut unavailable) = (0u64, 0u64, 0u64);
        let mut hosts = Vec::new();
        for target in &view.targets {
            let (_, detail) = self.target_health(view, target);
            let addrs: Vec<Value> = match &target.dns {
                Ok((_, addrs)) => addrs
                    .iter()
                    .map(|a| {
                        json!({
                            "ip": a.ip,
                            "port": a.port,
                            "weight": a.weight,
                            "healthy": self.address_health(view, a) != "UNHEALTHY",
                        })
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            total += detail["weight"]["total"].as_u64().unwrap_or(0);
            available += detail["weight"]["available"].as_u64().unwrap_or(0);
            unavailable += detail["weight"]["unavailable"].as_u64().unwrap_or(0);
            let mut host = detail;
            host["addresses"] = Value::Array(addrs);
            hosts.push(host);
        }
        let threshold = view.upstream["healthchecks"]["threshold"]
            .as_f64()
            .unwrap_or(0.0);
        let healthy = available > 0 && (available as f64) * 100.0 >= threshold * (total as f64);
        let word = if healthy { "HEALTHY" } else { "UNHEALTHY" };
        // An upstream without targets has an empty Lua table of hosts, which Kong's cjson
        // writes as `{}` (like a DNS_ERROR target's `addresses`, proxy-errors.txt); diffs
        // health.off.empty-upstream: 3.9.3 answers `balancer_health: UNHEALTHY` and empty
        // details.
        let hosts = if hosts.is_empty() {
            json!({})
        } else {
            Value::Array(hosts)
        };
        let details = json!({
            "healthy": healthy,
            "hosts": hosts,
            "weight": { "total": total, "available": available, "unavailable": unavailable },
        });
        let id = view.upstream["id"].clone();
        match self.version() {
            KongVersion::V28 if !enabled => json!({ "id": id, "health": "HEALTHCHECKS_OFF" }),
            KongVersion::V28 => json!({ "id": id, "health": word, "details": details }),
            KongVersion::V3 => json!({
                "id": id,
                "health": if enabled { word } else { "HEALTHCHECKS_OFF" },
                "balancer_health": word,
                "details": details,
            }),
        }
    }
}

/// Kong's display form of an address: IPv6 expanded and bracketed.
fn display_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:04x}")).collect();
            format!("[{}]", groups.join(":"))
        }
    }
}

/// Targets listing order: newest first (ties by id).
pub(crate) fn sort_newest_first(list: &mut [&Value]) {
    list.sort_by(|a, b| {
        let ca = a["created_at"].as_f64().unwrap_or(0.0);
        let cb = b["created_at"].as_f64().unwrap_or(0.0);
        cb.total_cmp(&ca)
            .then_with(|| b["id"].as_str().cmp(&a["id"].as_str()))
    });
}
