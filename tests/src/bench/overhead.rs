//! Row 1: the overhead of one `kong-switch switch` process over one raw `curl` PATCH.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use kong_switch_tests::cli::KongSwitch;
use kong_switch_tests::standin::Profile;

use super::procs::{self, RawRequest, timed};
use super::setup::Admin;
use super::stats::{fmt_ratio, median_secs, ratio};
use super::{Ctx, Row, Verdict};

/// A seeded blue/green service: `<base>` on `<base>-blue`, `<base>-green` beside it, and
/// `<base>-raw` for the raw PATCH baseline.
pub struct Seeded {
    /// The service switched.
    pub service: String,
    /// The service the baseline patches.
    pub raw: String,
    /// Upstream names.
    pub upstreams: [String; 2],
    _backends: [kong_switch_tests::backend::Backend; 2],
}

/// Seeds one switchable service with healthy blue and green upstreams.
pub async fn seed(
    ctx: &Ctx,
    env: &kong_switch_tests::harness::Env,
    admin: &Admin,
    base: &str,
) -> Result<Seeded, String> {
    let _ = ctx;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let (ub, ug) = (format!("{base}-blue"), format!("{base}-green"));
    admin
        .upstream(&ub, &[(env.target_for(&blue), 100, None)], true)
        .await?;
    admin
        .upstream(&ug, &[(env.target_for(&green), 100, None)], true)
        .await?;
    admin.service(base, &ub, &[], false).await?;
    let raw = format!("{base}-raw");
    admin.service(&raw, &ub, &[], false).await?;
    admin.wait_healthy(&ub).await?;
    admin.wait_healthy(&ug).await?;
    Ok(Seeded {
        service: base.to_owned(),
        raw,
        upstreams: [ub, ug],
        _backends: [blue, green],
    })
}

/// The baseline: one raw PATCH of `service`'s host as a whole process (curl, or the minimal
/// Rust client when curl is missing).
pub struct RawPatch {
    curl: Option<std::path::PathBuf>,
    files: Vec<tempfile::NamedTempFile>,
    admin: String,
    service: String,
    hosts: [String; 2],
}

impl RawPatch {
    /// Prepares the baseline.
    pub fn new(admin: &str, service: &str, hosts: [String; 2]) -> Result<RawPatch, String> {
        let curl = procs::curl();
        let files = hosts
            .iter()
            .map(|h| {
                procs::write_requests(&[RawRequest {
                    method: "PATCH".into(),
                    url: format!("{admin}/services/{service}"),
                    body: Some(format!("{{\"host\":\"{h}\"}}")),
                }])
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RawPatch {
            curl,
            files,
            admin: admin.to_owned(),
            service: service.to_owned(),
            hosts,
        })
    }

    /// What the baseline is, for the table.
    pub fn label(&self) -> &'static str {
        if self.curl.is_some() {
            "curl PATCH"
        } else {
            "minimal Rust client PATCH (curl not installed)"
        }
    }

    /// The `i`-th baseline command (alternating hosts).
    pub fn command(&self, i: usize) -> Command {
        let k = i % 2;
        match &self.curl {
            Some(curl) => {
                let mut c = Command::new(curl);
                c.args(["-sS", "-f", "-o", "/dev/null", "-X", "PATCH", "-H"])
                    .arg("Content-Type: application/json")
                    .arg("--data")
                    .arg(format!("{{\"host\":\"{}\"}}", self.hosts[k]))
                    .arg(format!("{}/services/{}", self.admin, self.service));
                c
            }
            None => procs::raw_command(self.files[k].path(), 1),
        }
    }
}

/// Counts of one switch run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    report_reads: u64,
    report_concurrent: u64,
    report_writes: u64,
    log_reads: Option<usize>,
    log_writes: Option<usize>,
}

fn counts(report: &Value, log: Option<(usize, usize)>) -> Counts {
    Counts {
        report_reads: report["reads"]["requests"].as_u64().unwrap_or(0),
        report_concurrent: report["reads"]["concurrent"].as_u64().unwrap_or(0),
        report_writes: report["writes"].as_array().map_or(0, |w| w.len() as u64),
        log_reads: log.map(|l| l.0),
        log_writes: log.map(|l| l.1),
    }
}

/// GETs and writes in the stand-in's log.
pub fn log_counts(env: &kong_switch_tests::harness::Env) -> Option<(usize, usize)> {
    let entries = env.standin()?.log().entries();
    let reads = entries
        .iter()
        .filter(|e| matches!(e.method.as_str(), "GET" | "HEAD"))
        .count();
    Some((reads, entries.len() - reads))
}

