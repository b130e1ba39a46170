//! Helpers for the hybrid-mode suites: a control plane with data planes (the real ones named by
//! `KONG_CP_ADMIN_URL`, `KONG_DP_PROXY_URLS` and `KONG_DP_STATUS_URLS`, or a stand-in), blue and
//! green backends, and HTTP reads of the control plane, the data planes' Status APIs and
//! proxies.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use kong_switch_tests::backend::Backend;
use kong_switch_tests::harness::{Env, RealHybrid};
use kong_switch_tests::standin::{HybridKnobs, Profile, StandIn};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Short hybrid timings for fast tests: a 1 s push window, 50 ms push delay, 200 ms report
/// lag, 1 s pings and (3.x) a 300 ms proxy lag.
pub fn short_knobs(profile: Profile) -> HybridKnobs {
    let mut k = HybridKnobs::kong(profile.version());
    k.push_delay = Duration::from_millis(50);
    k.report_lag = Duration::from_millis(200);
    k.ping_interval = Duration::from_secs(1);
    if !k.proxy_lag.is_zero() {
        k.proxy_lag = Duration::from_millis(300);
    }
    k
}

/// A hybrid Kong (the real one of `KONG_CP_ADMIN_URL`, `KONG_DP_PROXY_URLS` and
/// `KONG_DP_STATUS_URLS`, or a stand-in control plane with data planes) and two backends.
/// Each test's entities carry a unique base name, so tests can share a real control plane.
pub struct Hybrid {
    standin: Option<StandIn>,
    control_plane: String,
    proxies: Vec<String>,
    statuses: Vec<String>,
    backend_host: String,
    pub http: reqwest::Client,
    pub blue: Backend,
    pub green: Backend,
    /// The service's name and route path (`/<base>`); upstreams are `<base>-blue`,
    /// `<base>-green` and `<base>-pool`.
    pub base: String,
}

impl Hybrid {
    /// `dps` data planes with a `window` push window and `knobs` (the real hybrid Kong of the
    /// environment instead, when set: its own timings and its first `dps` data planes).
    pub async fn start(profile: Profile, dps: usize, window: Duration, knobs: HybridKnobs) -> Self {
        if let Some(real) = RealHybrid::from_env() {
            return Self::real(real, dps).await;
        }
        let kong = StandIn::builder()
            .profile(profile)
            .router_delay(Duration::from_millis(200))
            .db_update_frequency(window)
            .data_planes(dps)
            .hybrid_knobs(knobs)
            .start()
            .await
            .expect("the hybrid stand-in starts");
        Self::with(kong).await
    }

    /// `dps` data planes with Kong's default timings (or the real hybrid Kong, as above).
    pub async fn start_default(profile: Profile, dps: usize) -> Self {
        if let Some(real) = RealHybrid::from_env() {
            return Self::real(real, dps).await;
        }
        let kong = StandIn::builder()
            .profile(profile)
            .data_planes(dps)
            .start()
            .await
            .expect("the hybrid stand-in starts");
        Self::with(kong).await
    }

