//! `kong-switch switch` and `kong-switch shift`.

use std::io::{self, IsTerminal, Write};
use std::str::FromStr;
use std::sync::Arc;

use kong_switch_core::admin::KongClient;
use kong_switch_core::switch::{
    BatchReport, DeploymentAttributes, Engine, ExtraNode, GateConfig, GateOutcome, HybridReport,
    LatencyBound, NodeConvergence, OnFailure, Outcome, Probe, Schedule, Sides, StepStatus,
    Strategy, SwitchReport, SwitchRequest, SwitchTarget, VerificationReport, VerifyAmount,
    VerifyConfig, WeightsOptions,
};
use tokio_util::sync::CancellationToken;

use crate::cli::{
    GlobalArgs, NamingArgs, OnFailureArg, RunArgs, ShiftArgs, StrategyArg, SwitchArgs, WeightsArgs,
};
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{Printer, Render, or_dash};
use crate::progress::{CliProgress, SharedProgress};
use crate::state;

/// Runs `switch`.
pub async fn switch(
    global: &GlobalArgs,
    client: KongClient,
    printer: &Printer,
    args: &SwitchArgs,
) -> Result<Exit, CliError> {
    let target = match (&args.service, args.tag.is_empty()) {
        (Some(service), true) => SwitchTarget::parse(service)?,
        (None, false) => SwitchTarget::Tagged(args.tag.clone()),
        _ => return Err(CliError::usage("give a service, or --tag (not both)")),
    };
    let strategy = match args.strategy {
        StrategyArg::Upstream => Strategy::Upstream,
        StrategyArg::Route => Strategy::Route,
        StrategyArg::Weights => Strategy::Weights(weights_options(&args.weights)?),
    };
    let req = request(global, target, strategy, args.to.clone(), &args.run)?;
    run(global, client, printer, req, &args.run).await
}

/// Runs `shift`: a `weights` switch.
pub async fn shift(
    global: &GlobalArgs,
    client: KongClient,
    printer: &Printer,
    args: &ShiftArgs,
) -> Result<Exit, CliError> {
    let target = SwitchTarget::parse(&args.service)?;
    let strategy = Strategy::Weights(weights_options(&args.weights)?);
    let req = request(global, target, strategy, args.to.clone(), &args.run)?;
    run(global, client, printer, req, &args.run).await
}

async fn run(
    global: &GlobalArgs,
    client: KongClient,
    printer: &Printer,
    req: SwitchRequest,
    args: &RunArgs,
) -> Result<Exit, CliError> {
    req.validate()?;
    let leases = state::lease_policy(&args.record.lease, req.lease_ttl)?;
    let log = state::open_log(global).await?;
    let progress = Arc::new(CliProgress::new(
        printer.progress_enabled(),
        io::stderr().is_terminal(),
    ));
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let engine = Engine::new(client, log)
        .with_progress(SharedProgress(Arc::clone(&progress)))
        .with_cancellation(cancel)
        .with_data_plane_timeout(args.cluster.dp_timeout)
        .with_parallelism(req.parallelism)
        .with_lease_policy(leases);
    let outcome = match &req.target {
        SwitchTarget::Tagged(_) => {
            let report = engine.switch_batch(&req).await;
            signals.abort();
            progress.finish();
            let report = report?;
            printer.print(&report)?;
            report.outcome
        }
        SwitchTarget::Service(_) => {
            let report = engine.switch(&req).await;
            signals.abort();
            progress.finish();
            let report = report?;
            printer.print(&report)?;
            report.outcome
        }
    };
    Ok(Exit::of_outcome(outcome))
}

/// Ctrl-C or SIGTERM: stop between steps and take the rollback path.
async fn cancel_on_signal(cancel: CancellationToken) {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    eprintln!("interrupted: stopping after the current step and rolling back…");
    cancel.cancel();
}

fn weights_options(args: &WeightsArgs) -> Result<WeightsOptions, CliError> {
    let mut schedule = Schedule::from_str(&args.steps)?;
    if let Some(bake) = args.bake {
        schedule = schedule.with_bake(bake);
    }
    Ok(WeightsOptions {
        schedule,
        on_failure: match args.on_failure {
            OnFailureArg::KeepLastGood => OnFailure::KeepLastGood,
            OnFailureArg::RestoreStart => OnFailure::RestoreStart,
        },
    })
}

fn request(
    global: &GlobalArgs,
    target: SwitchTarget,
    strategy: Strategy,
    to: Option<String>,
    run: &RunArgs,
) -> Result<SwitchRequest, CliError> {
    let mut req = SwitchRequest::new(target);
    req.strategy = strategy;
    req.to = to;
    req.sides = sides(&run.naming);
    req.gates = gates(run)?;
    req.verify = verify(run)?;
    req.no_rollback = run.no_rollback;
    req.dry_run = run.dry_run;
    req.nodes = nodes(global, run)?;
    req.parallelism = run.parallelism;
    req.unknown_write_window = run.unknown_write_window;
    req.actor = state::actor(run.record.actor.as_deref());
    req.lease_ttl = run.record.lease_ttl;
    req.attributes = DeploymentAttributes {
        environment: run.record.environment.clone(),
        deployment: run.record.deployment.clone(),
        version: run.record.app_version.clone(),
        build_id: run.record.build_id.clone(),
    };
    Ok(req)
}

