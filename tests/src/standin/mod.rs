//! A faithful Kong Gateway stand-in: Admin API, proxy, active and passive health checks, one or
//! more nodes over one shared configuration store, fault injection and a request log.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use kong_switch_tests::standin::{Profile, StandIn};
//!
//! let kong = StandIn::builder()
//!     .profile(Profile::V3)
//!     .router_delay(Duration::from_millis(200))
//!     .start()
//!     .await?;
//! println!("admin {} proxy {}", kong.admin_url(), kong.proxy_url());
//! kong.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: [`store`] is the shared "database"; `node` holds one node's router snapshot,
//! balancers and health (no server in it, so a hybrid data plane can later be a node without an
//! Admin API); `admin` and `proxy` are the two servers of a node.

mod admin;
mod control;
mod declarative;
mod entities;
mod errors;
mod faults;
pub(crate) mod http;
mod node;
mod proxy;
mod router;
mod schema;
mod store;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use faults::{Fault, FaultAction, FaultId, Faults, LoggedRequest, PathMatch, RequestLog};

use node::Node;
use store::Store;

/// Kong's default `worker_state_update_frequency` and `db_update_frequency` (seconds).
const KONG_DEFAULT_FREQUENCY: Duration = Duration::from_secs(5);

/// The Kong major behaviour being imitated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KongVersion {
    /// Kong 2.8.5 (`worker_consistency = strict`).
    V28,
    /// Kong 3.9.3 (`worker_consistency = eventual`).
    V3,
}

/// What the stand-in imitates: version and database mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Kong 2.8.5 on PostgreSQL.
    V28,
    /// Kong 3.9.3 on PostgreSQL.
    V3,
    /// Kong 2.8.5 in DB-less mode.
    DbLess28,
    /// Kong 3.9.3 in DB-less mode (what `dbless` means).
    DbLess3,
}

impl Profile {
    /// The version behaviour.
    pub fn version(self) -> KongVersion {
        match self {
            Profile::V28 | Profile::DbLess28 => KongVersion::V28,
            Profile::V3 | Profile::DbLess3 => KongVersion::V3,
        }
    }

    /// Whether entity writes are refused and `/config` is the only write.
    pub fn is_dbless(self) -> bool {
        matches!(self, Profile::DbLess28 | Profile::DbLess3)
    }

    /// The version string reported by `GET /` and the `Server` header.
    pub fn version_string(self) -> &'static str {
        match self.version() {
            KongVersion::V28 => "2.8.5",
            KongVersion::V3 => "3.9.3",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::V28 => "2.8",
            Profile::V3 => "3.x",
            Profile::DbLess28 => "dbless-2.8",
            Profile::DbLess3 => "dbless",
        })
    }
}

/// A profile name that is not one of `2.8`, `3.x`, `dbless`, `dbless-2.8`, `dbless-3.x`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown profile {0:?} (expected 2.8, 3.x, dbless, dbless-2.8 or dbless-3.x)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "2.8" | "2.8.5" | "2" => Ok(Profile::V28),
            "3.x" | "3" | "3.9" | "3.9.3" => Ok(Profile::V3),
            "dbless" | "dbless-3.x" | "dbless:3.x" | "dbless-3" | "dbless:3" => {
                Ok(Profile::DbLess3)
            }
            "dbless-2.8" | "dbless:2.8" => Ok(Profile::DbLess28),
            _ => Err(UnknownProfile(s.to_owned())),
        }
    }
}

/// Timing knobs. Defaults are Kong's; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// 3.x: period of the background router rebuild (`worker_state_update_frequency`,
    /// default 5 s). A service/route change reaches the proxy after up to this long. 2.8
    /// (strict) ignores it and only reports it.
    pub router_delay: Duration,
    /// 3.x: how long a new upstream has no balancer (`/health` lists bare targets, manual
    /// health marks answer "has no balancer") unless the proxy needs it first. Defaults to
    /// `router_delay`.
    pub balancer_delay: Duration,
    /// Delay before a write made on one node reaches the proxies, balancers and health marks of
    /// the other nodes (`db_update_frequency`, default 5 s).
    pub db_update_frequency: Duration,
}

impl Knobs {
    fn router_delay_reported(&self) -> Duration {
        self.router_delay
    }
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            router_delay: KONG_DEFAULT_FREQUENCY,
            balancer_delay: KONG_DEFAULT_FREQUENCY,
            db_update_frequency: KONG_DEFAULT_FREQUENCY,
        }
    }
}

/// Starting the stand-in failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The seed configuration is invalid (Kong's error body as JSON text).
    #[error("invalid seed configuration: {0}")]
    Seed(String),
}

#[derive(Debug, Default)]
struct NodeCounters {
    requests: AtomicU64,
}

