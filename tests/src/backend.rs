//! Test backends: tiny HTTP servers answering as "blue" or "green".
//!
//! Every answer carries `X-Color` and `X-Version` headers and the JSON body
//! `{"color":..,"version":..,"path":..}`. Health is switchable at run time: healthy, answering
//! 500, or down (the listener is closed and open connections dropped, so connections are
//! refused). Latency and an error ratio can be injected; requests are counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::standin::http::{self as h, Body, HangUp};

/// How a backend behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendMode {
    /// Answers 200 (subject to the error ratio).
    Healthy,
    /// Answers 500 to everything, health path included.
    Failing,
    /// Not listening: connections are refused.
    Down,
}

#[derive(Debug)]
struct Settings {
    mode: BackendMode,
    latency: Duration,
    error_ratio: f64,
    /// Cancels the current listener and its connections.
    listening: Option<CancellationToken>,
}

#[derive(Debug)]
struct Inner {
    color: String,
    version: String,
    addr: SocketAddr,
    requests: AtomicU64,
    settings: Mutex<Settings>,
}

/// A running backend. Dropping it stops it.
#[derive(Debug)]
pub struct Backend {
    inner: Arc<Inner>,
}

fn lock(m: &Mutex<Settings>) -> MutexGuard<'_, Settings> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Backend {
    /// Starts a backend on a free loopback port.
    pub async fn start(color: &str, version: &str) -> std::io::Result<Backend> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), color, version).await
    }

    /// Starts a backend on `addr` (use `0.0.0.0:0` when a Kong in a container must reach it).
    pub async fn start_on(
        addr: SocketAddr,
        color: &str,
        version: &str,
    ) -> std::io::Result<Backend> {
        let listener = h::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            color: color.to_owned(),
            version: version.to_owned(),
            addr,
            requests: AtomicU64::new(0),
            settings: Mutex::new(Settings {
                mode: BackendMode::Healthy,
                latency: Duration::ZERO,
                error_ratio: 0.0,
                listening: None,
            }),
        });
        Self::listen(&inner, listener);
        Ok(Backend { inner })
    }

    fn listen(inner: &Arc<Inner>, listener: tokio::net::TcpListener) {
        let token = CancellationToken::new();
        lock(&inner.settings).listening = Some(token.clone());
        let served = Arc::clone(inner);
        h::spawn_server(listener, token, true, move |req, _| {
            let inner = Arc::clone(&served);
            async move { answer(&inner, req).await }
        });
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    /// `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The color it answers with.
    pub fn color(&self) -> &str {
        &self.inner.color
    }

    /// The version it answers with.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The current mode.
    pub fn mode(&self) -> BackendMode {
        lock(&self.inner.settings).mode
    }

    /// Switches health. Going `Down` closes the listener and drops open connections; leaving
    /// `Down` listens again on the same port.
    pub async fn set_mode(&self, mode: BackendMode) -> std::io::Result<()> {
        let previous = {
            let mut settings = lock(&self.inner.settings);
            let previous = settings.mode;
            settings.mode = mode;
            if mode == BackendMode::Down
                && let Some(token) = settings.listening.take()
            {
                token.cancel();
            }
            previous
        };
        if previous == BackendMode::Down && mode != BackendMode::Down {
            let mut attempts = 0;
            let listener = loop {
                match h::bind(self.inner.addr).await {
                    Ok(l) => break l,
                    Err(e) if attempts >= 50 => return Err(e),
                    Err(_) => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            };
            Self::listen(&self.inner, listener);
        }
        Ok(())
    }

    /// Adds this latency to every answer.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner.settings).latency = latency;
    }

    /// Answers 500 to this fraction (0.0..=1.0) of requests other than `/health`.
    pub fn set_error_ratio(&self, ratio: f64) {
        lock(&self.inner.settings).error_ratio = ratio.clamp(0.0, 1.0);
    }

    /// Requests answered so far (any status).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Resets the request counter.
    pub fn reset_requests(&self) {
        self.inner.requests.store(0, Ordering::Relaxed);
    }

    /// Stops the backend.
    pub fn stop(&self) {
        if let Some(token) = lock(&self.inner.settings).listening.take() {
            token.cancel();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(
    inner: &Inner,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, HangUp> {
    let (mode, latency, ratio) = {
        let s = lock(&inner.settings);
        (s.mode, s.latency, s.error_ratio)
    };
    if mode == BackendMode::Down {
        return Err(HangUp);
    }
    inner.requests.fetch_add(1, Ordering::Relaxed);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = req.uri().path().to_owned();
    let failing = mode == BackendMode::Failing
        || (path != "/health" && ratio > 0.0 && rand::random::<f64>() < ratio);
    let status = if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let body = json!({ "color": inner.color, "version": inner.version, "path": path });
    let mut resp = h::json(status, &body);
    let headers = resp.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&inner.color) {
        headers.insert("x-color", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&inner.version) {
        headers.insert("x-version", v);
    }
    Ok(resp)
}
