//! Row 2: an all-or-nothing batch switch of N services by tag versus N raw PATCHes at the
//! same concurrency, and the batch's peak RSS at two sizes.

use std::time::Duration;

use serde_json::json;

use kong_switch_tests::cli::KongSwitch;
use kong_switch_tests::standin::Profile;

use super::overhead::log_counts;
use super::procs::{self, RawRequest, peak_rss, timed};
use super::setup::Admin;
use super::stats::{fmt_mib, fmt_ratio, median_secs, ratio};
use super::{Ctx, Row, Verdict};

/// Runs row 2.
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let env = ctx.env(Profile::V28, Duration::ZERO).await;
    let admin = Admin::new(&env);
    let base = ctx.name("bat");
    let n = ctx.cfg.batch_services;
    let small = ctx.cfg.batch_small;
    let blue = env.backend("blue", "v1").await;
    let green = env.backend("green", "v2").await;
    let (ub, ug) = (format!("{base}-blue"), format!("{base}-green"));
    admin
        .upstream(&ub, &[(env.target_for(&blue), 100, None)], true)
        .await?;
    admin
        .upstream(&ug, &[(env.target_for(&green), 100, None)], true)
        .await?;
    let tag = format!("{base}-batch");
    let tag_small = format!("{base}-batch-small");
    let mut names = Vec::new();
    let mut creates = Vec::new();
    for (prefix, count, tag) in [
        ("s", n, Some(&tag)),
        ("m", small, Some(&tag_small)),
        ("r", n, None),
    ] {
        for i in 0..count {
            let name = format!("{base}-{prefix}{i:04}");
            let tags: Vec<&String> = tag.into_iter().collect();
            creates.push((
                "PUT",
                format!("/services/{name}"),
                json!({ "name": name, "host": ub, "port": 80, "tags": tags }),
            ));
            names.push(name);
        }
    }
    admin.many(creates).await?;
    admin.wait_healthy(&ub).await?;
    admin.wait_healthy(&ug).await?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cli = KongSwitch::new(env.admin_url(), state.path()).with_actor("bench");

    // Baseline files: the same N PATCHes, to green and back to blue.
    let files = [&ug, &ub]
        .iter()
        .map(|host| {
            let reqs: Vec<RawRequest> = (0..n)
                .map(|i| RawRequest {
                    method: "PATCH".into(),
                    url: format!("{}/services/{base}-r{i:04}", env.admin_url()),
                    body: Some(format!("{{\"host\":\"{host}\"}}")),
                })
                .collect();
            procs::write_requests(&reqs)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut rows = Vec::new();
    let mut request_counts = None;
    let mut raw_i = 0;
    // Alternate the sides of the big batch: every run switches all N services.
    let mut next = 1usize;
    let sides = [ub.clone(), ug.clone()];
    for parallelism in [10usize, 50] {
        let p = parallelism.to_string();
        let mut switch = || {
            let to = &sides[next];
            next = 1 - next;
            cli.command(&[
                "--quiet",
                "switch",
                "--tag",
                &tag,
                "--parallelism",
                &p,
                "--to",
                to,
            ])
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for rep in 0..ctx.cfg.batch_reps {
            for leg in [rep % 2, 1 - rep % 2] {
                if leg == 0 {
                    if let Some(s) = env.standin() {
                        s.log().clear();
                    }
                    let t = timed(switch()).await?.check("kong-switch switch --tag")?;
                    if request_counts.is_none() {
                        request_counts = log_counts(&env);
                    }
                    a.push(t.wall);
                } else {
                    let f = &files[raw_i % 2];
                    raw_i += 1;
                    b.push(
                        timed(procs::raw_command(f.path(), parallelism))
                            .await?
                            .check("raw PATCHes")?
                            .wall,
                    );
                }
            }
        }
        let r = ratio(median_secs(&a), median_secs(&b));
        ctx.detail(format!(
            "batch p={parallelism}: switch median {:.0} ms, raw median {:.0} ms",
            median_secs(&a).unwrap_or(0.0) * 1e3,
            median_secs(&b).unwrap_or(0.0) * 1e3
        ));
        rows.push(Row::new(
            "2",
            format!(
                "batch: `switch --tag` of {n} services, --parallelism {parallelism} / {n} raw PATCHes at {parallelism} in flight (minimal Rust client; {}; median of {})",
                ctx.profile_label(Profile::V28, "no router delay"),
                ctx.cfg.batch_reps
            ),
            fmt_ratio(r),
            "≤ 1.30×",
            Verdict::at_most(r, 1.3),
        ));
    }
    if let Some((reads, writes)) = request_counts {
        rows.push(Row::new(
            "2",
            format!("batch of {n}: Admin API requests (stand-in log)"),
            format!("{writes} write(s), {reads} read(s)"),
            format!("{n} writes"),
            Verdict::met(writes == n),
        ));
    }

    // Peak RSS at two sizes.
    let mut rss = Vec::new();
    for (count, t) in [(small, &tag_small), (n, &tag)] {
        let (run, kib) =
            peak_rss(cli.command(&["--quiet", "switch", "--tag", t, "--parallelism", "10"]))
                .await?;
        run.check("kong-switch switch --tag (RSS)")?;
        rss.push((count, kib));
    }
    let growth = ratio(Some(rss[1].1 as f64), Some(rss[0].1 as f64));
    rows.push(Row::new(
        "2",
        format!(
            "batch peak RSS at {} and {} services ({})",
            rss[0].0,
            rss[1].0,
            procs::rss_method().label()
        ),
        format!(
            "{} → {} ({})",
            fmt_mib(rss[0].1),
            fmt_mib(rss[1].1),
            fmt_ratio(growth)
        ),
        "flat in N (≤ 1.25×)",
        Verdict::at_most(growth, 1.25),
    ));
    // Rolling the big batch back: each service is read, written where it differs, and read
    // back, `--parallelism` services at once. Sequential (1) is how it ran before.
    // Each rep switches blue → green, then rolls back: start on blue.
    let rollback_key = format!("tag:{tag}");
    timed(cli.command(&["--quiet", "switch", "--tag", &tag, "--to", &ub]))
        .await?
        .check("kong-switch switch --tag to blue")?;
    for parallelism in [1usize, 10] {
        let p = parallelism.to_string();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for rep in 0..ctx.cfg.batch_reps {
            timed(cli.command(&["--quiet", "switch", "--tag", &tag, "--to", &ug]))
                .await?
                .check("kong-switch switch --tag before the rollback")?;
            a.push(
                timed(cli.command(&["--quiet", "rollback", &rollback_key, "--parallelism", &p]))
                    .await?
                    .check("kong-switch rollback tag:…")?
                    .wall,
            );
            b.push(
                timed(procs::raw_command(files[rep % 2].path(), parallelism))
                    .await?
                    .check("raw PATCHes")?
                    .wall,
            );
        }
        let r = ratio(median_secs(&a), median_secs(&b));
        ctx.detail(format!(
            "batch rollback p={parallelism}: rollback median {:.0} ms, raw median {:.0} ms",
            median_secs(&a).unwrap_or(0.0) * 1e3,
            median_secs(&b).unwrap_or(0.0) * 1e3
        ));
        rows.push(Row::new(
            "2",
            format!(
                "batch: `rollback` of {n} services, --parallelism {parallelism} (read, write, read back each) / {n} raw PATCHes at {parallelism} in flight (median of {})",
                ctx.cfg.batch_reps
            ),
            fmt_ratio(r),
            "info",
            Verdict::Info,
        ));
    }

    if !env.is_standin() {
        admin.cleanup(&names, &[ub, ug]).await;
    }
    Ok(rows)
}