/// The naming convention from the flags.
pub fn sides(naming: &NamingArgs) -> Sides {
    Sides {
        blue_suffix: naming.blue_suffix.clone(),
        green_suffix: naming.green_suffix.clone(),
        color_tag: naming.color_tag.clone(),
    }
}

fn gates(run: &RunArgs) -> Result<GateConfig, CliError> {
    let g = &run.gates;
    let probes = g
        .probe
        .iter()
        .map(|url| Probe {
            expect_status: g.probe_status,
            expect_header: g.probe_header.clone(),
            body_contains: g.probe_body.clone(),
            count: g.probe_count,
            timeout: g.probe_timeout,
            ..Probe::new(url.clone())
        })
        .collect();
    Ok(GateConfig {
        min_targets: g.min_targets,
        min_healthy: g.min_healthy,
        allow_unknown_health: g.allow_unknown_health,
        probes,
        data_planes: run.cluster.data_planes.clone(),
    })
}

fn verify(run: &RunArgs) -> Result<Option<VerifyConfig>, CliError> {
    let v = &run.verify;
    let Some(url) = &v.verify else {
        return Ok(None);
    };
    let mut config = VerifyConfig::new(url.clone());
    if let Some(n) = v.verify_count {
        config.amount = VerifyAmount::Count(n);
    }
    if let Some(d) = v.verify_for {
        config.amount = VerifyAmount::For(d);
    }
    config.min_success = v.min_success;
    config.latency = match (v.p95_latency, v.max_latency) {
        (Some(p95), _) => Some(LatencyBound::P95(p95)),
        (None, Some(max)) => Some(LatencyBound::Max(max)),
        (None, None) => None,
    };
    config.expect_header = v.expect_header.clone();
    config.convergence_timeout = v.converge_timeout;
    Ok(Some(config))
}

/// Extra Kong nodes share the primary's credentials and TLS settings.
fn nodes(global: &GlobalArgs, run: &RunArgs) -> Result<Vec<ExtraNode>, CliError> {
    let c = &run.cluster;
    if c.node_proxies.len() > c.nodes.len() {
        return Err(CliError::usage(format!(
            "--node-proxy given {} times but --node only {}: give one --node-proxy per --node, in the same order",
            c.node_proxies.len(),
            c.nodes.len()
        )));
    }
    c.nodes
        .iter()
        .enumerate()
        .map(|(i, admin)| {
            let node_args = GlobalArgs {
                admin_url: admin.to_string(),
                ..global.clone()
            };
            Ok(ExtraNode {
                name: admin.to_string(),
                client: crate::config::admin_client(&node_args)?,
                proxy_url: c.node_proxies.get(i).cloned(),
            })
        })
        .collect()
}

impl Render for SwitchReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        render_switch(self, out)
    }
}

impl Render for BatchReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        render_batch(self, out)
    }
}

fn render_hybrid(h: &HybridReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "  data planes: {} (config hash {}, push window {} ms){}",
        match h.live_after_ms {
            Some(ms) => format!("live after {ms} ms"),
            None => "NOT live".to_owned(),
        },
        h.config_hash.as_deref().unwrap_or("-"),
        h.db_update_frequency_ms,
        h.mixed_traffic_ms
            .filter(|ms| *ms > 0)
            .map(|ms| format!("; mixed traffic for up to {ms} ms"))
            .unwrap_or_default()
    )?;
    for name in &h.disconnected {
        writeln!(out, "  {name}: disconnected, not waited for")?;
    }
    for check in &h.status_checks {
        writeln!(out, "  status API {check}")?;
    }
    Ok(())
}

