//! Seeding Kong for the benchmarks: entities over the Admin API, many at once.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use kong_switch_tests::harness::Env;

/// Requests in flight while seeding.
const SEED_CONCURRENCY: usize = 32;

/// Minimal Admin API access for seeding.
#[derive(Debug, Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    /// Over `env`'s Admin API.
    pub fn new(env: &Env) -> Admin {
        Admin {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            base: env.admin_url().to_owned(),
        }
    }

    /// Sends one request; the JSON answer, or an error naming the request.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = self.http.request(m, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{method} {path}: HTTP {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `PUT path body`.
    pub async fn put(&self, path: &str, body: Value) -> Result<Value, String> {
        self.send("PUT", path, Some(&body)).await
    }

    /// Sends every `(method, path, body)` with [`SEED_CONCURRENCY`] in flight.
    pub async fn many(&self, requests: Vec<(&'static str, String, Value)>) -> Result<(), String> {
        let errors: Vec<String> = futures::stream::iter(requests)
            .map(|(m, p, b)| async move { self.send(m, &p, Some(&b)).await.err() })
            .buffer_unordered(SEED_CONCURRENCY)
            .filter_map(|e| async move { e })
            .collect()
            .await;
        match errors.first() {
            None => Ok(()),
            Some(e) => Err(format!(
                "{} seeding request(s) failed; first: {e}",
                errors.len()
            )),
        }
    }

    /// Creates (or resets) an upstream with active health checks (or none) and the given
    /// targets, replacing any targets it had.
    pub async fn upstream(
        &self,
        name: &str,
        targets: &[(String, u32, Option<&str>)],
        active_checks: bool,
    ) -> Result<(), String> {
        let mut body = json!({ "name": name });
        if active_checks {
            body["healthchecks"] = healthchecks();
        }
        self.put(&format!("/upstreams/{name}"), body).await?;
        let old = self
            .send("GET", &format!("/upstreams/{name}/targets?size=1000"), None)
            .await?;
        for t in old["data"].as_array().into_iter().flatten() {
            if let Some(id) = t["id"].as_str() {
                self.send("DELETE", &format!("/upstreams/{name}/targets/{id}"), None)
                    .await?;
            }
        }
        let requests = targets
            .iter()
            .map(|(target, weight, color)| {
                let mut b = json!({ "target": target, "weight": weight });
                if let Some(c) = color {
                    b["tags"] = json!([format!("kong-switch.color={c}")]);
                }
                ("POST", format!("/upstreams/{name}/targets"), b)
            })
            .collect();
        self.many(requests).await
    }

    /// Creates (or resets) a service pointing at `host`, with `tags` and, when `route` is
    /// set, a route of the same name on `/<route>`.
    pub async fn service(
        &self,
        name: &str,
        host: &str,
        tags: &[&str],
        route: bool,
    ) -> Result<(), String> {
        let svc = self
            .put(
                &format!("/services/{name}"),
                json!({ "name": name, "host": host, "port": 80, "tags": tags }),
            )
            .await?;
        if route {
            self.put(
                &format!("/routes/{name}"),
                json!({ "name": name, "paths": [format!("/{name}")], "service": { "id": svc["id"] } }),
            )
            .await?;
        }
        Ok(())
    }

    /// Waits until every target with weight > 0 of `upstream` is HEALTHY.
    pub async fn wait_healthy(&self, upstream: &str) -> Result<(), String> {
        let ok = Env::wait_until(Duration::from_secs(30), || async {
            let h = self
                .send("GET", &format!("/upstreams/{upstream}/health"), None)
                .await
                .unwrap_or(Value::Null);
            let data = h["data"].as_array().cloned().unwrap_or_default();
            let weighted: Vec<&Value> = data
                .iter()
                .filter(|t| t["weight"].as_u64().unwrap_or(1) > 0)
                .collect();
            !weighted.is_empty() && weighted.iter().all(|t| t["health"] == "HEALTHY")
        })
        .await;
        ok.map(drop)
            .ok_or_else(|| format!("upstream {upstream} did not become HEALTHY within 30 s"))
    }

    /// Best-effort removal (real Kong only): services by name, then upstreams.
    pub async fn cleanup(&self, services: &[String], upstreams: &[String]) {
        let routes: Vec<_> = services
            .iter()
            .map(|s| ("DELETE", format!("/routes/{s}"), Value::Null))
            .collect();
        let _ = self.many_lenient(routes).await;
        let svcs: Vec<_> = services
            .iter()
            .map(|s| ("DELETE", format!("/services/{s}"), Value::Null))
            .collect();
        let _ = self.many_lenient(svcs).await;
        let ups: Vec<_> = upstreams
            .iter()
            .map(|u| ("DELETE", format!("/upstreams/{u}"), Value::Null))
            .collect();
        let _ = self.many_lenient(ups).await;
    }

    async fn many_lenient(&self, requests: Vec<(&'static str, String, Value)>) {
        futures::stream::iter(requests)
            .map(|(m, p, _)| async move {
                let _ = self.send(m, &p, None).await;
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
    }
}

/// Active health checks every second on `/health`.
pub fn healthchecks() -> Value {
    json!({
        "active": {
            "http_path": "/health",
            "timeout": 1,
            "healthy": {"interval": 1, "successes": 1},
            // Three missed checks, not one: the checker shares two cores with the load and the
            // kong-switch processes, and a one-second stall of the bench process must not read
            // as a dead backend (a 5xx answer still counts at once).
            "unhealthy": {"interval": 1, "http_failures": 1, "tcp_failures": 3, "timeouts": 3}
        }
    })
}
