//! `kong-switch ping`.

use std::io::{self, Write};

use kong_switch_core::admin::KongClient;
use kong_switch_core::inspect::{self, PingReport};

use crate::error::CliError;
use crate::exit::Exit;
use crate::output::{Printer, Render, or_dash};

/// Runs `ping`.
pub async fn run(client: &KongClient, printer: &Printer) -> Result<Exit, CliError> {
    let report = inspect::ping(client).await?;
    printer.print(&report)?;
    Ok(Exit::Ok)
}

impl Render for PingReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Kong {} ({}) at {}: {} mode, node {}, answered in {} ms",
            self.version,
            or_dash(self.edition.as_deref()),
            self.admin_url,
            self.mode,
            or_dash(self.node_id.as_deref()),
            self.latency_ms
        )
    }
}
