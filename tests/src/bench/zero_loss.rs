//! Row 3: traffic through the proxy while upstream switches and weight shifts run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use kong_switch_tests::cli::KongSwitch;
use kong_switch_tests::standin::Profile;

use super::procs::timed;
use super::setup::Admin;
use super::stats::{fmt_ratio, percentile, ratio};
use super::{Ctx, Row, Verdict};

/// What the run was doing when a request was sent (or answered).
const WARMING: u8 = 0;
const QUIET: u8 = 1;
const SWITCHING: u8 = 2;
/// After the last switch, until Kong has applied it: neither baseline nor switching.
const SETTLING: u8 = 3;

/// How long the load runs before the quiet baseline starts.
const WARM_UP: Duration = Duration::from_secs(3);

/// One request through the proxy.
#[derive(Debug, Clone)]
struct Sample {
    /// Seconds since the load started.
    at: f64,
    /// Latency in milliseconds.
    ms: f64,
    ok: bool,
    /// Why it failed.
    error: Option<String>,
    /// The phase: [`SWITCHING`] if any switch ran while it was in flight.
    phase: u8,
}

/// The phase a request counts in, from the phases when it was sent and answered: switching if
/// a switch ran while it was in flight; quiet only if sent and answered quiet. A request sent
/// during the warm-up and answered after it belongs to the warm-up, not to the baseline.
fn sample_phase(sent: u8, answered: u8) -> u8 {
    match (sent, answered) {
        (SWITCHING, _) | (_, SWITCHING) => SWITCHING,
        (QUIET, QUIET) => QUIET,
        (QUIET, other) | (other, _) => other,
    }
}

