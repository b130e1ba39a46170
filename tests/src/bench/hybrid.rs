//! Row 6: hybrid mode, time to "live" against the data planes' own convergence.
//!
//! A hybrid stand-in with Kong's timings (`db_update_frequency` 5 s, push 0.1 s after a
//! write on a quiet control plane, the CP listing a data plane's new hash 0.8 s after it
//! applied it, 3.x proxies 0.7 s behind their hash) and two data planes. Each run waits for a
//! quiet cluster, starts `kong-switch switch` (one write) and, at the same instant, samplers
//! that hit each data plane's proxy every 10 ms. The data planes' own convergence is when the
//! last one serves the new side steadily; kong-switch's time is when its process ends. Both
//! count from the process start, so they include the same reads before the write.

use std::time::{Duration, Instant};

use kong_switch_tests::backend::Backend;
use kong_switch_tests::cli::KongSwitch;
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::{Value, json};

use super::stats::{fmt_ratio, median, ratio};
use super::{Ctx, Row, Verdict};

/// Target of issue 11: time-to-done ÷ the data planes' own convergence.
const TARGET: f64 = 1.2;

/// Runs row 6 on both profiles (stand-ins only: a real hybrid Kong is the e2e suite's).
pub async fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    if !ctx.is_standin() {
        return Ok(vec![Row::new(
            "6",
            "hybrid: time to live / data planes' own convergence".into(),
            "not measured against KONG_ADMIN_URL (needs the hybrid stand-in's data planes)".into(),
            format!("<= {TARGET}x"),
            Verdict::Info,
        )]);
    }
    let runs = match ctx.cfg.mode {
        "full" => 4,
        _ => 1,
    };
    let mut rows = Vec::new();
    for profile in [Profile::V28, Profile::V3] {
        let (ours, theirs) = measure(ctx, profile, runs).await?;
        let r = ratio(median(&ours), median(&theirs));
        ctx.detail(format!(
            "row 6 ({profile}): kong-switch done after {:?} ms, data planes' proxies on the new side after {:?} ms",
            ours.iter().map(|s| (s * 1000.0).round()).collect::<Vec<_>>(),
            theirs.iter().map(|s| (s * 1000.0).round()).collect::<Vec<_>>()
        ));
        let v3 = profile == Profile::V3;
        rows.push(Row::new(
            "6",
            format!(
                "hybrid {profile}: one-write switch, time to done / data planes' own convergence (2 DPs, Kong timings{})",
                if v3 {
                    "; 3.x proxies lag their hash: 0.9 s after the data planes' own hash is allowed"
                } else {
                    ""
                }
            ),
            format!(
                "{} ({:.2} s / {:.2} s)",
                fmt_ratio(r),
                median(&ours).unwrap_or_default(),
                median(&theirs).unwrap_or_default()
            ),
            format!("<= {TARGET}x"),
            Verdict::at_most(r, TARGET),
        ));
    }
    Ok(rows)
}

