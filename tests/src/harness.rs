//! End-to-end test environment: the stand-in by default, a real Kong when the environment
//! names one.
//!
//! Environment (each suite's use is listed in README "Running the tests"):
//! - `KONG_ADMIN_URL` / `KONG_PROXY_URL`: a real database-backed (traditional) Kong node
//!   (proxy default `http://localhost:8000`). [`Env::start`] and [`Env::start_with`] use it.
//! - `KONG_DBLESS_ADMIN_URL` / `KONG_DBLESS_PROXY_URL`: a real DB-less node (proxy default
//!   `http://localhost:8000`). [`Env::dbless_with`] uses it; tests seed it through
//!   `POST /config` ([`Env::load_config`]).
//! - `KONG_NODE2_ADMIN_URL` / `KONG_NODE2_PROXY_URL`: a second traditional node on the same
//!   database as `KONG_ADMIN_URL` ([`Env::node2`]).
//! - `KONG_CP_ADMIN_URL`, `KONG_DP_PROXY_URLS`, `KONG_DP_STATUS_URLS`: a hybrid control plane
//!   and its data planes' proxies and Status APIs (comma-separated, in the same order;
//!   [`RealHybrid::from_env`]).
//! - `KONG_BACKEND_HOST`: the host Kong uses to reach the local test backends (default
//!   `127.0.0.1`; with Kong in Docker e.g. `host.docker.internal`).
//! - `KONG_STANDIN_PROFILE`: profile of the default stand-in (`3.x` unless set).
//! - `KONG_STANDIN_ROUTER_DELAY_MS`: its router delay (default 200 ms, short for test speed;
//!   use [`Env::start_with`] with explicit knobs to test timing).
//!
//! # A test that cannot run against the configured Kong is ignored, never passed
//!
//! The test crate's build script (`tests/build.rs`) turns the variables above into cfgs, read
//! at build time (cargo rebuilds the tests when one changes):
//!
//! | variable | cfg |
//! |---|---|
//! | `KONG_ADMIN_URL` | `real_kong` |
//! | `KONG_DBLESS_ADMIN_URL` | `real_dbless` |
//! | `KONG_NODE2_ADMIN_URL` | `real_node2` |
//! | `KONG_CP_ADMIN_URL` | `real_hybrid` |
//!
//! A test that needs what only the stand-in has (fault injection, the request log, timing
//! knobs, stopping a data plane) says so with the default libtest harness, and is then listed
//! as `ignored` with its reason:
//! ```text
//! #[tokio::test]
//! #[cfg_attr(real_kong, ignore = "needs the stand-in: fault injection")]
//! async fn a_failed_write_is_rolled_back() {
//!     let env = Env::start().await;
//!     let standin = env.standin().expect("not ignored, so this is the stand-in");
//!     standin.log().clear();
//! }
//! ```
//! A DB-less, multinode or hybrid test runs against the real topology when its variables are
//! set, against the stand-in when no real Kong is configured at all, and is ignored when
//! `KONG_ADMIN_URL` names a real Kong but not that topology, e.g.
//! `#[cfg_attr(all(real_kong, not(real_dbless)), ignore = "needs a DB-less Kong: set
//! KONG_DBLESS_ADMIN_URL")]`; a hybrid test that needs the stand-in says
//! `#[cfg_attr(any(real_kong, real_hybrid), ignore = "needs the stand-in: ..")]`. A behaviour
//! that differs between Kong versions is asserted for each version ([`Env::version`]), not
//! skipped on one. Never print "skipped" and return: that reports a pass. The cfgs exist in
//! this package's targets (its build script emits them), i.e. every file under `tests/tests/`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend::Backend;
use crate::standin::{Profile, StandIn, StandInBuilder};

/// Kong version family as reported by `GET /`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

/// Where the tests run.
#[derive(Debug)]
pub struct Env {
    admin_url: String,
    proxy_url: String,
    backend_host: String,
    node2: Option<NodeUrls>,
    standin: Option<StandIn>,
    client: reqwest::Client,
}

/// The Admin API and proxy URLs of one node (no trailing slashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrls {
    /// Admin API base URL.
    pub admin: String,
    /// Proxy base URL.
    pub proxy: String,
}

/// A real Kong in hybrid mode, from `KONG_CP_ADMIN_URL`, `KONG_DP_PROXY_URLS` and
/// `KONG_DP_STATUS_URLS` (comma-separated lists, data plane `i` at position `i` in both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealHybrid {
    /// The control plane's Admin API.
    pub control_plane: String,
    /// Each data plane's proxy.
    pub proxies: Vec<String>,
    /// Each data plane's Status API.
    pub statuses: Vec<String>,
}

