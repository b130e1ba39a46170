//! `kong-switch`: the thin command-line front of `kong-switch-core`.

mod cli;
mod commands;
mod config;
mod error;
mod exit;
#[cfg(feature = "gke")]
mod gke;
mod output;
mod progress;
mod state;

use std::error::Error as _;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::Printer;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version exit 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    init_tracing(&cli.global);
    let printer = Printer::new(cli.global.output, cli.global.quiet);
    // One thread: the work is waiting on Kong, and one thread keeps memory flat however many
    // services a batch switches (each worker thread gets its own malloc arena).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.print_error(&format!("cannot start the async runtime: {e}"), 1);
            return Exit::Internal.into();
        }
    };
    match runtime.block_on(run(&cli, &printer)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            let exit = e.exit();
            printer.print_error(&error_chain(&e), exit.code());
            exit.into()
        }
    }
}

async fn run(cli: &Cli, printer: &Printer) -> Result<Exit, CliError> {
    let global = &cli.global;
    if let Command::History(args) = &cli.command {
        // Reads the state log only: no Admin API client needed.
        return commands::history::run(global, printer, args).await;
    }
    let client = config::admin_client(global)?;
    match &cli.command {
        Command::Ping => commands::ping::run(&client, printer).await,
        Command::Status(args) => commands::status::run(global, client, printer, args).await,
        Command::Switch(args) => commands::switch::switch(global, client, printer, args).await,
        Command::Shift(args) => commands::switch::shift(global, client, printer, args).await,
        Command::Rollback(args) => commands::rollback::run(global, client, printer, args).await,
        Command::Resolve(args) => commands::resolve::run(global, client, printer, args).await,
        Command::History(args) => commands::history::run(global, printer, args).await,
        #[cfg(feature = "gke")]
        Command::DeployGreen(args) => {
            commands::deploy_green::run(global, &client, printer, args).await
        }
        #[cfg(feature = "gke")]
        Command::RetireBlue(args) => commands::retire_blue::run(global, printer, args).await,
        #[cfg(feature = "gke")]
        Command::K8sSwitch(args) => commands::k8s_switch::run(global, printer, args).await,
    }
}

/// The error and its causes on one line: `a: b: c`, skipping causes already in the message.
fn error_chain(error: &CliError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn init_tracing(args: &GlobalArgs) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,kong_switch=debug,kong_switch_core=debug",
        (false, _) => "warn,kong_switch=trace,kong_switch_core=trace",
    };
    // Only this project's crates get verbose: HTTP libraries stay at warn, so request headers
    // (and with them the admin token) are never logged.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(level))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
