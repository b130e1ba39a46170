//! `kong-switch resolve <service> --to <side>`.

use kong_switch_core::admin::KongClient;
use kong_switch_core::state::{EventKind, StateLog};
use kong_switch_core::switch::{Engine, Strategy, SwitchRequest, SwitchTarget, WeightsOptions};

use crate::cli::{GlobalArgs, ResolveArgs, StrategyArg};
use crate::commands::switch::sides;
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::Printer;
use crate::state;

/// Runs `resolve`: reads Kong and, if it is fully on `--to`, records the unfinished run as
/// resolved there. Exit 0 when recorded (or nothing was unfinished), 3 when Kong is not on
/// that side (nothing recorded).
pub async fn run(
    global: &GlobalArgs,
    client: KongClient,
    printer: &Printer,
    args: &ResolveArgs,
) -> Result<Exit, CliError> {
    let target = SwitchTarget::parse(&args.service)?;
    target.validate()?;
    let log = state::open_log(global).await?;
    if matches!(target, SwitchTarget::Tagged(_)) {
        return Err(CliError::usage(
            "resolve takes one service: resolve each service of a tag selection by name",
        ));
    }
    let strategy = match args.strategy {
        Some(arg) => strategy_of(arg),
        None => recorded_strategy(&log, &target.key()).await?,
    };
    let mut req = SwitchRequest::new(target);
    req.strategy = strategy;
    req.to = Some(args.to.clone());
    req.sides = sides(&args.naming);
    req.actor = state::actor(args.actor.as_deref());
    req.lease_ttl = args.lease_ttl;
    req.validate()?;
    let engine = Engine::new(client, log);
    let report = engine.resolve(&req).await?;
    printer.print(&report)?;
    Ok(Exit::of_outcome(report.outcome))
}

fn strategy_of(arg: StrategyArg) -> Strategy {
    match arg {
        StrategyArg::Upstream => Strategy::Upstream,
        StrategyArg::Route => Strategy::Route,
        StrategyArg::Weights => Strategy::Weights(WeightsOptions::default()),
    }
}

/// The strategy the target's last intent recorded (upstream when none is recorded).
async fn recorded_strategy(log: &impl StateLog, key: &str) -> Result<Strategy, CliError> {
    let recorded = log
        .last_of(key, &[EventKind::Intent])
        .await?
        .and_then(|e| e.strategy);
    Ok(match recorded.as_deref() {
        None | Some("upstream") => Strategy::Upstream,
        Some("route") => Strategy::Route,
        Some("weights") => Strategy::Weights(WeightsOptions::default()),
        Some(other) => {
            return Err(CliError::usage(format!(
                "the unfinished run recorded strategy {other:?}, which this kong-switch does not know: give --strategy upstream|route|weights"
            )));
        }
    })
}