/// `runs` switches, alternating green and blue; the seconds to done and to the data planes'
/// convergence of each.
async fn measure(ctx: &Ctx, profile: Profile, runs: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    let blue = Backend::start("blue", "v1")
        .await
        .map_err(|e| format!("blue backend: {e}"))?;
    let green = Backend::start("green", "v2")
        .await
        .map_err(|e| format!("green backend: {e}"))?;
    let kong = StandIn::builder()
        .profile(profile)
        .data_planes(2)
        .start()
        .await
        .map_err(|e| format!("hybrid stand-in: {e}"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let admin = kong.admin_url();
    let base = ctx.name("hy");
    for (color, backend) in [("blue", &blue), ("green", &green)] {
        post(
            &http,
            &format!("{admin}/upstreams"),
            json!({ "name": format!("{base}-{color}") }),
        )
        .await?;
        post(
            &http,
            &format!("{admin}/upstreams/{base}-{color}/targets"),
            json!({ "target": format!("127.0.0.1:{}", backend.port()) }),
        )
        .await?;
    }
    post(
        &http,
        &format!("{admin}/services"),
        json!({ "name": base, "host": format!("{base}-blue") }),
    )
    .await?;
    post(
        &http,
        &format!("{admin}/services/{base}/routes"),
        json!({ "name": base, "paths": [format!("/{base}")] }),
    )
    .await?;
    let proxies: Vec<String> = kong
        .data_planes()
        .iter()
        .map(|dp| format!("{}/{base}", dp.proxy_url()))
        .collect();
    let statuses: Vec<String> = kong
        .data_planes()
        .iter()
        .map(|dp| dp.status_url())
        .collect();
    for p in &proxies {
        steady(&http, p, "blue", Duration::from_secs(30)).await?;
    }
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ks = KongSwitch::new(&admin, state.path()).with_actor("bench");
    let window = Duration::from_secs(5) + Duration::from_millis(1500);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let to = if i % 2 == 0 { "green" } else { "blue" };
        wait_quiet(&http, &admin, window, Duration::from_secs(60)).await?;
        let mut args = vec![
            "switch".to_owned(),
            base.clone(),
            "--to".into(),
            to.into(),
            "--allow-unknown-health".into(),
        ];
        for s in &statuses {
            args.extend(["--dp-status".to_owned(), s.clone()]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = tokio::process::Command::from(ks.command(&argv));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("spawn kong-switch: {e}"))?;
        let samplers: Vec<_> = proxies
            .iter()
            .map(|p| {
                let (http, p) = (http.clone(), p.clone());
                tokio::spawn(async move {
                    steady(&http, &p, to, Duration::from_secs(30))
                        .await
                        .map(|at| at.duration_since(started))
                })
            })
            .collect();
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| format!("kong-switch: {e}"))?;
        let done = started.elapsed();
        if !out.status.success() {
            return Err(format!(
                "kong-switch switch --to {to} exited {}",
                out.status
            ));
        }
        let mut converged = Duration::ZERO;
        for s in samplers {
            converged = converged.max(s.await.map_err(|e| e.to_string())??);
        }
        ours.push(done.as_secs_f64());
        theirs.push(converged.as_secs_f64());
    }
    drop(kong);
    Ok((ours, theirs))
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Result<(), String> {
    let resp = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {url}: {}", resp.status()))
    }
}

/// Waits until `url` answers from `color` three times in a row (every 10 ms); returns when
/// the streak's first request was sent, which is when the proxy had switched.
async fn steady(
    http: &reqwest::Client,
    url: &str,
    color: &str,
    timeout: Duration,
) -> Result<Instant, String> {
    let started = Instant::now();
    let mut streak = 0;
    let mut first = started;
    while streak < 3 {
        let sent = Instant::now();
        let ok = match http.get(url).send().await {
            Ok(r) => {
                r.status().is_success()
                    && r.headers()
                        .get("x-color")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|c| c == color)
            }
            Err(_) => false,
        };
        if ok && streak == 0 {
            first = sent;
        }
        streak = if ok { streak + 1 } else { 0 };
        if started.elapsed() > timeout {
            return Err(format!("{url} never served {color} steadily"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(first)
}

/// Waits until no data plane applied a configuration (nor pinged) within `window`. The
/// control plane lists a data plane's ping up to 0.9 s after a push it applied (a run proven by
/// the Status APIs ends before that), so the list is read only after that lag.
async fn wait_quiet(
    http: &reqwest::Client,
    admin: &str,
    window: Duration,
    timeout: Duration,
) -> Result<(), String> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let rows: Value = http
            .get(format!("{admin}/clustering/data-planes"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let quiet = rows["data"].as_array().into_iter().flatten().all(|r| {
            r["last_seen"]
                .as_u64()
                .is_some_and(|seen| now.saturating_sub(seen) > window.as_secs() + 1)
        });
        if quiet {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err("the data planes never went quiet".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