impl RealHybrid {
    /// The hybrid Kong named by the environment, or `None` when `KONG_CP_ADMIN_URL` is not
    /// set. Panics when the lists are missing or differ in length (a test setup error).
    pub fn from_env() -> Option<RealHybrid> {
        let control_plane = var("KONG_CP_ADMIN_URL")?;
        let list = |name: &str| -> Vec<String> {
            var(name)
                .unwrap_or_default()
                .split(',')
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty())
                .collect()
        };
        let proxies = list("KONG_DP_PROXY_URLS");
        let statuses = list("KONG_DP_STATUS_URLS");
        assert!(
            !statuses.is_empty() && proxies.len() == statuses.len(),
            "KONG_CP_ADMIN_URL is set: KONG_DP_PROXY_URLS and KONG_DP_STATUS_URLS must list \
             every data plane's proxy and Status API, in the same order \
             (got {} proxies, {} Status APIs)",
            proxies.len(),
            statuses.len()
        );
        Some(RealHybrid {
            control_plane: control_plane.trim_end_matches('/').to_owned(),
            proxies,
            statuses,
        })
    }
}

/// A non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `<prefix>_ADMIN_URL` and `<prefix>_PROXY_URL` (default `http://localhost:8000`).
fn real_node(prefix: &str) -> Option<NodeUrls> {
    let admin = var(&format!("{prefix}_ADMIN_URL"))?;
    let proxy =
        var(&format!("{prefix}_PROXY_URL")).unwrap_or_else(|| "http://localhost:8000".into());
    Some(NodeUrls {
        admin: admin.trim_end_matches('/').to_owned(),
        proxy: proxy.trim_end_matches('/').to_owned(),
    })
}

impl Env {
    /// The default environment: a real Kong if `KONG_ADMIN_URL` is set, otherwise a stand-in
    /// (profile from `KONG_STANDIN_PROFILE`, default 3.x, router delay 200 ms).
    pub async fn start() -> Env {
        let profile = std::env::var("KONG_STANDIN_PROFILE")
            .ok()
            .and_then(|p| p.parse::<Profile>().ok())
            .unwrap_or(Profile::V3);
        let delay_ms = std::env::var("KONG_STANDIN_ROUTER_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(200);
        Self::start_with(
            StandIn::builder()
                .profile(profile)
                .router_delay(Duration::from_millis(delay_ms)),
        )
        .await
    }

    /// Like [`Env::start`], with an explicit stand-in configuration (ignored for a real Kong).
    /// With `KONG_NODE2_ADMIN_URL` set, [`Env::node2`] is that node. Panics if the stand-in
    /// cannot start (a test environment problem).
    pub async fn start_with(builder: StandInBuilder) -> Env {
        match real_node("KONG") {
            Some(node) => Self::real(node, real_node("KONG_NODE2")),
            None => Self::standin_from(builder).await,
        }
    }

    /// A DB-less Kong: the real node of `KONG_DBLESS_ADMIN_URL` / `KONG_DBLESS_PROXY_URL` when
    /// set, otherwise a stand-in from `builder` (give it a DB-less profile). Seed it with
    /// [`Env::load_config`]. Panics when `KONG_ADMIN_URL` names a real Kong but no DB-less
    /// node is configured: such a test is compiled as ignored
    /// (`#[cfg_attr(all(real_kong, not(real_dbless)), ignore = "..")]`) and was asked for.
    pub async fn dbless_with(builder: StandInBuilder) -> Env {
        if let Some(node) = real_node("KONG_DBLESS") {
            return Self::real(node, None);
        }
        assert!(
            var("KONG_ADMIN_URL").is_none(),
            "KONG_ADMIN_URL names a real Kong but KONG_DBLESS_ADMIN_URL is not set: this test \
             needs a DB-less Kong"
        );
        Self::standin_from(builder).await
    }

    fn real(node: NodeUrls, node2: Option<NodeUrls>) -> Env {
        Env {
            admin_url: node.admin,
            proxy_url: node.proxy,
            backend_host: backend_host(),
            node2,
            standin: None,
            client: client(),
        }
    }

    async fn standin_from(builder: StandInBuilder) -> Env {
        let standin = match builder.start().await {
            Ok(s) => s,
            Err(e) => panic!("the Kong stand-in did not start: {e}"),
        };
        let node2 = standin.nodes().get(1).map(|n| NodeUrls {
            admin: n.admin_url(),
            proxy: n.proxy_url(),
        });
        Env {
            admin_url: standin.admin_url(),
            proxy_url: standin.proxy_url(),
            backend_host: backend_host(),
            node2,
            standin: Some(standin),
            client: client(),
        }
    }

    /// A second node sharing the first one's database: `KONG_NODE2_ADMIN_URL` /
    /// `KONG_NODE2_PROXY_URL` for a real Kong, node 1 of a stand-in built with
    /// [`StandInBuilder::nodes`]; `None` otherwise.
    pub fn node2(&self) -> Option<&NodeUrls> {
        self.node2.as_ref()
    }

    /// The `_format_version` a node of this version writes in `GET /config` and accepts
    /// natively: `"3.0"` on 3.x, `"2.1"` on 2.x (which refuses `"3.0"`).
    pub async fn format_version(&self) -> &'static str {
        if self.version().await.major >= 3 {
            "3.0"
        } else {
            "2.1"
        }
    }