    async fn real(real: RealHybrid, dps: usize) -> Self {
        assert!(
            real.statuses.len() >= dps,
            "this test needs {dps} data planes; KONG_DP_STATUS_URLS lists {}",
            real.statuses.len()
        );
        let backend_host =
            std::env::var("KONG_BACKEND_HOST").unwrap_or_else(|_| "127.0.0.1".into());
        let loopback = matches!(backend_host.as_str(), "127.0.0.1" | "localhost" | "::1");
        let bind = if loopback {
            SocketAddr::from(([127, 0, 0, 1], 0))
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        let blue = Backend::start_on(bind, "blue", "v1")
            .await
            .expect("blue backend");
        let green = Backend::start_on(bind, "green", "v2")
            .await
            .expect("green backend");
        Self {
            standin: None,
            control_plane: real.control_plane,
            proxies: real.proxies.into_iter().take(dps).collect(),
            statuses: real.statuses.into_iter().take(dps).collect(),
            backend_host,
            http: client(),
            blue,
            green,
            base: Env::unique("bg"),
        }
    }

    async fn with(kong: StandIn) -> Self {
        let blue = Backend::start("blue", "v1").await.expect("blue backend");
        let green = Backend::start("green", "v2").await.expect("green backend");
        Self {
            control_plane: kong.admin_url(),
            proxies: kong.data_planes().iter().map(|d| d.proxy_url()).collect(),
            statuses: kong.data_planes().iter().map(|d| d.status_url()).collect(),
            standin: Some(kong),
            backend_host: "127.0.0.1".into(),
            http: client(),
            blue,
            green,
            base: Env::unique("bg"),
        }
    }

    /// The stand-in. Panics against a real Kong: tests using it are ignored there
    /// (`#[cfg_attr(any(real_kong, real_hybrid), ignore = "..")]`).
    pub fn standin(&self) -> &StandIn {
        self.standin
            .as_ref()
            .expect("not ignored, so this is the stand-in")
    }

    /// Whether this is the stand-in.
    pub fn is_standin(&self) -> bool {
        self.standin.is_some()
    }

    /// The control plane's Admin API URL.
    pub fn admin_url(&self) -> &str {
        &self.control_plane
    }

    /// How many data planes the test uses.
    pub fn dp_count(&self) -> usize {
        self.statuses.len()
    }

    /// Data plane `dp`'s Status API URL.
    pub fn status_url(&self, dp: usize) -> &str {
        &self.statuses[dp]
    }

    /// Data plane `dp`'s proxy URL.
    pub fn proxy_url(&self, dp: usize) -> &str {
        &self.proxies[dp]
    }

    /// Upstream `<base>-<suffix>`.
    pub fn up(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.base)
    }

    /// The route's path.
    pub fn path(&self) -> String {
        format!("/{}", self.base)
    }

    /// The target under which Kong reaches `backend`.
    pub fn target(&self, backend: &Backend) -> String {
        format!("{}:{}", self.backend_host, backend.port())
    }

    /// Whether the control plane is Kong 3.x (`GET /` `version`).
    pub async fn is_v3(&self) -> bool {
        self.version().await.starts_with('3')
    }

