//! `kong-switch status <service>`.

use std::io::{self, Write};

use kong_switch_core::admin::KongClient;
use kong_switch_core::inspect::{self, Naming, ServiceStatus};
use kong_switch_core::model::NameOrId;

use crate::cli::StatusArgs;
use crate::error::CliError;
use crate::output::{Printer, Render, or_dash};

/// Runs `status`.
pub async fn run(
    client: &KongClient,
    printer: &Printer,
    args: &StatusArgs,
) -> Result<(), CliError> {
    let naming = Naming {
        blue_suffix: args.naming.blue_suffix.clone(),
        green_suffix: args.naming.green_suffix.clone(),
        ..Naming::default()
    };
    let service = NameOrId::from(args.service.as_str());
    let report = inspect::service_status(client, &service, &naming)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                CliError::NotFound(format!(
                    "service `{service}` does not exist in Kong at {}; check the name (or id) and --workspace",
                    client.config().base_url()
                ))
            } else {
                e.into()
            }
        })?;
    printer.print(&report)?;
    Ok(())
}

impl Render for ServiceStatus {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let svc = &self.service;
        writeln!(
            out,
            "service {} → host {}:{} ({})",
            or_dash(svc.name.as_deref().or(svc.id.as_deref())),
            svc.host,
            or_dash(svc.port),
            or_dash(svc.protocol.as_deref()),
        )?;
        writeln!(
            out,
            "active: {}   (Kong {}, {} mode)",
            self.active_color
                .as_deref()
                .unwrap_or("unknown (no blue/green name or tag)"),
            self.kong.version,
            self.kong.mode
        )?;
        for route in &self.routes {
            writeln!(
                out,
                "  route {}  paths {}  hosts {}",
                or_dash(route.name.as_deref().or(route.id.as_deref())),
                list_or_dash(&route.paths),
                list_or_dash(&route.hosts)
            )?;
        }
        match &self.upstream {
            None => writeln!(
                out,
                "  host is not a Kong upstream: traffic goes to it directly"
            )?,
            Some(u) => {
                writeln!(
                    out,
                    "  upstream {} ({}, health checks {})",
                    u.name,
                    or_dash(u.algorithm.as_deref()),
                    if u.healthchecks_enabled { "on" } else { "off" }
                )?;
                if u.targets.is_empty() {
                    writeln!(out, "    no targets: Kong answers 503 for this service")?;
                }
                for t in &u.targets {
                    writeln!(
                        out,
                        "    target {:<28} weight {:>5}  {}{}",
                        t.target,
                        t.weight,
                        t.health.as_ref().map_or("health unknown", |h| h.as_str()),
                        t.color
                            .as_deref()
                            .map(|c| format!("  [{c}]"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}