/// State shared by every node of one stand-in.
pub(crate) struct Shared {
    pub(crate) profile: Profile,
    pub(crate) knobs: Knobs,
    pub(crate) store: Store,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    nodes: RwLock<Vec<Weak<Node>>>,
    counters: Vec<NodeCounters>,
    listen: RwLock<Vec<(String, String)>>,
    shutdown: CancellationToken,
}

impl Shared {
    fn counters(&self, node: usize) -> &NodeCounters {
        &self.counters[node.min(self.counters.len() - 1)]
    }

    fn listen_addrs(&self, node: usize) -> (String, String) {
        self.listen
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(node)
            .cloned()
            .unwrap_or_default()
    }

    /// A manual health mark reaches the other nodes after `db_update_frequency` (cluster event).
    fn broadcast_mark(&self, from: usize, upstream: String, keys: Vec<String>, healthy: bool) {
        let nodes: Vec<Arc<Node>> = self
            .nodes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|n| n.index != from)
            .collect();
        for node in nodes {
            let delay = self.knobs.db_update_frequency;
            let (upstream, keys) = (upstream.clone(), keys.clone());
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(delay) => node.mark(&upstream, &keys, healthy),
                }
            });
        }
    }
}

/// Addresses of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHandle {
    index: usize,
    node_id: String,
    admin_addr: SocketAddr,
    proxy_addr: SocketAddr,
}

impl NodeHandle {
    /// Position of the node (0 = first).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The node's `node_id` (as in `GET /` and `/health`).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Admin API address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Proxy address.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    /// Admin API base URL, e.g. `http://127.0.0.1:40001` (no trailing slash).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// Proxy base URL (no trailing slash).
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }
}

/// Configures and starts a [`StandIn`].
#[derive(Debug, Clone)]
#[must_use]
pub struct StandInBuilder {
    profile: Profile,
    router_delay: Option<Duration>,
    balancer_delay: Option<Duration>,
    db_update_frequency: Option<Duration>,
    nodes: usize,
    admin_listen: Option<SocketAddr>,
    proxy_listen: Option<SocketAddr>,
    seed: Option<Value>,
}

impl Default for StandInBuilder {
    fn default() -> Self {
        Self {
            profile: Profile::V3,
            router_delay: None,
            balancer_delay: None,
            db_update_frequency: None,
            nodes: 1,
            admin_listen: None,
            proxy_listen: None,
            seed: None,
        }
    }
}

impl StandInBuilder {
    /// Which Kong to imitate (default [`Profile::V3`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// 3.x router rebuild period (`worker_state_update_frequency`; default 5 s).
    pub fn router_delay(mut self, delay: Duration) -> Self {
        self.router_delay = Some(delay);
        self
    }

    /// 3.x new-upstream balancer delay (default: the router delay).
    pub fn balancer_delay(mut self, delay: Duration) -> Self {
        self.balancer_delay = Some(delay);
        self
    }

    /// Propagation delay to other nodes (`db_update_frequency`; default 5 s).
    pub fn db_update_frequency(mut self, delay: Duration) -> Self {
        self.db_update_frequency = Some(delay);
        self
    }

