//! `kong-switch rollback <target>`.

use std::io::{self, IsTerminal};
use std::sync::Arc;

use kong_switch_core::admin::KongClient;
use kong_switch_core::switch::{Engine, SwitchTarget};

use crate::cli::{GlobalArgs, RollbackArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::Printer;
use crate::progress::{CliProgress, SharedProgress};
use crate::state;

/// Runs `rollback`: restores what the last intent saved, writing only what differs in Kong.
/// Exit 9 when, in hybrid mode, the data planes did not all take the restore in time.
pub async fn run(
    global: &GlobalArgs,
    client: KongClient,
    printer: &Printer,
    args: &RollbackArgs,
) -> Result<Exit, CliError> {
    SwitchTarget::parse(&args.target)?.validate()?;
    let leases = state::lease_policy(&args.lease, args.lease_ttl)?;
    let log = state::open_log(global).await?;
    let progress = Arc::new(CliProgress::new(
        printer.progress_enabled(),
        io::stderr().is_terminal(),
    ));
    let engine = Engine::new(client, log)
        .with_progress(SharedProgress(Arc::clone(&progress)))
        .with_data_plane_timeout(args.dp_timeout)
        .with_parallelism(args.parallelism)
        .with_lease_policy(leases);
    let actor = state::actor(args.actor.as_deref());
    let report = engine.rollback(&args.target, &actor, args.lease_ttl).await;
    progress.finish();
    let report = report?;
    printer.print(&report)?;
    // Hybrid mode: the control plane holds the old side, but a data plane that never took it
    // may still serve the new one.
    if report.hybrid.as_ref().is_some_and(|h| !h.live) {
        return Ok(Exit::Drift);
    }
    Ok(Exit::Ok)
}
