//! Helpers of the end-to-end suites (`e2e_*.rs`): blue/green shapes built over the Admin API,
//! the `kong-switch` binary with a private state directory, traffic sampling and steady load
//! through the proxy. HTTP only, so every suite also runs against a real Kong.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kong_switch_tests::backend::Backend;
use kong_switch_tests::cli::{KongSwitch, Run};
use kong_switch_tests::harness::Env;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{admin, expect, proxy_or_failure};

/// The binary, logging to a state directory of its own (dropped with the test).
pub struct Cli {
    pub ks: KongSwitch,
    pub dir: TempDir,
}

impl Cli {
    pub fn new(env: &Env) -> Cli {
        let dir = tempfile::tempdir().expect("temp state dir");
        Cli {
            ks: KongSwitch::new(env.admin_url(), dir.path()),
            dir,
        }
    }

    /// Runs `kong-switch <args>` to completion.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.ks.run_async(args).await
    }

    /// Runs with `--output json` and returns (exit code, JSON).
    pub async fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let run = self.run(&all).await;
        let value = run.json();
        (run.code, value)
    }

    /// `history <target> --output json` events.
    pub async fn history(&self, target: &str) -> Vec<Value> {
        let (code, h) = self.json(&["history", target]).await;
        assert_eq!(code, Some(0), "history: {h}");
        h["events"].as_array().cloned().unwrap_or_default()
    }
}

/// Active health checks probing `/health` (interval 0.5 s, one success / one failure).
pub fn active_checks() -> Value {
    json!({ "active": {
        "type": "http", "http_path": "/health", "timeout": 1,
        "healthy": { "interval": 0.5, "successes": 1 },
        "unhealthy": { "interval": 0.5, "http_failures": 1, "tcp_failures": 1, "timeouts": 1 }
    } })
}

/// Creates upstream `name` (with active health checks when `checks`) holding `targets`
/// (address, weight, tags).
pub async fn upstream(env: &Env, name: &str, checks: bool, targets: &[(String, u32, Vec<String>)]) {
    let mut body = json!({ "name": name });
    if checks {
        body["healthchecks"] = active_checks();
    }
    expect(env, "POST", "/upstreams", Some(body), 201).await;
    for (target, weight, tags) in targets {
        let mut t = json!({ "target": target, "weight": weight });
        if !tags.is_empty() {
            t["tags"] = json!(tags);
        }
        expect(
            env,
            "POST",
            &format!("/upstreams/{name}/targets"),
            Some(t),
            201,
        )
        .await;
    }
}

/// The health Kong reports for every target of `upstream` (address → health).
pub async fn health(env: &Env, upstream: &str) -> BTreeMap<String, String> {
    let r = admin(env, "GET", &format!("/upstreams/{upstream}/health"), None).await;
    r.json["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["target"].as_str().unwrap_or_default().to_owned(),
                t["health"].as_str().unwrap_or("none").to_owned(),
            )
        })
        .collect()
}

/// Waits until every target of `upstream` reports `want` (e.g. `HEALTHY`). On 3.x a young
/// upstream has no balancer for a while (no health at all): this waits through it.
pub async fn wait_health(env: &Env, upstream: &str, want: &str, timeout: Duration) {
    let ok = Env::wait_until(timeout, || async {
        let h = health(env, upstream).await;
        !h.is_empty() && h.values().all(|v| v == want)
    })
    .await;
    assert!(
        ok.is_some(),
        "{upstream} never became {want}: {:?}",
        health(env, upstream).await
    );
}

/// What the green side of a pair looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Green {
    /// An upstream `<base>-green` with the green backend and active health checks.
    Healthy,
    /// No upstream `<base>-green` at all.
    Missing,
    /// `<base>-green` without health checks (Kong reports `HEALTHCHECKS_OFF`).
    NoChecks,
}