    /// Number of nodes sharing the store (default 1).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n.max(1);
        self
    }

    /// Admin API address of node 0 (default `127.0.0.1:0`). Node `i` uses port + 100·i.
    pub fn admin_listen(mut self, addr: SocketAddr) -> Self {
        self.admin_listen = Some(addr);
        self
    }

    /// Proxy address of node 0 (default `127.0.0.1:0`). Node `i` uses port + 100·i.
    pub fn proxy_listen(mut self, addr: SocketAddr) -> Self {
        self.proxy_listen = Some(addr);
        self
    }

    /// Initial configuration in Kong's declarative format (`_format_version`, `services` with
    /// nested `routes`, `upstreams` with nested `targets`), loaded before the servers start.
    pub fn seed(mut self, config: Value) -> Self {
        self.seed = Some(config);
        self
    }

    /// The knobs this builder will use.
    pub fn knobs(&self) -> Knobs {
        let router_delay = self.router_delay.unwrap_or(KONG_DEFAULT_FREQUENCY);
        Knobs {
            router_delay,
            balancer_delay: self.balancer_delay.unwrap_or(router_delay),
            db_update_frequency: self.db_update_frequency.unwrap_or(KONG_DEFAULT_FREQUENCY),
        }
    }

    /// Binds every listener and starts the nodes.
    pub async fn start(self) -> Result<StandIn, StartError> {
        let knobs = self.knobs();
        let keep = knobs.db_update_frequency + Duration::from_secs(1);
        let store = match &self.seed {
            None => Store::new(keep),
            Some(seed) => {
                let doc = seed.as_object().cloned().unwrap_or_default();
                let config = declarative::load(&doc, self.profile.version())
                    .map_err(|e| StartError::Seed(e.body.to_string()))?;
                let store = Store::new(keep);
                let hash = hex::encode(<md5::Md5 as md5::Digest>::digest(
                    seed.to_string().as_bytes(),
                ));
                store.replace(usize::MAX, config, hash);
                store.settle();
                store
            }
        };
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            profile: self.profile,
            knobs,
            store,
            faults: Faults::default(),
            log: RequestLog::default(),
            nodes: RwLock::new(Vec::new()),
            counters: (0..self.nodes).map(|_| NodeCounters::default()).collect(),
            listen: RwLock::new(Vec::new()),
            shutdown: shutdown.clone(),
        });
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut handles = Vec::new();
        let mut tasks = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..self.nodes {
            let admin_addr = offset_port(self.admin_listen.unwrap_or(loopback), i);
            let proxy_addr = offset_port(self.proxy_listen.unwrap_or(loopback), i);
            let admin_listener =
                http::bind(admin_addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: admin_addr,
                        source,
                    })?;
            let proxy_listener =
                http::bind(proxy_addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: proxy_addr,
                        source,
                    })?;
            let admin_addr = admin_listener.local_addr().unwrap_or(admin_addr);
            let proxy_addr = proxy_listener.local_addr().unwrap_or(proxy_addr);
            shared
                .listen
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((admin_addr.to_string(), proxy_addr.to_string()));
            let node = Arc::new(Node::new(i, Arc::clone(&shared), shutdown.clone()));
            handles.push(NodeHandle {
                index: i,
                node_id: node.node_id.clone(),
                admin_addr,
                proxy_addr,
            });
            tasks.push(tokio::spawn(Arc::clone(&node).run()));
            let admin_node = Arc::clone(&node);
            tasks.push(http::spawn_server(
                admin_listener,
                shutdown.clone(),
                false,
                move |req, _peer| admin::handle(Arc::clone(&admin_node), req),
            ));
            let proxy_node = Arc::clone(&node);
            tasks.push(http::spawn_server(
                proxy_listener,
                shutdown.clone(),
                false,
                move |req, peer| proxy::handle(Arc::clone(&proxy_node), req, peer),
            ));
            nodes.push(node);
        }
        *shared
            .nodes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            nodes.iter().map(Arc::downgrade).collect();
        Ok(StandIn {
            shared,
            nodes: handles,
            node_refs: nodes,
            shutdown,
            tasks,
        })
    }
}

fn offset_port(addr: SocketAddr, i: usize) -> SocketAddr {
    if addr.port() == 0 || i == 0 {
        return addr;
    }
    let port = u16::try_from(usize::from(addr.port()) + 100 * i).unwrap_or(0);
    SocketAddr::new(addr.ip(), port)
}

/// A running stand-in. Dropping it stops every server and background task.
pub struct StandIn {
    shared: Arc<Shared>,
    nodes: Vec<NodeHandle>,
    node_refs: Vec<Arc<Node>>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandIn")
            .field("profile", &self.shared.profile)
            .field("knobs", &self.shared.knobs)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl StandIn {
    /// A builder with Kong's defaults (profile 3.x, one node).
    pub fn builder() -> StandInBuilder {
        StandInBuilder::default()
    }

    /// Starts one node of `profile` with Kong's default timings.
    pub async fn start(profile: Profile) -> Result<StandIn, StartError> {
        Self::builder().profile(profile).start().await
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.shared.profile
    }

    /// The timing knobs in effect.
    pub fn knobs(&self) -> Knobs {
        self.shared.knobs
    }

    /// Admin API URL of node 0.
    pub fn admin_url(&self) -> String {
        self.nodes[0].admin_url()
    }

    /// Proxy URL of node 0.
    pub fn proxy_url(&self) -> String {
        self.nodes[0].proxy_url()
    }

    /// Every node.
    pub fn nodes(&self) -> &[NodeHandle] {
        &self.nodes
    }

    /// Node `i`. Panics if out of range (a test bug).
    pub fn node(&self, i: usize) -> &NodeHandle {
        &self.nodes[i]
    }

    /// Fault rules (shared by all nodes' Admin APIs).
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The log of Admin API requests (all nodes).
    pub fn log(&self) -> &RequestLog {
        &self.shared.log
    }

    /// Serves the control endpoint (faults and log over HTTP) on `addr`; returns the bound
    /// address. See the binary's `--help` for the routes.
    pub async fn serve_control(&mut self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = http::bind(addr).await?;
        let local = listener.local_addr()?;
        let faults = self.shared.faults.clone();
        let log = self.shared.log.clone();
        self.tasks.push(http::spawn_server(
            listener,
            self.shutdown.clone(),
            false,
            move |req, _| control::handle(faults.clone(), log.clone(), req),
        ));
        Ok(local)
    }

    /// Stops every server and task and waits for them.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.node_refs.clear();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
