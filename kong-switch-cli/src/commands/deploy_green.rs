//! `kong-switch deploy-green <app> --image IMAGE`.

use std::io::{self, Write};

use kong_switch_core::admin::KongClient;
use kong_switch_gke::k8s::{self, DeployGreen, DeployReport};

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::exit::Exit;
use crate::gke::{self, DeployGreenArgs, StderrProgress};
use crate::output::{Printer, Render};
use crate::state;

/// Runs `deploy-green`.
pub async fn run(
    global: &GlobalArgs,
    kong: &KongClient,
    printer: &Printer,
    args: &DeployGreenArgs,
) -> Result<Exit, CliError> {
    let log = state::open_log(global).await?;
    let cluster = gke::cluster(&args.kube).await?;
    let request = DeployGreen {
        blue: args.blue.clone(),
        blue_service: args.blue_service.clone(),
        container: args.container.clone(),
        env: args.env.clone(),
        replicas: args.replicas,
        labels: args.labels.iter().cloned().collect(),
        port: args.port,
        version: args.version.clone(),
        blue_upstream: args.blue_upstream.clone(),
        green_upstream: args.green_upstream.clone(),
        timeout: args.rollout_timeout,
        ..DeployGreen::new(&args.app, &args.image)
    };
    let context = gke::run_context(&args.app, &args.record);
    let report = k8s::deploy_green(
        &cluster,
        kong,
        &log,
        &context,
        &request,
        &StderrProgress::new(printer),
    )
    .await?;
    printer.print(&report)?;
    Ok(Exit::Ok)
}

impl Render for DeployReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "green {} ready: {} ({}), {}",
            self.version, self.deployment, self.image, self.rollout
        )?;
        writeln!(out, "service {}", self.service)?;
        writeln!(
            out,
            "Kong upstream {} {}; target {} {}",
            self.upstream.upstream,
            if self.upstream.created {
                "created"
            } else {
                "updated"
            },
            self.upstream.target,
            if self.upstream.target_added {
                "added"
            } else {
                "already registered"
            }
        )?;
        writeln!(out, "status: testing (switch when the gates pass)")
    }
}