/// The upstream shape of design §2: service `<base>` → upstream `<base>-blue`, a second
/// upstream `<base>-green`, a route on `/<base>`.
pub struct Pair {
    pub base: String,
    pub blue_up: String,
    pub green_up: String,
    /// Proxy path of the route.
    pub path: String,
    pub blue: Backend,
    pub green: Backend,
}

impl Pair {
    /// Proxy URL of the route.
    pub fn url(&self, env: &Env) -> String {
        format!("{}{}", env.proxy_url(), self.path)
    }
}

/// One upstream `<base>-up` holding a blue target (weight 100) and a green one (weight 0),
/// told apart by the `kong-switch.color` tag; service `<base>` and route `/<base>`.
pub struct Shared {
    pub base: String,
    pub up: String,
    pub path: String,
    pub blue: Backend,
    pub green: Backend,
}

pub async fn shared(env: &Env, prefix: &str) -> Shared {
    let base = Env::unique(prefix);
    let up = format!("{base}-up");
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    upstream(
        env,
        &up,
        true,
        &[
            (
                env.target_for(&blue),
                100,
                vec!["kong-switch.color=blue".into()],
            ),
            (
                env.target_for(&green),
                0,
                vec!["kong-switch.color=green".into()],
            ),
        ],
    )
    .await;
    expect(
        env,
        "POST",
        "/services",
        Some(json!({ "name": base, "host": up })),
        201,
    )
    .await;
    let path = format!("/{base}");
    expect(
        env,
        "POST",
        &format!("/services/{base}/routes"),
        Some(json!({ "name": base, "paths": [path] })),
        201,
    )
    .await;
    wait_color(env, &path, "blue").await;
    Shared {
        base,
        up,
        path,
        blue,
        green,
    }
}

/// The `route` shape of design §2: services `<base>-blue` and `<base>-green`, each on its own
/// backend, and `routes` routes `<base>-r1…` on blue, served blue.
pub struct RoutePair {
    pub base: String,
    /// The services' ids (blue, green).
    pub ids: (Value, Value),
    /// Route names.
    pub routes: Vec<String>,
    pub backends: Vec<Backend>,
}

pub async fn route_pair(env: &Env, prefix: &str, routes: usize) -> RoutePair {
    let base = Env::unique(prefix);
    let mut ids = Vec::new();
    let mut backends = Vec::new();
    for (color, version) in [("blue", "v1"), ("green", "v2")] {
        let backend = env.backend(color, version).await;
        let svc = expect(
            env,
            "POST",
            "/services",
            Some(
                json!({ "name": format!("{base}-{color}"), "host": env.backend_host(),
                         "port": backend.port() }),
            ),
            201,
        )
        .await;
        ids.push(svc["id"].clone());
        backends.push(backend);
    }
    let names: Vec<String> = (1..=routes).map(|i| format!("{base}-r{i}")).collect();
    for r in &names {
        expect(
            env,
            "POST",
            &format!("/services/{base}-blue/routes"),
            Some(json!({ "name": r, "paths": [format!("/{r}")] })),
            201,
        )
        .await;
    }
    for r in &names {
        wait_color(env, &format!("/{r}"), "blue").await;
    }
    RoutePair {
        base,
        ids: (ids[0].clone(), ids[1].clone()),
        routes: names,
        backends,
    }
}

