//! `kong-switch k8s-switch`: Service selector flip or HTTPRoute weights, in Kubernetes.

use std::io::{self, Write};

use kong_switch_core::state::Color;
use kong_switch_gke::k8s::{self, K8sSwitch, SwitchReport};

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::exit::Exit;
use crate::gke::{self, K8sSwitchArgs, StderrProgress};
use crate::output::{Printer, Render};
use crate::state;

/// Runs `k8s-switch`.
pub async fn run(
    global: &GlobalArgs,
    printer: &Printer,
    args: &K8sSwitchArgs,
) -> Result<Exit, CliError> {
    let (name, request) = match (&args.service_selector, &args.httproute) {
        (Some(service), None) => (
            service,
            K8sSwitch::ServiceSelector {
                service: service.clone(),
                to: Color::from(args.to.as_str()),
                min_ready: args.min_ready,
            },
        ),
        (None, Some(route)) => (
            route,
            K8sSwitch::HttpRouteWeights {
                route: route.clone(),
                weights: args.weights.iter().cloned().collect(),
            },
        ),
        _ => {
            return Err(CliError::usage(
                "give --service-selector SERVICE or --httproute ROUTE (with --weight), not both",
            ));
        }
    };
    let log = state::open_log(global).await?;
    let cluster = gke::cluster(&args.kube).await?;
    let context = gke::run_context(name, &args.record);
    let report = k8s::switch::switch(
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

impl Render for SwitchReport {
    fn render_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let plan = &self.plan;
        if plan.is_noop() {
            return writeln!(
                out,
                "nothing to do: traffic already goes to {} ({})",
                plan.to, plan.strategy
            );
        }
        writeln!(out, "{} → {}  [{}]", plan.from, plan.to, plan.strategy)?;
        for step in &plan.steps {
            writeln!(out, "  {} {}: {}", step.kind, step.name, step.description)?;
        }
        writeln!(
            out,
            "{}",
            if self.applied {
                "done: applied and read back"
            } else {
                "nothing written"
            }
        )
    }
}
