//! Row 5: peak RSS of `switch`, `--help` cold start versus `true`, binary size.

use std::process::Command;
use std::time::Duration;

use kong_switch_tests::cli::{KongSwitch, kong_switch_bin};
use kong_switch_tests::standin::Profile;

use super::procs::{self, peak_rss, timed};
use super::setup::Admin;
use super::stats::{fmt_mib, fmt_ratio, median_secs, ratio};
use super::{Ctx, Row, Verdict};

/// Runs row 5.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let env = ctx.env(Profile::V28, Duration::ZERO).await;
    let admin = Admin::new(&env);
    let base = ctx.name("fp");
    let seeded = super::overhead::seed(ctx, &env, &admin, &base).await?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cli = KongSwitch::new(env.admin_url(), state.path()).with_actor("bench");
    let mut peak = 0;
    for _ in 0..ctx.cfg.rss_runs {
        let (run, kib) =
            peak_rss(cli.command(&["--output", "json", "switch", &seeded.service])).await?;
        run.check("kong-switch switch (RSS)")?;
        peak = peak.max(kib);
    }
    let mut rows = vec![Row::new(
        "5",
        format!(
            "peak RSS of one `switch` (max of {} runs, {})",
            ctx.cfg.rss_runs,
            procs::rss_method().label()
        ),
        fmt_mib(peak),
        "≤ 20 MiB",
        Verdict::met(peak <= 20 * 1024),
    )];

    let bin = kong_switch_bin();
    let truth = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("true");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..ctx.cfg.help_pairs {
        for leg in [i % 2, 1 - i % 2] {
            if leg == 0 {
                let mut c = Command::new(bin);
                c.arg("--help");
                a.push(timed(c).await?.check("kong-switch --help")?.wall);
            } else {
                b.push(timed(Command::new(truth)).await?.check("true")?.wall);
            }
        }
    }
    let r = ratio(median_secs(&a), median_secs(&b));
    ctx.detail(format!(
        "cold start: --help median {:.2} ms, true median {:.2} ms",
        median_secs(&a).unwrap_or(0.0) * 1e3,
        median_secs(&b).unwrap_or(0.0) * 1e3
    ));
    rows.push(Row::new(
        "5",
        format!(
            "`kong-switch --help` / `true` (whole processes, median of {} pairs)",
            ctx.cfg.help_pairs
        ),
        fmt_ratio(r),
        "info",
        Verdict::Info,
    ));
    let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    let release = bin
        .parent()
        .and_then(|d| d.file_name())
        .is_some_and(|n| n == "release");
    rows.push(Row::new(
        "5",
        format!(
            "binary size ({})",
            if release {
                "release profile: stripped, fat LTO, opt-level s"
            } else {
                "DEBUG build: run with --release for the real figure"
            }
        ),
        fmt_mib(size / 1024),
        "≤ 15 MiB stripped",
        if release {
            Verdict::met(size <= 15 * 1024 * 1024)
        } else {
            Verdict::Info
        },
    ));
    if !env.is_standin() {
        admin
            .cleanup(
                &[seeded.service.clone(), seeded.raw.clone()],
                &seeded.upstreams,
            )
            .await;
    }
    Ok(rows)
}
