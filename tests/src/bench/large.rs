//! Row 4: `status` of a service whose upstream has many targets (paging) versus the same
//! number of raw GETs.

use std::time::Duration;

use kong_switch_tests::cli::KongSwitch;
use kong_switch_tests::standin::Profile;

use super::procs::{self, RawRequest, timed};
use super::setup::Admin;
use super::stats::{fmt_ratio, median_secs, ratio};
use super::{Ctx, Row, Verdict};

/// Runs row 4.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let env = ctx.env(Profile::V28, Duration::ZERO).await;
    let admin = Admin::new(&env);
    let base = ctx.name("big");
    let n = ctx.cfg.targets;
    let (ub, ug) = (format!("{base}-blue"), format!("{base}-green"));
    // Unreachable addresses: no health checks, so nothing connects to them.
    let targets: Vec<(String, u32, Option<&str>)> = (0..n)
        .map(|i| {
            (
                format!("10.{}.{}.{}:8000", 64 + i / 65536, (i / 256) % 256, i % 256),
                100,
                None,
            )
        })
        .collect();
    admin.upstream(&ub, &targets, false).await?;
    admin
        .upstream(&ug, &[("10.255.0.1:8000".to_owned(), 100, None)], false)
        .await?;
    admin.service(&base, &ub, &[], true).await?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cli = KongSwitch::new(env.admin_url(), state.path()).with_actor("bench");
    let status = || cli.command(&["--output", "json", "status", &base]);

    // One run to learn the requests `status` makes (stand-in log), replayed by the baseline.
    if let Some(s) = env.standin() {
        s.log().clear();
    }
    let first = timed(status()).await?.check("kong-switch status")?;
    let listed = serde_json::from_str::<serde_json::Value>(&first.stdout)
        .ok()
        .and_then(|v| v["upstream"]["targets"].as_array().map(Vec::len));
    let replay: Vec<RawRequest> = match env.standin() {
        Some(s) => s
            .log()
            .entries()
            .iter()
            .map(|e| RawRequest {
                method: e.method.clone(),
                url: format!(
                    "{}{}{}",
                    env.admin_url(),
                    e.path,
                    e.query
                        .as_deref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default()
                ),
                body: None,
            })
            .collect(),
        // A real Kong has no request log: replay the pages of the target list.
        None => {
            let pages = n.div_ceil(100).max(1);
            (0..pages + 5)
                .map(|_| RawRequest {
                    method: "GET".into(),
                    url: format!("{}/upstreams/{ub}/targets", env.admin_url()),
                    body: None,
                })
                .collect()
        }
    };
    ctx.detail(format!(
        "requests of `status`: {}",
        replay
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.trim_start_matches(env.admin_url())))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let file = procs::write_requests(&replay)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for rep in 0..ctx.cfg.status_reps {
        for leg in [rep % 2, 1 - rep % 2] {
            if leg == 0 {
                a.push(timed(status()).await?.check("kong-switch status")?.wall);
            } else {
                b.push(
                    timed(procs::raw_command(file.path(), 1))
                        .await?
                        .check("raw GETs")?
                        .wall,
                );
            }
        }
    }
    let r = ratio(median_secs(&a), median_secs(&b));
    ctx.detail(format!(
        "large upstream: status median {:.1} ms, {} raw GETs median {:.1} ms",
        median_secs(&a).unwrap_or(0.0) * 1e3,
        replay.len(),
        median_secs(&b).unwrap_or(0.0) * 1e3
    ));
    let mut rows = vec![Row::new(
        "4",
        format!(
            "large upstream: `status` of a service on {n} targets / the same {} GETs sequentially (minimal Rust client; median of {})",
            replay.len(),
            ctx.cfg.status_reps
        ),
        fmt_ratio(r),
        "≤ 1.20×",
        Verdict::at_most(r, 1.2),
    )];
    rows.push(Row::new(
        "4",
        format!("large upstream: Admin API requests of `status` ({n} targets)"),
        format!(
            "{} request(s){}",
            replay.len(),
            listed
                .map(|l| format!("; {l} targets shown"))
                .unwrap_or_default()
        ),
        "info (pages of ≤ 1,000)",
        Verdict::met(listed == Some(n) || listed.is_none()),
    ));
    if !env.is_standin() {
        admin.cleanup(&[base], &[ub, ug]).await;
    }
    Ok(rows)
}
