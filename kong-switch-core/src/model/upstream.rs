use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EntityRef, Extra, Timestamp};

/// A Kong Upstream: a named, load-balanced set of Targets with health checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Upstream {
    /// Entity id (UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Creation time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Last update time (Kong 3.3+ only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// Unique name; a hostname that Services use as their `host`.
    pub name: String,
    /// `round-robin` (default), `consistent-hashing`, `least-connections`, or `latency` (3.2+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// What to hash on for consistent hashing (default `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<String>,
    /// Fallback hash input (default `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_fallback: Option<String>,
    /// Header hashed on when `hash_on` is `header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on_header: Option<String>,
    /// Header hashed on when `hash_fallback` is `header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_fallback_header: Option<String>,
    /// Cookie hashed on when hashing on `cookie`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on_cookie: Option<String>,
    /// Cookie path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on_cookie_path: Option<String>,
    /// Balancer ring size, 10..=65536 (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
    /// Health checks; all off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthchecks: Option<Healthchecks>,
    /// `Host` header sent to targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_header: Option<String>,
    /// Client certificate for target mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<EntityRef>,
    /// Use SRV target names as `Host` (3.1+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_srv_name: Option<bool>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Fields this crate does not model (3.x `hash_on_query_arg`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Upstream {
    /// Whether the upstream carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().flatten().any(|t| t == tag)
    }

    /// Whether Kong checks the targets' health (actively or passively).
    pub fn healthchecks_enabled(&self) -> bool {
        self.healthchecks
            .as_ref()
            .is_some_and(Healthchecks::enabled)
    }
}

/// The `healthchecks` record of an Upstream.
///
/// Kong checks health only when some interval or counter is non-zero: active probing needs
/// `healthy.interval` or `unhealthy.interval` above zero; passive checking (circuit breaker)
/// needs a non-zero failure counter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Healthchecks {
    /// Percentage of healthy weight below which the upstream counts as unhealthy (0..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Active probing of targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveHealthcheck>,
    /// Passive checking of proxied traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<PassiveHealthcheck>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Healthchecks {
    /// Whether active probing runs (an interval above zero).
    pub fn active_enabled(&self) -> bool {
        self.active.as_ref().is_some_and(|a| {
            let healthy = a.healthy.as_ref().and_then(|h| h.interval).unwrap_or(0.0);
            let unhealthy = a.unhealthy.as_ref().and_then(|u| u.interval).unwrap_or(0.0);
            healthy > 0.0 || unhealthy > 0.0
        })
    }

    /// Whether passive checking runs (a failure counter above zero).
    pub fn passive_enabled(&self) -> bool {
        self.passive
            .as_ref()
            .and_then(|p| p.unhealthy.as_ref())
            .is_some_and(|u| {
                u.http_failures.unwrap_or(0) > 0
                    || u.tcp_failures.unwrap_or(0) > 0
                    || u.timeouts.unwrap_or(0) > 0
            })
    }

    /// Whether any health checking runs.
    pub fn enabled(&self) -> bool {
        self.active_enabled() || self.passive_enabled()
    }
}

/// Active health checks: Kong probes each target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActiveHealthcheck {
    /// `http` (default), `https`, `tcp`, `grpc` or `grpcs`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Probe timeout in seconds (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Probes in flight at once (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Path probed (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// SNI for HTTPS probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_sni: Option<String>,
    /// Verify the target's certificate on HTTPS probes (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_verify_certificate: Option<bool>,
    /// Headers sent with probes (3.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    /// When a target counts as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<ActiveHealthy>,
    /// When a target counts as unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<ActiveUnhealthy>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Healthy thresholds of active checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActiveHealthy {
    /// Seconds between probes of healthy targets; 0 disables them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<f64>,
    /// Statuses that count as success (default `[200, 302]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_statuses: Option<Vec<u16>>,
    /// Successes needed to become healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successes: Option<u32>,
}

/// Unhealthy thresholds of active checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActiveUnhealthy {
    /// Seconds between probes of unhealthy targets; 0 disables them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<f64>,
    /// Statuses that count as failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_statuses: Option<Vec<u16>>,
    /// TCP failures needed to become unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_failures: Option<u32>,
    /// Timeouts needed to become unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<u32>,
    /// HTTP failures needed to become unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_failures: Option<u32>,
}

/// Passive health checks: Kong watches proxied traffic.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PassiveHealthcheck {
    /// `http` (default), `https`, `tcp`, `grpc` or `grpcs`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When a target counts as healthy again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<PassiveHealthy>,
    /// When a target counts as unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<PassiveUnhealthy>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Healthy thresholds of passive checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PassiveHealthy {
    /// Statuses that count as success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_statuses: Option<Vec<u16>>,
    /// Successes needed to become healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successes: Option<u32>,
}

/// Unhealthy thresholds of passive checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PassiveUnhealthy {
    /// Statuses that count as failure (default `[429, 500, 503]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_statuses: Option<Vec<u16>>,
    /// TCP failures needed to become unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_failures: Option<u32>,
    /// Timeouts needed to become unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<u32>,
    /// HTTP failures needed to become unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_failures: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(json: serde_json::Value) -> Healthchecks {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn kong_defaults_mean_health_checks_are_off() {
        let hc = checks(serde_json::json!({
            "threshold": 0,
            "active": {"type": "http", "timeout": 1, "concurrency": 10, "http_path": "/",
                "https_sni": null, "https_verify_certificate": true,
                "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
                "unhealthy": {"interval": 0, "http_statuses": [429, 404, 500],
                    "tcp_failures": 0, "timeouts": 0, "http_failures": 0}},
            "passive": {"type": "http",
                "healthy": {"http_statuses": [200], "successes": 0},
                "unhealthy": {"http_statuses": [429, 500, 503],
                    "tcp_failures": 0, "timeouts": 0, "http_failures": 0}}
        }));
        assert!(!hc.enabled());
    }

    #[test]
    fn an_interval_turns_active_checks_on_and_a_counter_turns_passive_on() {
        let active = checks(serde_json::json!({"active": {"healthy": {"interval": 1}}}));
        assert!(active.active_enabled() && !active.passive_enabled());
        let passive = checks(serde_json::json!({"passive": {"unhealthy": {"http_failures": 3}}}));
        assert!(passive.passive_enabled() && !passive.active_enabled());
    }
}