/// Runs row 1.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let env = ctx.env(Profile::V28, Duration::ZERO).await;
    let admin = Admin::new(&env);
    let base = ctx.name("ovh");
    let seeded = seed(ctx, &env, &admin, &base).await?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cli = KongSwitch::new(env.admin_url(), state.path()).with_actor("bench");
    let raw = RawPatch::new(
        env.admin_url(),
        &seeded.raw,
        [seeded.upstreams[1].clone(), seeded.upstreams[0].clone()],
    )?;
    // Alternate the sides: every run is a real switch (blue → green → blue …).
    let mut next = 1usize;
    let mut switch = || {
        let to = &seeded.upstreams[next];
        next = 1 - next;
        cli.command(&["--output", "json", "switch", &seeded.service, "--to", to])
    };

    // Warm-up: page cache, first connections.
    timed(switch()).await?.check("kong-switch switch")?;
    timed(raw.command(1)).await?.check(raw.label())?;
    timed(raw.command(0)).await?.check(raw.label())?;

    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut all_counts: Vec<Counts> = Vec::new();
    let mut last_log: Vec<String> = Vec::new();
    for i in 0..ctx.cfg.pairs {
        for leg in [i % 2, 1 - i % 2] {
            if leg == 0 {
                if let Some(s) = env.standin() {
                    s.log().clear();
                }
                let t = timed(switch()).await?.check("kong-switch switch")?;
                let report: Value = serde_json::from_str(&t.stdout)
                    .map_err(|e| format!("switch output is not JSON: {e}"))?;
                if report["outcome"] != "completed" {
                    return Err(format!("switch did not complete: {}", report["message"]));
                }
                all_counts.push(counts(&report, log_counts(&env)));
                if let Some(s) = env.standin() {
                    last_log = s
                        .log()
                        .entries()
                        .iter()
                        .map(|e| format!("{} {}", e.method, e.path))
                        .collect();
                }
                a.push(t.wall);
            } else {
                b.push(timed(raw.command(i)).await?.check(raw.label())?.wall);
            }
        }
    }
    if !last_log.is_empty() {
        ctx.detail(format!("requests of one switch: {}", last_log.join(", ")));
    }
    let (ma, mb) = (median_secs(&a), median_secs(&b));
    let r = ratio(ma, mb);
    ctx.detail(format!(
        "overhead: switch median {:.1} ms, {} median {:.1} ms over {} pairs",
        ma.unwrap_or(0.0) * 1e3,
        raw.label(),
        mb.unwrap_or(0.0) * 1e3,
        ctx.cfg.pairs
    ));
    let mut rows = vec![Row::new(
        "1",
        format!(
            "switch overhead: whole `switch` process (gates on, no --verify) / one {} ({}, median of {} A/B pairs)",
            raw.label(),
            ctx.profile_label(Profile::V28, "strict, no router delay"),
            ctx.cfg.pairs
        ),
        fmt_ratio(r),
        "≤ 1.50×",
        Verdict::at_most(r, 1.5),
    )];
    let c = all_counts.last().copied().ok_or("no switch measured")?;
    let stable = all_counts.iter().all(|x| *x == c);
    let log = match (c.log_reads, c.log_writes) {
        (Some(r), Some(w)) => format!("; stand-in log: {r} GET, {w} write(s)"),
        _ => String::new(),
    };
    rows.push(Row::new(
        "1",
        "Admin API requests of one switch".into(),
        format!(
            "{} write(s), {} read(s), up to {} read(s) at once{log}{}",
            c.report_writes,
            c.report_reads,
            c.report_concurrent,
            if stable { "" } else { " (varied between runs)" }
        ),
        "exactly 1 write; reads concurrent",
        Verdict::met(
            c.report_writes == 1 && c.report_concurrent > 1 && c.log_writes.is_none_or(|w| w == 1),
        ),
    ));
    if ctx.is_standin() {
        rows.push(convergence(ctx, mb).await?);
    }
    Ok(rows)
}

/// Row 1, 3.x: a whole switch including the wait for Kong's router rebuild, as a ratio to
/// that delay.
async fn convergence(ctx: &Ctx, curl_median: Option<f64>) -> Result<Row, String> {
    let delay = ctx.cfg.router_delay;
    let env = ctx.env(Profile::V3, delay).await;
    let admin = Admin::new(&env);
    let base = ctx.name("conv");
    let seeded = seed(ctx, &env, &admin, &base).await?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cli = KongSwitch::new(env.admin_url(), state.path()).with_actor("bench");
    let mut walls = Vec::new();
    for i in 0..ctx.cfg.convergence_runs {
        let to = &seeded.upstreams[1 - i % 2];
        let t = timed(cli.command(&["--output", "json", "switch", &seeded.service, "--to", to]))
            .await?
            .check("kong-switch switch (3.x)")?;
        walls.push(t.wall);
    }
    let m = median_secs(&walls);
    let over = ratio(m, Some(delay.as_secs_f64()));
    let vs_curl = ratio(m, curl_median);
    Ok(Row::new(
        "1",
        format!(
            "switch incl. convergence wait (3.x profile, router delay {:.1} s; median of {}) / that router delay",
            delay.as_secs_f64(),
            ctx.cfg.convergence_runs
        ),
        format!(
            "{} ({} the curl PATCH)",
            fmt_ratio(over),
            fmt_ratio(vs_curl)
        ),
        "info (the switch is done when the proxy serves green)",
        Verdict::Info,
    ))
}