/// Builds a [`Pair`] and waits until the route serves blue and the upstreams are HEALTHY
/// (or HEALTHCHECKS_OFF for [`Green::NoChecks`]).
pub async fn pair(env: &Env, prefix: &str, green: Green, service_tags: &[String]) -> Pair {
    let base = Env::unique(prefix);
    let blue = env.backend("blue", "v1").await;
    let green_backend = env.backend("green", "v2").await;
    let blue_up = format!("{base}-blue");
    let green_up = format!("{base}-green");
    upstream(env, &blue_up, true, &[(env.target_for(&blue), 100, vec![])]).await;
    match green {
        Green::Healthy | Green::NoChecks => {
            upstream(
                env,
                &green_up,
                green == Green::Healthy,
                &[(env.target_for(&green_backend), 100, vec![])],
            )
            .await;
        }
        Green::Missing => {}
    }
    let mut svc = json!({ "name": base, "host": blue_up });
    if !service_tags.is_empty() {
        svc["tags"] = json!(service_tags);
    }
    expect(env, "POST", "/services", Some(svc), 201).await;
    let path = format!("/{base}");
    expect(
        env,
        "POST",
        &format!("/services/{base}/routes"),
        Some(json!({ "name": base, "paths": [path] })),
        201,
    )
    .await;
    let p = Pair {
        base,
        blue_up,
        green_up,
        path,
        blue,
        green: green_backend,
    };
    wait_color(env, &p.path, "blue").await;
    wait_health(env, &p.blue_up, "HEALTHY", Duration::from_secs(15)).await;
    match green {
        Green::Healthy => wait_health(env, &p.green_up, "HEALTHY", Duration::from_secs(15)).await,
        Green::NoChecks => {
            wait_health(
                env,
                &p.green_up,
                "HEALTHCHECKS_OFF",
                Duration::from_secs(15),
            )
            .await;
        }
        Green::Missing => {}
    }
    p
}

/// Waits (generously: 3.x router delay + margin) until the proxy at `path` answers 2xx from
/// `color` three times in a row; returns how long that took.
pub async fn wait_color(env: &Env, path: &str, color: &str) -> Duration {
    let start = Instant::now();
    let mut streak = 0;
    while streak < 3 {
        let r = proxy_or_failure(env, path).await;
        if r.status / 100 == 2 && r.header("x-color") == Some(color) {
            streak += 1;
        } else {
            streak = 0;
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{path} never served {color} steadily (last status {})",
                r.status
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    start.elapsed()
}

/// What a run of requests through the proxy got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shares {
    pub blue: u64,
    pub green: u64,
    /// 2xx without a known color.
    pub other: u64,
    /// Non-2xx answers and transport errors.
    pub failed: u64,
    /// Some failures, for the message.
    pub failures: Vec<String>,
}

impl Shares {
    pub fn total(&self) -> u64 {
        self.blue + self.green + self.other + self.failed
    }

    /// Green's share of all requests, in percent.
    pub fn green_percent(&self) -> f64 {
        if self.total() == 0 {
            return 0.0;
        }
        self.green as f64 * 100.0 / self.total() as f64
    }

    fn add(&mut self, outcome: Result<(u16, Option<String>), String>) {
        match outcome {
            Ok((status, color)) if status / 100 == 2 => match color.as_deref() {
                Some("blue") => self.blue += 1,
                Some("green") => self.green += 1,
                _ => self.other += 1,
            },
            Ok((status, _)) => {
                self.failed += 1;
                if self.failures.len() < 5 {
                    self.failures.push(format!("status {status}"));
                }
            }
            Err(e) => {
                self.failed += 1;
                if self.failures.len() < 5 {
                    self.failures.push(e);
                }
            }
        }
    }

    fn merge(&mut self, other: Shares) {
        self.blue += other.blue;
        self.green += other.green;
        self.other += other.other;
        self.failed += other.failed;
        for f in other.failures {
            if self.failures.len() < 5 {
                self.failures.push(f);
            }
        }
    }
}

async fn one(client: &reqwest::Client, url: &str) -> Result<(u16, Option<String>), String> {
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let color = resp
        .headers()
        .get("x-color")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Read the body so the connection is reused.
    let _ = resp.bytes().await;
    Ok((status, color))
}

/// Sends `n` requests to `url`, 8 at a time, and counts where they landed.
pub async fn sample(env: &Env, url: &str, n: u64) -> Shares {
    let workers = 8;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let client = env.client().clone();
            let url = url.to_owned();
            let count = n / workers + u64::from(w < n % workers);
            tokio::spawn(async move {
                let mut s = Shares::default();
                for _ in 0..count {
                    s.add(one(&client, &url).await);
                }
                s
            })
        })
        .collect();
    let mut total = Shares::default();
    for t in tasks {
        total.merge(t.await.expect("sampler task"));
    }
    total
}

