//! End-to-end test environment: the stand-in by default, a real Kong when `KONG_ADMIN_URL` is
//! set (with `KONG_PROXY_URL`, default `http://localhost:8000`).
//!
//! Environment:
//! - `KONG_ADMIN_URL` / `KONG_PROXY_URL`: use a real Kong.
//! - `KONG_BACKEND_HOST`: the host Kong uses to reach the local test backends (default
//!   `127.0.0.1`; with Kong in Docker e.g. `host.docker.internal`).
//! - `KONG_STANDIN_PROFILE`: profile of the default stand-in (`3.x` unless set).
//! - `KONG_STANDIN_ROUTER_DELAY_MS`: its router delay (default 200 ms, short for test speed;
//!   use [`Env::start_with`] with explicit knobs to test timing).
//!
//! Tests needing stand-in-only features say so, like go-kong's `RunWhenKong`:
//! ```no_run
//! # async fn t() {
//! use kong_switch_tests::harness::Env;
//! let env = Env::start().await;
//! let Some(standin) = env.standin() else {
//!     eprintln!("skipped: needs the stand-in");
//!     return;
//! };
//! standin.log().clear();
//! # }
//! ```

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
    standin: Option<StandIn>,
    client: reqwest::Client,
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
    /// Panics if the stand-in cannot start (a test environment problem).
    pub async fn start_with(builder: StandInBuilder) -> Env {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let backend_host =
            std::env::var("KONG_BACKEND_HOST").unwrap_or_else(|_| "127.0.0.1".into());
        if let Ok(admin) = std::env::var("KONG_ADMIN_URL") {
            let proxy =
                std::env::var("KONG_PROXY_URL").unwrap_or_else(|_| "http://localhost:8000".into());
            return Env {
                admin_url: admin.trim_end_matches('/').to_owned(),
                proxy_url: proxy.trim_end_matches('/').to_owned(),
                backend_host,
                standin: None,
                client,
            };
        }
        let standin = match builder.start().await {
            Ok(s) => s,
            Err(e) => panic!("the Kong stand-in did not start: {e}"),
        };
        Env {
            admin_url: standin.admin_url(),
            proxy_url: standin.proxy_url(),
            backend_host,
            standin: Some(standin),
            client,
        }
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