    /// The control plane's version string (`GET /` `version`).
    pub async fn version(&self) -> String {
        self.admin("GET", "/", None).await.json["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Data plane `dp`'s node id (its row's `id` on the control plane): the stand-in's handle,
    /// or the `node_id` its Status API reports with the health of `<base>-blue` (create the
    /// upstream first).
    pub async fn dp_id(&self, dp: usize) -> String {
        if let Some(kong) = &self.standin {
            return kong.data_plane(dp).id().to_owned();
        }
        let path = format!("/upstreams/{}/health", self.up("blue"));
        let started = std::time::Instant::now();
        loop {
            let r = self.status(dp, "GET", &path).await;
            if let Some(node) = r.json["node_id"].as_str() {
                return node.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "data plane {dp} never reported its node id: {:?}",
                r.json
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn send(&self, method: &str, url: &str, body: Option<Value>) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Resp {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// A control-plane Admin API request.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let url = format!("{}{path}", self.control_plane);
        self.send(method, &url, body).await
    }

    /// A request to data plane `dp`'s Status API.
    pub async fn status(&self, dp: usize, method: &str, path: &str) -> Resp {
        let url = format!("{}{path}", self.statuses[dp]);
        self.send(method, &url, None).await
    }

    /// Data plane `dp`'s `configuration_hash` from its Status API.
    pub async fn dp_hash(&self, dp: usize) -> String {
        self.status(dp, "GET", "/status").await.json["configuration_hash"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The control plane's row for data plane `dp`.
    pub async fn row(&self, dp: usize) -> Value {
        let id = self.dp_id(dp).await;
        let rows = self
            .admin("GET", "/clustering/data-planes", None)
            .await
            .json;
        rows["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The color data plane `dp`'s proxy serves on the route (`None` when no backend
    /// answered).
    pub async fn color(&self, dp: usize) -> Option<String> {
        let url = format!("{}{}", self.proxies[dp], self.path());
        let resp = self.http.get(url).send().await.ok()?;
        resp.headers()
            .get("x-color")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Counts the colors of `n` requests through data plane `dp`'s proxy: (blue, green, other).
    pub async fn sample(&self, dp: usize, n: usize) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for _ in 0..n {
            match self.color(dp).await.as_deref() {
                Some("blue") => counts.0 += 1,
                Some("green") => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }

    /// Creates upstreams `<base>-blue` and `<base>-green` (active checks every 0.2 s), one
    /// target each, service `<base>` → `<base>-blue` and route `/<base>`, then waits until
    /// every data plane serves blue.
    pub async fn upstream_pair(&self) {
        for (name, backend) in [
            (self.up("blue"), &self.blue),
            (self.up("green"), &self.green),
        ] {
            let up = self
                .admin("POST", "/upstreams", Some(upstream_body(&name)))
                .await;
            assert_eq!(up.status, 201, "{:?}", up.json);
            let t = self
                .admin(
                    "POST",
                    &format!("/upstreams/{name}/targets"),
                    Some(json!({ "target": self.target(backend), "weight": 100 })),
                )
                .await;
            assert_eq!(t.status, 201, "{:?}", t.json);
        }
        self.service_and_route(&self.up("blue")).await;
        self.wait_all_serve("blue", Duration::from_secs(20)).await;
    }

    /// One upstream `<base>-pool` with blue (weight 100) and green (weight 0), service
    /// `<base>` on it and route `/<base>`; waits until every data plane serves blue.
    pub async fn weighted_pool(&self) {
        let pool = self.up("pool");
        let up = self
            .admin("POST", "/upstreams", Some(upstream_body(&pool)))
            .await;
        assert_eq!(up.status, 201, "{:?}", up.json);
        for (backend, weight) in [(&self.blue, 100), (&self.green, 0)] {
            let tag = format!("kong-switch.color={}", backend.color());
            let t = self
                .admin(
                    "POST",
                    &format!("/upstreams/{pool}/targets"),
                    Some(json!({
                        "target": self.target(backend),
                        "weight": weight,
                        "tags": [tag],
                    })),
                )
                .await;
            assert_eq!(t.status, 201, "{:?}", t.json);
        }
        self.service_and_route(&pool).await;
        self.wait_all_serve("blue", Duration::from_secs(20)).await;
    }

    async fn service_and_route(&self, host: &str) {
        let s = self
            .admin(
                "POST",
                "/services",
                Some(json!({ "name": self.base, "host": host, "port": 80, "protocol": "http" })),
            )
            .await;
        assert_eq!(s.status, 201, "{:?}", s.json);
        let r = self
            .admin(
                "POST",
                &format!("/services/{}/routes", self.base),
                Some(json!({ "name": self.base, "paths": [self.path()] })),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
    }

    /// Waits until every running data plane's proxy serves `color` on the route.
    pub async fn wait_all_serve(&self, color: &str, timeout: Duration) {
        for dp in 0..self.dp_count() {
            let ok = Env::wait_until(timeout, || async {
                self.color(dp).await.as_deref() == Some(color)
            })
            .await;
            assert!(ok.is_some(), "data plane {dp} never served {color}");
        }
    }

    /// Waits until every data plane's row on the control plane shows the hash its Status API
    /// reports, and the data planes agree.
    pub async fn wait_settled(&self, timeout: Duration) {
        let ok = Env::wait_until(timeout, || async {
            let mut hashes = Vec::new();
            for dp in 0..self.dp_count() {
                let h = self.dp_hash(dp).await;
                if self.row(dp).await["config_hash"] != h.as_str() {
                    return false;
                }
                hashes.push(h);
            }
            hashes.windows(2).all(|w| w[0] == w[1])
        })
        .await;
        assert!(ok.is_some(), "the data planes never settled");
    }
}

impl Hybrid {
    /// Waits until the cluster is quiet: no data plane applied a configuration (nor pinged)
    /// for longer than `for_at_least`, as kong-switch's one-write fast path requires.
    pub async fn wait_quiet(&self, for_at_least: Duration, timeout: Duration) {
        let ok = Env::wait_until(timeout, || async {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let rows = self
                .admin("GET", "/clustering/data-planes", None)
                .await
                .json;
            rows["data"].as_array().into_iter().flatten().all(|row| {
                let seen = row["last_seen"].as_u64().unwrap_or(now);
                now.saturating_sub(seen) > for_at_least.as_secs() + 1
            })
        })
        .await;
        assert!(ok.is_some(), "the data planes never went quiet");
    }
}

/// An upstream with fast active health checks (as in the measured runs, but every 0.2 s).
pub fn upstream_body(name: &str) -> Value {
    json!({
        "name": name,
        "healthchecks": { "active": {
            "type": "http", "http_path": "/", "timeout": 1,
            "healthy": { "interval": 0.2, "successes": 1 },
            "unhealthy": { "interval": 0.2, "http_failures": 1, "tcp_failures": 1, "timeouts": 1 }
        } }
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client")
}