/// Steady load through the proxy: `workers` loops, each sending one request every `period`,
/// until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<Shares>>,
}

/// What a [`Load`] achieved.
#[derive(Debug)]
pub struct LoadResult {
    pub shares: Shares,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn rate(&self) -> f64 {
        self.shares.total() as f64 / self.elapsed.as_secs_f64()
    }
}

impl Load {
    /// Starts about `rate` requests per second to `url`.
    pub fn start(url: &str, rate: u32) -> Load {
        let workers = 10u32;
        let period = Duration::from_secs_f64(f64::from(workers) / f64::from(rate));
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(32)
            .build()
            .expect("client");
        let tasks = (0..workers)
            .map(|_| {
                let stop = Arc::clone(&stop);
                let client = client.clone();
                let url = url.to_owned();
                tokio::spawn(async move {
                    let mut s = Shares::default();
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        s.add(one(&client, &url).await);
                    }
                    s
                })
            })
            .collect();
        Load {
            stop,
            started: Instant::now(),
            tasks,
        }
    }

    /// Stops and counts.
    pub async fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let mut shares = Shares::default();
        for t in self.tasks {
            shares.merge(t.await.expect("load task"));
        }
        LoadResult { shares, elapsed }
    }
}

/// Everything a pair's switch could touch, read back over the Admin API (lists sorted, so
/// two reads of an unchanged Kong compare equal).
pub async fn config_of(env: &Env, services: &[&str], upstreams: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    let sorted = |mut v: Value| {
        if let Some(list) = v["data"].as_array_mut() {
            list.sort_by_key(|e| e["id"].as_str().unwrap_or_default().to_owned());
        }
        v["data"].take()
    };
    for s in services {
        out.insert(
            format!("service {s}"),
            admin(env, "GET", &format!("/services/{s}"), None)
                .await
                .json,
        );
        out.insert(
            format!("routes of {s}"),
            sorted(
                admin(env, "GET", &format!("/services/{s}/routes"), None)
                    .await
                    .json,
            ),
        );
    }
    for u in upstreams {
        out.insert(
            format!("upstream {u}"),
            admin(env, "GET", &format!("/upstreams/{u}"), None)
                .await
                .json,
        );
        out.insert(
            format!("targets of {u}"),
            sorted(
                admin(env, "GET", &format!("/upstreams/{u}/targets"), None)
                    .await
                    .json,
            ),
        );
    }
    Value::Object(out)
}

/// The service's `host` as Kong shows it.
pub async fn host_of(env: &Env, service: &str) -> String {
    admin(env, "GET", &format!("/services/{service}"), None)
        .await
        .json["host"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Target weights of `upstream` (address → weight).
pub async fn weights(env: &Env, upstream: &str) -> BTreeMap<String, u64> {
    admin(env, "GET", &format!("/upstreams/{upstream}/targets"), None)
        .await
        .json["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["target"].as_str().unwrap_or_default().to_owned(),
                t["weight"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The gate named `name` in a report.
pub fn gate<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["gates"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| {
            g["name"]
                .as_str()
                .is_some_and(|n| n == name || n.starts_with(&format!("{name}[")))
        })
        .unwrap_or_else(|| panic!("no gate {name} in {}", report["gates"]))
}

/// `(method, path, body)` of a report's `AdminRequest` list.
pub fn requests(list: &Value) -> Vec<(String, String, Value)> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            (
                w["method"].as_str().unwrap_or_default().to_owned(),
                w["path"].as_str().unwrap_or_default().to_owned(),
                w["body"].clone(),
            )
        })
        .collect()
}