    /// DB-less: replaces the whole configuration with `doc` through `POST /config`, setting
    /// its `_format_version` to this node's ([`Env::format_version`]). Returns Kong's answer
    /// (the loaded entities), or the status and body of a refusal.
    pub async fn load_config(&self, doc: &Value) -> Result<Value, String> {
        let mut doc = doc.clone();
        doc["_format_version"] = Value::String(self.format_version().await.to_owned());
        let resp = self
            .client
            .post(format!("{}/config", self.admin_url))
            .json(&doc)
            .send()
            .await
            .map_err(|e| format!("POST /config: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.as_u16() != 201 {
            return Err(format!("POST /config answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("POST /config answer: {e}"))
    }

    /// Admin API base URL (no trailing slash).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Proxy base URL (no trailing slash).
    pub fn proxy_url(&self) -> &str {
        &self.proxy_url
    }

    /// The stand-in, when not running against a real Kong.
    pub fn standin(&self) -> Option<&StandIn> {
        self.standin.as_ref()
    }

    /// Mutable access (e.g. to serve the control endpoint).
    pub fn standin_mut(&mut self) -> Option<&mut StandIn> {
        self.standin.as_mut()
    }

    /// Whether this is the stand-in.
    pub fn is_standin(&self) -> bool {
        self.standin.is_some()
    }

    /// Host Kong uses to reach local backends.
    pub fn backend_host(&self) -> &str {
        &self.backend_host
    }

    /// A shared HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Starts a backend reachable by Kong (bound to all interfaces when `KONG_BACKEND_HOST`
    /// is not loopback).
    pub async fn backend(&self, color: &str, version: &str) -> Backend {
        let loopback = matches!(
            self.backend_host.as_str(),
            "127.0.0.1" | "localhost" | "::1"
        );
        let addr = if loopback {
            SocketAddr::from(([127, 0, 0, 1], 0))
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        match Backend::start_on(addr, color, version).await {
            Ok(b) => b,
            Err(e) => panic!("backend did not start: {e}"),
        }
    }

    /// The target string (`host:port`) under which Kong reaches `backend`.
    pub fn target_for(&self, backend: &Backend) -> String {
        format!("{}:{}", self.backend_host, backend.port())
    }

    /// A unique name for entities of one test (`<prefix>-<random>`), so tests can share a Kong.
    pub fn unique(prefix: &str) -> String {
        format!("{prefix}-{:08x}", rand::random::<u32>())
    }

    /// `GET /` on the Admin API.
    pub async fn root(&self) -> Value {
        match self.client.get(format!("{}/", self.admin_url)).send().await {
            Ok(resp) => resp.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// The Kong version (`GET /` `version`), for gating tests like go-kong's `RunWhenKong`.
    pub async fn version(&self) -> Version {
        let root = self.root().await;
        let text = root["version"].as_str().unwrap_or("0.0");
        let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        Version {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
        }
    }

    /// Whether Kong runs DB-less (`configuration.database == "off"`).
    pub async fn is_dbless(&self) -> bool {
        self.root().await["configuration"]["database"] == "off"
    }

    /// Polls `check` every 50 ms until it returns true or `timeout` passes; returns the elapsed
    /// time on success.
    pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> Option<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        loop {
            if check().await {
                return Some(start.elapsed());
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

fn backend_host() -> String {
    var("KONG_BACKEND_HOST").unwrap_or_else(|| "127.0.0.1".into())
}