/// Runs row 3.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let delay = ctx.cfg.zero_loss_router_delay;
    let env = ctx.env(Profile::V3, delay).await;
    let admin = Admin::new(&env);
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let base = ctx.name("zl");
    let (ub, ug) = (format!("{base}-blue"), format!("{base}-green"));
    admin
        .upstream(&ub, &[(env.target_for(&blue), 100, None)], true)
        .await?;
    admin
        .upstream(&ug, &[(env.target_for(&green), 100, None)], true)
        .await?;
    admin.service(&base, &ub, &[], true).await?;
    // The weights service: one upstream holding both colors.
    let w = format!("{base}w");
    admin
        .upstream(
            &w,
            &[
                (env.target_for(&blue), 100, Some("blue")),
                (env.target_for(&green), 0, Some("green")),
            ],
            true,
        )
        .await?;
    admin.service(&w, &w, &[], true).await?;
    admin.wait_healthy(&ub).await?;
    admin.wait_healthy(&ug).await?;
    admin.wait_healthy(&w).await?;
    // Routes reach the 3.x proxy after the router delay.
    let urls = [
        format!("{}/{base}", env.proxy_url()),
        format!("{}/{w}", env.proxy_url()),
    ];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    for url in &urls {
        let ok = kong_switch_tests::harness::Env::wait_until(Duration::from_secs(30), || async {
            http.get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        ok.ok_or_else(|| format!("{url} is not served by the proxy"))?;
    }

    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cli = KongSwitch::new(env.admin_url(), state.path()).with_actor("bench");
    let phase = Arc::new(AtomicU8::new(WARMING));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    // Open-loop load: one request every 1/rate s, alternating the two services.
    let load = {
        let (phase, samples, stop, http) =
            (phase.clone(), samples.clone(), stop.clone(), http.clone());
        let rate = ctx.cfg.zero_loss_rate;
        let urls = urls.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = tokio::task::JoinSet::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let url = urls[i % 2].clone();
                i += 1;
                let (phase, samples, http) = (phase.clone(), samples.clone(), http.clone());
                inflight.spawn(async move {
                    let sent = phase.load(Ordering::Relaxed);
                    let t0 = Instant::now();
                    let error = match http.get(&url).send().await {
                        Ok(r) if !r.status().is_success() => Some(format!("HTTP {}", r.status())),
                        Ok(r) if !r.headers().contains_key("x-color") => {
                            Some("no X-Color header".to_owned())
                        }
                        Ok(r) => r.bytes().await.err().map(|e| format!("body: {e}")),
                        Err(e) if e.is_timeout() => Some("timeout".to_owned()),
                        Err(e) if e.is_connect() => Some("connect".to_owned()),
                        Err(e) => Some(format!("{e}")),
                    };
                    let ok = error.is_none();
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    let at = t0.duration_since(start).as_secs_f64();
                    let answered = phase.load(Ordering::Relaxed);
                    samples.lock().await.push(Sample {
                        at,
                        ms,
                        ok,
                        error,
                        phase: sample_phase(sent, answered),
                    });
                });
                while inflight.try_join_next().is_some() {}
            }
            while inflight.join_next().await.is_some() {}
        })
    };

    // The warm-up: connections open from cold, and an open loop catches up on any start-up
    // stall in a burst (after row 2 that burst lasted past 1 s). Not a baseline.
    tokio::time::sleep(WARM_UP).await;
    phase.store(QUIET, Ordering::Relaxed);
    tokio::time::sleep(ctx.cfg.zero_loss_quiet).await;
    let n = ctx.cfg.zero_loss_switches;
    let shifts = ctx.cfg.zero_loss_shifts;
    let every = (n / shifts.max(1)).max(1);
    let mut failed_runs = Vec::new();
    let (mut done_switches, mut done_shifts, mut shift_attempts) = (0, 0, 0);
    phase.store(SWITCHING, Ordering::Relaxed);
    for i in 0..n {
        let to = if i % 2 == 0 { &ug } else { &ub };
        let t = timed(cli.command(&["--quiet", "switch", &base, "--to", to])).await?;
        match t.check("switch") {
            Ok(_) => done_switches += 1,
            Err(e) => failed_runs.push(e),
        }
        if i % every == every - 1 && shift_attempts < shifts {
            shift_attempts += 1;
            // The weight-0 side has no health in Kong 3.x; the engine checks it itself.
            let color = if shift_attempts % 2 == 1 {
                "green"
            } else {
                "blue"
            };
            let t = timed(cli.command(&["--quiet", "shift", &w, "--to", color])).await?;
            match t.check("shift") {
                Ok(_) => done_shifts += 1,
                Err(e) => failed_runs.push(e),
            }
        }
    }
    // The last switch is applied after the router delay; then a quiet tail.
    phase.store(SETTLING, Ordering::Relaxed);
    tokio::time::sleep(delay + Duration::from_secs(1)).await;
    phase.store(QUIET, Ordering::Relaxed);
    tokio::time::sleep(ctx.cfg.zero_loss_quiet / 2).await;
    stop.store(true, Ordering::Relaxed);
    load.await.map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64();

    let samples = samples.lock().await.clone();
    let failed = samples.iter().filter(|s| !s.ok).count();
    let failures: Vec<&Sample> = samples.iter().filter(|s| !s.ok).collect();
    if !failures.is_empty() {
        let first = failures.iter().map(|f| f.at).fold(f64::INFINITY, f64::min);
        let last = failures.iter().map(|f| f.at).fold(0.0, f64::max);
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for f in &failures {
            let kind = f.error.clone().unwrap_or_default();
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((kind, 1)),
            }
        }
        ctx.detail(format!(
            "zero loss: failures from {first:.1} s to {last:.1} s (phases {:?}): {kinds:?}",
            failures
                .iter()
                .map(|f| f.phase)
                .collect::<std::collections::BTreeSet<_>>()
        ));
    }
    let total = samples.len();
    // Requests per whole second of the run (the last, partial second excluded).
    let secs = elapsed.floor().max(1.0) as usize;
    let mut per_sec = vec![0usize; secs];
    for s in &samples {
        if let Some(slot) = per_sec.get_mut(s.at as usize) {
            *slot += 1;
        }
    }
    let min_rate = per_sec.iter().copied().min().unwrap_or(0);
    let lat = |phase: u8| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.phase == phase && s.ok)
            .map(|s| s.ms)
            .collect()
    };
    let (on, off) = (lat(SWITCHING), lat(QUIET));
    let p50 = ratio(percentile(&on, 50.0), percentile(&off, 50.0));
    let p99 = ratio(percentile(&on, 99.0), percentile(&off, 99.0));
    ctx.detail(format!(
        "zero loss: {total} requests in {elapsed:.1} s, {failed} failed; p50 {:.2}/{:.2} ms, p99 {:.2}/{:.2} ms (switching/quiet); {done_switches} switches, {done_shifts} shifts; blue served {} green {}",
        percentile(&on, 50.0).unwrap_or(0.0),
        percentile(&off, 50.0).unwrap_or(0.0),
        percentile(&on, 99.0).unwrap_or(0.0),
        percentile(&off, 99.0).unwrap_or(0.0),
        blue.requests(),
        green.requests(),
    ));
    for e in &failed_runs {
        ctx.detail(format!("zero loss: a switch failed: {e}"));
    }
    let label = ctx.profile_label(
        Profile::V3,
        &format!("router delay {:.1} s", delay.as_secs_f64()),
    );
    let mut rows = vec![Row::new(
        "3",
        format!(
            "zero loss: failed proxy requests during {done_switches}/{n} upstream switches + {done_shifts}/{shifts} weight shifts ({label})"
        ),
        format!(
            "{failed} failed of {total}; lowest rate {min_rate} req/s (target rate {})",
            ctx.cfg.zero_loss_rate
        ),
        format!(
            "0 failed; ≥ {} req/s throughout",
            ctx.cfg.zero_loss_rate_target
        ),
        Verdict::met(
            failed == 0
                && failed_runs.is_empty()
                && min_rate >= ctx.cfg.zero_loss_rate_target as usize,
        ),
    )];
    rows.push(Row::new(
        "3",
        format!(
            "proxy latency during switches / without ({} vs {} requests)",
            on.len(),
            off.len()
        ),
        format!("p50 {}, p99 {}", fmt_ratio(p50), fmt_ratio(p99)),
        "info",
        Verdict::Info,
    ));
    if !env.is_standin() {
        admin
            .cleanup(&[base.clone(), w.clone()], &[ub, ug, w])
            .await;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_sent_while_warming_up_never_counts_as_quiet() {
        assert_eq!(sample_phase(WARMING, QUIET), WARMING);
        assert_eq!(sample_phase(WARMING, SWITCHING), SWITCHING);
        assert_eq!(sample_phase(QUIET, QUIET), QUIET);
        assert_eq!(sample_phase(QUIET, SETTLING), SETTLING);
        assert_eq!(sample_phase(SETTLING, QUIET), SETTLING);
        assert_eq!(sample_phase(SWITCHING, SETTLING), SWITCHING);
    }
}
