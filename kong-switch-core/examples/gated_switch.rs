//! A gated upstream switch of one service, embedding kong-switch-core.
//!
//! ```text
//! KONG_ADMIN_URL=http://localhost:8001 cargo run -p kong-switch-core --example gated_switch -- orders
//! ```
//!
//! Reads the service's active upstream (`orders-blue`), refuses unless every target of the
//! other side (`orders-green`) is HEALTHY, writes one `PATCH /services/orders`, records the
//! run in a file log under the system temp directory, and prints the report as JSON. It
//! exits 0 when switched (or already on green) and 1 otherwise; the `kong-switch` CLI owns
//! the full exit-code table.

use std::process::ExitCode;

use kong_switch_core::admin::{AdminConfig, KongClient};
use kong_switch_core::state::FileLog;
use kong_switch_core::switch::{Engine, Outcome, ProgressEvent, SwitchRequest};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(Outcome::Completed | Outcome::NoOp) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<Outcome, Box<dyn std::error::Error>> {
    let service = std::env::args()
        .nth(1)
        .ok_or("usage: gated_switch <service>")?;
    let admin_url =
        std::env::var("KONG_ADMIN_URL").unwrap_or_else(|_| "http://localhost:8001".to_owned());

    let client = KongClient::new(AdminConfig::builder(&admin_url)?.build()?)?;
    let log = FileLog::open(std::env::temp_dir().join("kong-switch-example"))?;
    let engine = Engine::new(client, log).with_progress(|event: ProgressEvent| {
        if let ProgressEvent::Gate(gate) = event {
            eprintln!(
                "gate {}: {} (observed {}, required {})",
                gate.name,
                if gate.passed { "ok" } else { "REFUSED" },
                gate.observed,
                gate.required
            );
        }
    });

    let mut request = SwitchRequest::new(service.as_str());
    request.actor = "gated_switch example".to_owned();
    request.gates.min_targets = 1;
    request.gates.min_healthy = 1.0;

    let report = engine.switch(&request).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("{}", report.message);
    Ok(report.outcome)
}
