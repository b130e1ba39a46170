//! Post-switch verification through the Kong proxy (design §3 step 6): wait until the proxy
//! serves the new side, then measure success ratio, share from the new side and latency.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::progress::{Progress, ProgressEvent};
use super::request::{HeaderMatch, LatencyBound, VerifyAmount, VerifyConfig};

/// One request of a verification run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// HTTP status, `None` when the request failed (connect error, timeout).
    pub status: Option<u16>,
    /// Time to the response headers.
    pub latency: Duration,
    /// Whether the answer carried the expected header (always false when none is expected).
    pub from_new_side: bool,
}

impl Sample {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What verification measured. Latencies in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// Requests sent.
    pub requests: u32,
    /// 2xx answers.
    pub ok: u32,
    /// Non-2xx answers and failed requests.
    pub failed: u32,
    /// Answers that carried the expected header (`None` when no header was expected).
    pub from_new_side: Option<u32>,
    /// Median latency.
    pub p50_ms: u64,
    /// 95th percentile latency (nearest rank).
    pub p95_ms: u64,
    /// Slowest request.
    pub max_ms: u64,
    /// How long after the last write the proxy served the new side (convergence wait), if
    /// measured.
    pub converged_after_ms: Option<u64>,
    /// Whether the measurement met the requirements.
    pub passed: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100).
pub fn percentile(sorted: &[Duration], p: u32) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1);
    let index = usize::try_from(rank - 1).unwrap_or(0).min(sorted.len() - 1);
    sorted[index]
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Summarises samples and judges them against `config`.
pub fn evaluate(
    samples: &[Sample],
    config: &VerifyConfig,
    converged_after: Option<Duration>,
) -> VerificationReport {
    let requests = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let ok = u32::try_from(samples.iter().filter(|s| s.ok()).count()).unwrap_or(u32::MAX);
    let from_new =
        u32::try_from(samples.iter().filter(|s| s.from_new_side).count()).unwrap_or(u32::MAX);
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    let p50 = percentile(&latencies, 50);
    let p95 = percentile(&latencies, 95);
    let max = latencies.last().copied().unwrap_or_default();

    let mut failures = Vec::new();
    if requests == 0 {
        failures.push("no request was sent".to_owned());
    } else {
        let ratio = f64::from(ok) / f64::from(requests);
        if ratio + 1e-9 < config.min_success {
            failures.push(format!(
                "success {ok}/{requests} ({:.1}%) below the required {:.1}%",
                ratio * 100.0,
                config.min_success * 100.0
            ));
        }
        if let Some(h) = &config.expect_header
            && from_new < requests
        {
            failures.push(format!(
                "{} of {requests} answers did not come from the new side (header {h})",
                requests - from_new
            ));
        }
    }
    match config.latency {
        Some(LatencyBound::P95(bound)) if p95 > bound => failures.push(format!(
            "p95 latency {} ms above {} ms",
            millis(p95),
            millis(bound)
        )),
        Some(LatencyBound::Max(bound)) if max > bound => failures.push(format!(
            "max latency {} ms above {} ms",
            millis(max),
            millis(bound)
        )),
        _ => {}
    }
    VerificationReport {
        requests,
        ok,
        failed: requests - ok,
        from_new_side: config.expect_header.as_ref().map(|_| from_new),
        p50_ms: millis(p50),
        p95_ms: millis(p95),
        max_ms: millis(max),
        converged_after_ms: converged_after.map(millis),
        passed: failures.is_empty(),
        failure: if failures.is_empty() {
            None
        } else {
            Some(failures.join("; "))
        },
    }
}

/// Sends one GET and records it.
pub(crate) async fn sample(
    http: &reqwest::Client,
    url: &Url,
    header: Option<&HeaderMatch>,
    timeout: Duration,
) -> Sample {
    let started = Instant::now();
    match http.get(url.clone()).timeout(timeout).send().await {
        Err(_) => Sample {
            status: None,
            latency: started.elapsed(),
            from_new_side: false,
        },
        Ok(resp) => {
            let latency = started.elapsed();
            let from_new_side = header.is_some_and(|h| {
                resp.headers()
                    .get(h.name.as_str())
                    .and_then(|v| v.to_str().ok())
                    == Some(h.value.as_str())
            });
            Sample {
                status: Some(resp.status().as_u16()),
                latency,
                from_new_side,
            }
        }
    }
}

/// How a convergence wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Converged {
    /// Seen after this long.
    After(Duration),
    /// Not within the timeout.
    TimedOut(Duration),
    /// The run was cancelled.
    Cancelled,
}

/// What a convergence wait polls.
pub(crate) struct Poll<'a> {
    pub url: &'a Url,
    pub header: &'a HeaderMatch,
    pub consecutive: u32,
    pub interval: Duration,
    pub request_timeout: Duration,
    pub timeout: Duration,
    pub node: &'a str,
}