fn render_switch(r: &SwitchReport, out: &mut dyn Write) -> io::Result<()> {
    let side = |s: &Option<kong_switch_core::switch::Side>| {
        s.as_ref()
            .map_or_else(|| "-".to_owned(), |s| format!("{} ({})", s.color, s.name))
    };
    writeln!(
        out,
        "{}: {} → {}  [{} strategy]",
        r.target,
        side(&r.from),
        side(&r.to),
        r.strategy
    )?;
    if let Some(rec) = &r.recovered {
        writeln!(
            out,
            "recovered an unfinished run: Kong was {}; {}",
            rec.kong, rec.action
        )?;
    }
    for g in &r.gates {
        render_gate(g, "", out)?;
    }
    if r.outcome == Outcome::DryRun || r.outcome == Outcome::Refused && !r.writes.is_empty() {
        writeln!(out, "  writes it would make:")?;
        for w in &r.writes {
            writeln!(out, "    {w}")?;
        }
        writeln!(out, "  writes its rollback would make:")?;
        for w in &r.undo {
            writeln!(out, "    {w}")?;
        }
    } else {
        for s in &r.steps {
            let mark = match s.status {
                StepStatus::Applied => "✓",
                StepStatus::Failed => "✗",
                StepStatus::Undone => "↺",
                StepStatus::Planned => "·",
            };
            writeln!(out, "  write {mark} {}", s.request)?;
            if let Some(e) = &s.error {
                writeln!(out, "          {e}")?;
            }
        }
    }
    render_convergence(
        "new",
        &r.nodes,
        r.hybrid.as_ref(),
        r.verification.as_ref(),
        out,
    )?;
    if let Some(rb) = &r.rollback {
        writeln!(out, "  rolled back ({:?}): {}", rb.cause, rb.reason)?;
        for w in &rb.writes {
            writeln!(out, "    undo {w}")?;
        }
        render_convergence("restored", &rb.nodes, rb.hybrid.as_ref(), None, out)?;
    }
    writeln!(
        out,
        "{}{} ({} reads, up to {} at once; {} ms)",
        outcome_prefix(r.outcome),
        r.message,
        r.reads.requests,
        r.reads.concurrent,
        r.durations.total_ms
    )
}

fn render_batch(r: &BatchReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{}: {} services, {} at once  [{} strategy]",
        r.target,
        r.services.len(),
        r.parallelism,
        r.strategy
    )?;
    if let Some(rec) = &r.recovered {
        writeln!(
            out,
            "recovered an unfinished run: Kong was {}; {}",
            rec.kong, rec.action
        )?;
    }
    for t in &r.gates {
        render_gate(&t.gate, &format!("  ({} services)", t.services), out)?;
    }
    for s in &r.services {
        let failed: Vec<&str> = s.failed_gates.iter().map(|g| g.name.as_str()).collect();
        writeln!(
            out,
            "  {:<24} {} → {}  {}{}",
            s.target,
            s.from.color,
            s.to.color,
            outcome_word(s.outcome),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            }
        )?;
    }
    if r.outcome == Outcome::DryRun {
        writeln!(out, "  writes it would make:")?;
        for w in &r.writes {
            writeln!(out, "    {w}")?;
        }
    }
    render_convergence(
        "new",
        &r.nodes,
        r.hybrid.as_ref(),
        r.verification.as_ref(),
        out,
    )?;
    if let Some(rb) = &r.rollback {
        writeln!(
            out,
            "  rolled back every service ({} writes): {}",
            rb.writes.len(),
            rb.reason
        )?;
        render_convergence("restored", &rb.nodes, rb.hybrid.as_ref(), None, out)?;
    }
    writeln!(
        out,
        "{}{} ({} writes, {} reads; {} ms)",
        outcome_prefix(r.outcome),
        r.message,
        r.writes.len(),
        r.reads.requests,
        r.durations.total_ms
    )
}

/// `  gate ✓ min_healthy      observed …; required …` and `suffix`.
fn render_gate(g: &GateOutcome, suffix: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "  gate {} {:<16} observed {}; required {}{suffix}",
        if g.passed { "✓" } else { "✗" },
        g.name,
        g.observed,
        g.required
    )
}

/// Per node whether it serves the `side` (new or restored) side, the data planes, and the
/// verification.
fn render_convergence(
    side: &str,
    nodes: &[NodeConvergence],
    hybrid: Option<&HybridReport>,
    verification: Option<&VerificationReport>,
    out: &mut dyn Write,
) -> io::Result<()> {
    for n in nodes {
        writeln!(
            out,
            "  node {}: {} ({}, after {} ms)",
            n.node,
            if n.converged {
                format!("serves the {side} side")
            } else {
                "NOT converged".to_owned()
            },
            n.detail,
            or_dash(n.converged_after_ms)
        )?;
    }
    if let Some(h) = hybrid {
        render_hybrid(h, out)?;
    }
    if let Some(v) = verification {
        writeln!(
            out,
            "  verify {} {}/{} ok, {} from the new side, p50 {} ms, p95 {} ms, max {} ms{}",
            if v.passed { "✓" } else { "✗" },
            v.ok,
            v.requests,
            or_dash(v.from_new_side),
            v.p50_ms,
            v.p95_ms,
            v.max_ms,
            v.failure
                .as_deref()
                .map(|f| format!(" — {f}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// `done: ` before the engine's sentence; none for a no-op, whose sentence says so itself.
fn outcome_prefix(outcome: Outcome) -> String {
    match outcome {
        Outcome::NoOp => String::new(),
        other => format!("{}: ", outcome_word(other)),
    }
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Completed => "done",
        Outcome::NoOp => "nothing to do",
        Outcome::DryRun => "dry run",
        Outcome::Refused => "refused",
        Outcome::RolledBack => "rolled back",
        Outcome::VerificationFailed => "verification failed",
        Outcome::Interrupted => "interrupted",
    }
}
