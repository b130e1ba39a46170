//! Pre-flight gates (design §3 step 3): small values that each return a named outcome with
//! what was observed and what was required.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{TargetHealth, TargetWithHealth, UpstreamHealth};

use super::request::Probe;

/// The result of one gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GateOutcome {
    /// Gate name, e.g. `green_exists`, `min_healthy[node-a]`, `probe[0]`.
    pub name: String,
    /// Whether the gate let the switch through.
    pub passed: bool,
    /// What was observed, e.g. `1 of 2 targets HEALTHY (1 UNHEALTHY)`.
    pub observed: String,
    /// What the gate requires, e.g. `>= 100% HEALTHY`.
    pub required: String,
}

impl GateOutcome {
    pub(crate) fn new(
        name: impl Into<String>,
        passed: bool,
        observed: impl Into<String>,
        required: impl Into<String>,
    ) -> GateOutcome {
        GateOutcome {
            name: name.into(),
            passed,
            observed: observed.into(),
            required: required.into(),
        }
    }
}

/// A summary line of the failed gates: `min_healthy: observed …, required …; probe[0]: …`.
pub fn refusal_reason(gates: &[GateOutcome]) -> String {
    gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| {
            format!(
                "{}: observed {}, required {}",
                g.name, g.observed, g.required
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `green_exists`: the destination entity was found.
pub fn exists(kind: &str, name: Option<&str>, looked_for: &str) -> GateOutcome {
    let required = format!("the {kind} to switch to exists");
    match name {
        Some(name) => GateOutcome::new("green_exists", true, format!("{kind} {name}"), required),
        None => GateOutcome::new(
            "green_exists",
            false,
            format!("no {kind} {looked_for}"),
            required,
        ),
    }
}

/// `min_targets`: at least `min` targets (`counted` of `listed`).
pub fn min_targets(counted: usize, listed: usize, min: usize, what: &str) -> GateOutcome {
    GateOutcome::new(
        "min_targets",
        counted >= min,
        format!("{counted} {what} (of {listed} targets)"),
        format!(">= {min}"),
    )
}

/// Health counts over a set of targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCounts {
    /// `HEALTHY`.
    pub healthy: usize,
    /// `UNHEALTHY` or `DNS_ERROR`.
    pub unhealthy: usize,
    /// `HEALTHCHECKS_OFF`, no health at all (bare targets), or a value this crate does not
    /// know.
    pub unknown: usize,
}

impl HealthCounts {
    /// Counts the health of the entries whose target key or address is in `keys` (all
    /// entries when `keys` is `None`).
    pub fn of(health: &UpstreamHealth, keys: Option<&[String]>) -> HealthCounts {
        let mut counts = HealthCounts::default();
        for entry in &health.data {
            if let Some(keys) = keys
                && !keys.iter().any(|k| {
                    Some(k.as_str()) == entry.target.id.as_deref() || *k == entry.target.target
                })
            {
                continue;
            }
            counts.add(entry);
        }
        counts
    }

    fn add(&mut self, entry: &TargetWithHealth) {
        match &entry.health {
            Some(TargetHealth::Healthy) => self.healthy += 1,
            Some(TargetHealth::Unhealthy | TargetHealth::DnsError) => self.unhealthy += 1,
            Some(TargetHealth::HealthchecksOff | TargetHealth::Unknown(_)) | None => {
                self.unknown += 1
            }
        }
    }

    /// Targets counted.
    pub fn total(&self) -> usize {
        self.healthy + self.unhealthy + self.unknown
    }
}

/// `min_healthy`: the fraction of HEALTHY targets (unknown health counts as healthy only
/// with `allow_unknown`) is at least `min`. `label` names where health was read.
pub fn min_healthy(
    counts: HealthCounts,
    min: f64,
    allow_unknown: bool,
    label: &str,
) -> GateOutcome {
    let name = if label.is_empty() {
        "min_healthy".to_owned()
    } else {
        format!("min_healthy[{label}]")
    };
    let required = format!(
        ">= {}% HEALTHY{}",
        (min * 100.0).round(),
        if allow_unknown {
            " (unknown accepted)"
        } else {
            ""
        }
    );
    let total = counts.total();
    let mut observed = format!("{} of {total} HEALTHY", counts.healthy);
    if counts.unhealthy > 0 {
        observed.push_str(&format!(", {} UNHEALTHY", counts.unhealthy));
    }
    if counts.unknown > 0 {
        observed.push_str(&format!(
            ", {} unknown (HEALTHCHECKS_OFF or no balancer yet)",
            counts.unknown
        ));
    }
    if total == 0 {
        return GateOutcome::new(name, min <= 0.0, "no targets to check", required);
    }
    if counts.unknown > 0 && !allow_unknown && counts.unhealthy == 0 && min > 0.0 {
        // say plainly why a green side without health checks is refused
        observed.push_str("; enable health checks or accept unknown health");
    }
    let good = counts.healthy + if allow_unknown { counts.unknown } else { 0 };
    let fraction = good as f64 / total as f64;
    GateOutcome::new(name, fraction + 1e-9 >= min, observed, required)
}

/// A health view that could not be read (hybrid control plane without data-plane URLs, a
/// data plane that did not answer).
pub fn health_unavailable(label: &str, why: &str, allow_unknown: bool) -> GateOutcome {
    GateOutcome::new(
        if label.is_empty() {
            "min_healthy".to_owned()
        } else {
            format!("min_healthy[{label}]")
        },
        allow_unknown,
        format!("health unknown: {why}"),
        "health readable (or unknown accepted)",
    )
}

/// One answer of an HTTP probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// Status, or `None` if the request failed.
    pub status: Option<u16>,
    /// Whether the expected header was present (always true when none is expected).
    pub header_ok: bool,
    /// Whether the body contained the expected text (always true when none is expected).
    pub body_ok: bool,
    /// The transport error, if any.
    pub error: Option<String>,
}

/// Judges the answers of probe number `index`.
pub fn probe_outcome(index: usize, probe: &Probe, answers: &[ProbeAnswer]) -> GateOutcome {
    let ok = answers
        .iter()
        .filter(|a| a.status == Some(probe.expect_status) && a.header_ok && a.body_ok)
        .count();
    let mut required = format!("{} × status {}", probe.count, probe.expect_status);
    if let Some(h) = &probe.expect_header {
        required.push_str(&format!(", header {h}"));
    }
    if let Some(b) = &probe.body_contains {
        required.push_str(&format!(", body contains {b:?}"));
    }
    let mut observed = format!("{ok} of {} matched", answers.len());
    if let Some(bad) = answers
        .iter()
        .find(|a| !(a.status == Some(probe.expect_status) && a.header_ok && a.body_ok))
    {
        let detail = match (&bad.error, bad.status) {
            (Some(e), _) => format!("error: {e}"),
            (None, Some(s)) if s != probe.expect_status => format!("status {s}"),
            (None, _) if !bad.header_ok => "header missing or different".to_owned(),
            _ => "body did not match".to_owned(),
        };
        observed.push_str(&format!(" (first mismatch: {detail})"));
    }
    GateOutcome::new(
        format!("probe[{index}] {}", probe.url),
        ok == answers.len() && answers.len() as u32 >= probe.count,
        observed,
        required,
    )
}

/// Runs one probe: `count` GETs, sequentially.
pub(crate) async fn run_probe(http: &reqwest::Client, probe: &Probe) -> Vec<ProbeAnswer> {
    let mut answers = Vec::with_capacity(probe.count as usize);
    for _ in 0..probe.count.max(1) {
        answers.push(probe_once(http, probe, probe.timeout).await);
    }
    answers
}

async fn probe_once(http: &reqwest::Client, probe: &Probe, timeout: Duration) -> ProbeAnswer {
    match http.get(probe.url.clone()).timeout(timeout).send().await {
        Err(e) => ProbeAnswer {
            status: None,
            header_ok: false,
            body_ok: false,
            error: Some(e.without_url().to_string()),
        },
        Ok(resp) => {
            let status = resp.status().as_u16();
            let header_ok = probe.expect_header.as_ref().is_none_or(|h| {
                resp.headers()
                    .get(h.name.as_str())
                    .and_then(|v| v.to_str().ok())
                    == Some(h.value.as_str())
            });
            let body_ok = match &probe.body_contains {
                None => true,
                Some(needle) => resp.text().await.is_ok_and(|b| b.contains(needle.as_str())),
            };
            ProbeAnswer {
                status: Some(status),
                header_ok,
                body_ok,
                error: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn health(entries: &[(&str, Option<&str>)]) -> UpstreamHealth {
        let data: Vec<serde_json::Value> = entries
            .iter()
            .map(|(t, h)| {
                let mut v = json!({"id": t, "target": format!("{t}:8000"), "weight": 100});
                if let Some(h) = h {
                    v["health"] = json!(h);
                }
                v
            })
            .collect();
        serde_json::from_value(json!({"data": data, "next": null})).unwrap()
    }

    #[test]
    fn min_healthy_reports_observed_counts_and_refuses_below_the_fraction() {
        let h = health(&[("a", Some("HEALTHY")), ("b", Some("UNHEALTHY"))]);
        let g = min_healthy(HealthCounts::of(&h, None), 1.0, false, "");
        assert!(!g.passed);
        assert_eq!(g.name, "min_healthy");
        assert_eq!(g.observed, "1 of 2 HEALTHY, 1 UNHEALTHY");
        assert_eq!(g.required, ">= 100% HEALTHY");
        let g = min_healthy(HealthCounts::of(&h, None), 0.5, false, "node-b");
        assert!(g.passed);
        assert_eq!(g.name, "min_healthy[node-b]");
    }

    #[test]
    fn healthchecks_off_and_bare_targets_are_unknown_and_refused_unless_allowed() {
        let h = health(&[("a", Some("HEALTHCHECKS_OFF")), ("b", None)]);
        let counts = HealthCounts::of(&h, None);
        assert_eq!(
            counts,
            HealthCounts {
                healthy: 0,
                unhealthy: 0,
                unknown: 2
            }
        );
        let refused = min_healthy(counts, 1.0, false, "");
        assert!(!refused.passed);
        assert!(
            refused.observed.contains("2 unknown"),
            "{}",
            refused.observed
        );
        assert!(min_healthy(counts, 1.0, true, "").passed);
    }

    #[test]
    fn health_is_counted_only_for_the_selected_targets() {
        let h = health(&[("g1", Some("HEALTHY")), ("b1", Some("UNHEALTHY"))]);
        let counts = HealthCounts::of(&h, Some(&["g1".to_owned()]));
        assert_eq!(counts.healthy, 1);
        assert_eq!(counts.total(), 1);
    }

    #[test]
    fn min_targets_and_exists_name_what_they_saw() {
        let g = min_targets(0, 2, 1, "targets with weight > 0");
        assert!(!g.passed);
        assert_eq!(g.observed, "0 targets with weight > 0 (of 2 targets)");
        let g = exists("upstream", None, "orders-green");
        assert!(!g.passed);
        assert_eq!(g.observed, "no upstream orders-green");
        let g = exists("upstream", Some("orders-green"), "orders-green");
        assert!(g.passed);
        assert_eq!(
            (g.observed.as_str(), g.required.as_str()),
            ("upstream orders-green", "the upstream to switch to exists")
        );
    }

    #[test]
    fn probes_pass_only_when_every_answer_matches() {
        let mut probe = Probe::new("http://green.internal/health".parse().unwrap());
        probe.count = 2;
        let ok = ProbeAnswer {
            status: Some(200),
            header_ok: true,
            body_ok: true,
            error: None,
        };
        let bad = ProbeAnswer {
            status: Some(503),
            ..ok.clone()
        };
        assert!(probe_outcome(0, &probe, &[ok.clone(), ok.clone()]).passed);
        let g = probe_outcome(0, &probe, &[ok, bad]);
        assert!(!g.passed);
        assert_eq!(g.observed, "1 of 2 matched (first mismatch: status 503)");
        assert_eq!(g.name, "probe[0] http://green.internal/health");
    }

    #[test]
    fn refusal_reason_lists_every_failed_gate() {
        let gates = vec![
            GateOutcome::new("a", true, "x", "y"),
            GateOutcome::new("b", false, "0", ">= 1"),
            GateOutcome::new("c", false, "no", "yes"),
        ];
        assert_eq!(
            refusal_reason(&gates),
            "b: observed 0, required >= 1; c: observed no, required yes"
        );
    }
}