/// Polls `poll.url` until `consecutive` answers in a row carry the header, for at most
/// `poll.timeout`.
pub(crate) async fn await_new_side(
    http: &reqwest::Client,
    poll: Poll<'_>,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Converged {
    let Poll {
        url,
        header,
        consecutive,
        interval,
        request_timeout,
        timeout,
        node,
    } = poll;
    let started = Instant::now();
    let deadline = started + timeout;
    progress.event(ProgressEvent::Waiting {
        what: format!("{node} proxy to serve the new side ({header})"),
        up_to: timeout,
    });
    let mut streak = 0u32;
    let mut first_seen = None;
    loop {
        if cancel.is_cancelled() {
            return Converged::Cancelled;
        }
        let s = sample(http, url, Some(header), request_timeout).await;
        if s.from_new_side && s.ok() {
            if streak == 0 {
                first_seen = Some(started.elapsed());
            }
            streak += 1;
            if streak >= consecutive.max(1) {
                return Converged::After(first_seen.unwrap_or_else(|| started.elapsed()));
            }
        } else {
            streak = 0;
        }
        if Instant::now() >= deadline {
            return Converged::TimedOut(started.elapsed());
        }
        tokio::select! {
            () = cancel.cancelled() => return Converged::Cancelled,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Sends the verification traffic and returns the samples, or `None` if cancelled.
pub(crate) async fn measure(
    http: &reqwest::Client,
    config: &VerifyConfig,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Option<Vec<Sample>> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let total = match config.amount {
        VerifyAmount::Count(n) => Some(n),
        VerifyAmount::For(_) => None,
    };
    loop {
        let done = match config.amount {
            VerifyAmount::Count(n) => samples.len() as u64 >= u64::from(n),
            VerifyAmount::For(d) => started.elapsed() >= d && !samples.is_empty(),
        };
        if done {
            return Some(samples);
        }
        if cancel.is_cancelled() {
            return None;
        }
        samples.push(
            sample(
                http,
                &config.url,
                config.expect_header.as_ref(),
                config.request_timeout,
            )
            .await,
        );
        progress.event(ProgressEvent::Verifying {
            done: u32::try_from(samples.len()).unwrap_or(u32::MAX),
            of: total,
        });
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> VerifyConfig {
        VerifyConfig::new("http://kong:8000/orders".parse().unwrap())
    }

    fn s(status: u16, ms: u64, new: bool) -> Sample {
        Sample {
            status: Some(status),
            latency: Duration::from_millis(ms),
            from_new_side: new,
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Duration::from_millis(10));
        assert_eq!(percentile(&v, 95), Duration::from_millis(19));
        assert_eq!(percentile(&v, 100), Duration::from_millis(20));
        assert_eq!(percentile(&[], 95), Duration::ZERO);
    }

    #[test]
    fn all_2xx_passes_and_reports_latencies() {
        let samples: Vec<Sample> = (1..=10).map(|i| s(200, i * 10, false)).collect();
        let r = evaluate(&samples, &config(), Some(Duration::from_millis(4200)));
        assert!(r.passed, "{:?}", r.failure);
        assert_eq!((r.requests, r.ok, r.failed), (10, 10, 0));
        assert_eq!((r.p50_ms, r.p95_ms, r.max_ms), (50, 100, 100));
        assert_eq!(r.converged_after_ms, Some(4200));
        assert_eq!(r.from_new_side, None);
    }

    #[test]
    fn one_failure_fails_the_default_ratio_but_passes_0_9() {
        let mut samples: Vec<Sample> = (0..9).map(|_| s(200, 5, false)).collect();
        samples.push(Sample {
            status: None,
            latency: Duration::from_millis(5),
            from_new_side: false,
        });
        let r = evaluate(&samples, &config(), None);
        assert!(!r.passed);
        assert_eq!(r.failed, 1);
        assert!(
            r.failure
                .as_deref()
                .unwrap_or_default()
                .contains("success 9/10")
        );
        let mut relaxed = config();
        relaxed.min_success = 0.9;
        assert!(evaluate(&samples, &relaxed, None).passed);
    }

    #[test]
    fn answers_from_the_old_side_fail_when_a_header_is_expected() {
        let mut cfg = config();
        cfg.expect_header = Some("x-color=green".parse().unwrap());
        let samples = vec![s(200, 5, true), s(200, 5, false)];
        let r = evaluate(&samples, &cfg, None);
        assert!(!r.passed);
        assert_eq!(r.from_new_side, Some(1));
        assert!(
            r.failure
                .unwrap()
                .contains("1 of 2 answers did not come from the new side")
        );
    }

    #[test]
    fn latency_bounds_apply_to_p95_or_max() {
        let samples: Vec<Sample> = (1..=20).map(|i| s(200, i * 10, false)).collect();
        let mut cfg = config();
        cfg.latency = Some(LatencyBound::P95(Duration::from_millis(150)));
        let r = evaluate(&samples, &cfg, None);
        assert!(!r.passed);
        assert!(
            r.failure
                .unwrap()
                .contains("p95 latency 190 ms above 150 ms")
        );
        cfg.latency = Some(LatencyBound::Max(Duration::from_millis(200)));
        assert!(evaluate(&samples, &cfg, None).passed);
    }
}
