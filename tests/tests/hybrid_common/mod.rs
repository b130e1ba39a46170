//! Helpers for the hybrid-mode suites: a stand-in control plane with data planes, blue and green
//! backends, and HTTP reads of the control plane, the data planes' Status APIs and proxies.

#![allow(dead_code)]

use std::time::Duration;

use kong_switch_tests::backend::Backend;
use kong_switch_tests::harness::Env;
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

/// A hybrid stand-in and two backends.
pub struct Hybrid {
    pub kong: StandIn,
    pub http: reqwest::Client,
    pub blue: Backend,
    pub green: Backend,
}

impl Hybrid {
    /// `dps` data planes with a `window` push window and `knobs`.
    pub async fn start(profile: Profile, dps: usize, window: Duration, knobs: HybridKnobs) -> Self {
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

    /// `dps` data planes with Kong's default timings.
    pub async fn start_default(profile: Profile, dps: usize) -> Self {
        let kong = StandIn::builder()
            .profile(profile)
            .data_planes(dps)
            .start()
            .await
            .expect("the hybrid stand-in starts");
        Self::with(kong).await
    }

    async fn with(kong: StandIn) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client");
        let blue = Backend::start("blue", "v1").await.expect("blue backend");
        let green = Backend::start("green", "v2").await.expect("green backend");
        Self {
            kong,
            http,
            blue,
            green,
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
        let url = format!("{}{path}", self.kong.admin_url());
        self.send(method, &url, body).await
    }

    /// A request to data plane `dp`'s Status API.
    pub async fn status(&self, dp: usize, method: &str, path: &str) -> Resp {
        let url = format!("{}{path}", self.kong.data_plane(dp).status_url());
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
        let id = self.kong.data_plane(dp).id().to_owned();
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

    /// The color data plane `dp`'s proxy serves on `/bg` (`None` when no backend answered).
    pub async fn color(&self, dp: usize) -> Option<String> {
        let url = format!("{}/bg", self.kong.data_plane(dp).proxy_url());
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

    /// Creates upstreams `bg-blue` and `bg-green` (active checks every 0.2 s), one target each,
    /// service `bg` → `bg-blue` and route `/bg`, then waits until every data plane serves blue.
    pub async fn upstream_pair(&self) {
        for (name, backend) in [("bg-blue", &self.blue), ("bg-green", &self.green)] {
            let up = self
                .admin("POST", "/upstreams", Some(upstream_body(name)))
                .await;
            assert_eq!(up.status, 201, "{:?}", up.json);
            let t = self
                .admin(
                    "POST",
                    &format!("/upstreams/{name}/targets"),
                    Some(json!({ "target": backend.addr().to_string(), "weight": 100 })),
                )
                .await;
            assert_eq!(t.status, 201, "{:?}", t.json);
        }
        self.service_and_route("bg-blue").await;
        self.wait_all_serve("blue", Duration::from_secs(15)).await;
    }

    /// One upstream `bg-pool` with blue (weight 100) and green (weight 0), service `bg` on it
    /// and route `/bg`; waits until every data plane serves blue.
    pub async fn weighted_pool(&self) {
        let up = self
            .admin("POST", "/upstreams", Some(upstream_body("bg-pool")))
            .await;
        assert_eq!(up.status, 201, "{:?}", up.json);
        for (backend, weight) in [(&self.blue, 100), (&self.green, 0)] {
            let tag = format!("kong-switch.color={}", backend.color());
            let t = self
                .admin(
                    "POST",
                    "/upstreams/bg-pool/targets",
                    Some(json!({
                        "target": backend.addr().to_string(),
                        "weight": weight,
                        "tags": [tag],
                    })),
                )
                .await;
            assert_eq!(t.status, 201, "{:?}", t.json);
        }
        self.service_and_route("bg-pool").await;
        self.wait_all_serve("blue", Duration::from_secs(15)).await;
    }

    async fn service_and_route(&self, host: &str) {
        let s = self
            .admin(
                "POST",
                "/services",
                Some(json!({ "name": "bg", "host": host, "port": 80, "protocol": "http" })),
            )
            .await;
        assert_eq!(s.status, 201, "{:?}", s.json);
        let r = self
            .admin(
                "POST",
                "/services/bg/routes",
                Some(json!({ "name": "bg", "paths": ["/bg"] })),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
    }

    /// Waits until every running data plane's proxy serves `color` on `/bg`.
    pub async fn wait_all_serve(&self, color: &str, timeout: Duration) {
        for dp in 0..self.kong.data_planes().len() {
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
            for dp in 0..self.kong.data_planes().len() {
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
            {
                let mut quiet = true;
                for dp in 0..self.kong.data_planes().len() {
                    let seen = self.row(dp).await["last_seen"].as_u64().unwrap_or(now);
                    quiet &= now.saturating_sub(seen) > for_at_least.as_secs() + 1;
                }
                quiet
            }
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
