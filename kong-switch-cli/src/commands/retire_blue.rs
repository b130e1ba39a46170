//! `kong-switch retire-blue <app>`.

use std::io::{self, Write};

use kong_switch_gke::k8s::{self, RetireBlue, RetireMode, RetireReport};

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::exit::Exit;
use crate::gke::{self, RetireBlueArgs, StderrProgress};
use crate::output::{Printer, Render};
use crate::state;

/// Runs `retire-blue`.
pub async fn run(
    global: &GlobalArgs,
    printer: &Printer,
    args: &RetireBlueArgs,
) -> Result<Exit, CliError> {
    let log = state::open_log(global).await?;
    let cluster = gke::cluster(&args.kube).await?;
    let request = RetireBlue {
        blue: args.blue.clone(),
        mode: if args.delete {
            RetireMode::Delete
        } else {
            RetireMode::ScaleToZero
        },
        bake_time: args.bake_time,
        force: args.force,
        ..RetireBlue::new(&args.app)
    };
    let context = gke::run_context(&args.app, &args.record);
    let report = k8s::retire_blue(
        &cluster,
        &log,
        &context,
        &request,
        &StderrProgress::new(printer),
    )
    .await?;
    printer.print(&report)?;
    Ok(Exit::Ok)
}

impl Render for RetireReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self.mode {
            RetireMode::ScaleToZero => writeln!(
                out,
                "blue {} scaled to 0 (was {}); status: idle",
                self.deployment, self.previous_replicas
            ),
            RetireMode::Delete => writeln!(
                out,
                "blue {} deleted (had {} replicas); status: idle",
                self.deployment, self.previous_replicas
            ),
        }
    }
}
