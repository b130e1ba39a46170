//! The `gke` feature: arguments of `deploy-green` and `retire-blue`, opening the state log
//! from `--state` (a directory or `firestore://PROJECT[/DATABASE]/COLLECTION`). The exit
//! codes of the gke crate's errors are in [`crate::exit`].

use std::time::Duration;

use clap::Args;
use kong_switch_gke::k8s::{Cluster, KubeOptions, Progress, RolloutProgress, RunContext};
use kong_switch_gke::{AnyLog, Error, FirestoreEndpoint, FirestoreLog, StateLocation};

use crate::cli::{
    GlobalArgs, parse_bake, parse_label, parse_min_targets, parse_optional_label, parse_wait,
};
use crate::error::CliError;
use crate::output::Printer;

/// Which cluster and namespace (kubeconfig from `KUBECONFIG` or `~/.kube/config`, else the
/// in-cluster service account).
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_parser = parse_label)]
    pub context: Option<String>,
    /// Namespace to use instead of the context's.
    #[arg(long, short = 'n', value_parser = parse_label)]
    pub namespace: Option<String>,
}

/// Attributes recorded with every event of the run.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Who runs it (default: `$USER@host`).
    #[arg(long, env = "KONG_SWITCH_ACTOR", value_name = "NAME", value_parser = parse_optional_label)]
    pub actor: Option<String>,
    /// Kong service switched by this app; also the state-log target unless --target.
    #[arg(long, value_parser = parse_label)]
    pub service: Option<String>,
    /// State-log target key (default: --service, else the app).
    #[arg(long, value_parser = parse_label)]
    pub target: Option<String>,
    /// Environment recorded in the state log, e.g. `production`.
    #[arg(long, env = "KONG_SWITCH_ENVIRONMENT", value_parser = parse_optional_label)]
    pub environment: Option<String>,
    /// CI build id recorded in the state log.
    #[arg(long, env = "KONG_SWITCH_BUILD_ID", value_parser = parse_optional_label)]
    pub build_id: Option<String>,
}

/// `deploy-green` arguments.
#[derive(Debug, Args)]
pub struct DeployGreenArgs {
    /// The app: blue is the Deployment labelled `app=<APP>,version=blue`; green is `<APP>-green`.
    #[arg(value_parser = parse_label)]
    pub app: String,
    /// Image of the green container.
    #[arg(long, value_parser = parse_label)]
    pub image: String,
    /// Blue Deployment by name (instead of by labels).
    #[arg(long, value_name = "DEPLOYMENT", value_parser = parse_label)]
    pub blue: Option<String>,
    /// Blue Service to copy ports from (default `<APP>-blue`, else the one selecting blue's pods).
    #[arg(long, value_name = "SERVICE", value_parser = parse_label)]
    pub blue_service: Option<String>,
    /// Container that gets the image (default: the first).
    #[arg(long, value_parser = parse_label)]
    pub container: Option<String>,
    /// Environment variable for the green container, `NAME=value` (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// Replicas (default: blue's).
    #[arg(long, value_parser = parse_replicas)]
    pub replicas: Option<i32>,
    /// Extra label for the green Deployment and pods, `key=value` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = key_value)]
    pub labels: Vec<(String, String)>,
    /// Service port Kong targets (default: the Service's first port).
    #[arg(long, value_parser = parse_port)]
    pub port: Option<i32>,
    /// Version recorded in the state log (default: the image tag).
    #[arg(long, value_parser = parse_label)]
    pub version: Option<String>,
    /// Kong Upstream whose health checks green copies (default `<APP>-blue`).
    #[arg(long, value_name = "UPSTREAM", value_parser = parse_label)]
    pub blue_upstream: Option<String>,
    /// Green Kong Upstream (default `<APP>-green`).
    #[arg(long, value_name = "UPSTREAM", value_parser = parse_label)]
    pub green_upstream: Option<String>,
    /// How long the rollout may take.
    #[arg(long = "rollout-timeout", value_name = "DURATION", default_value = "10m", value_parser = parse_wait)]
    pub rollout_timeout: Duration,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `retire-blue` arguments.
#[derive(Debug, Args)]
pub struct RetireBlueArgs {
    /// The app: blue is the Deployment labelled `app=<APP>,version=blue`.
    #[arg(value_parser = parse_label)]
    pub app: String,
    /// Blue Deployment by name (instead of by labels).
    #[arg(long, value_name = "DEPLOYMENT", value_parser = parse_label)]
    pub blue: Option<String>,
    /// Delete blue instead of scaling it to zero.
    #[arg(long)]
    pub delete: bool,
    /// How long green must have been active before blue goes; the rest is waited out.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_bake)]
    pub bake_time: Duration,
    /// Retire even if the state log does not show green active.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `k8s-switch` arguments: a switch made in Kubernetes, for clusters where Kong is driven by
/// its ingress controller (whose Admin API must not be written).
#[derive(Debug, Args)]
pub struct K8sSwitchArgs {
    /// Flip this Service's `version` selector to `--to`.
    #[arg(
        long,
        value_name = "SERVICE",
        required_unless_present = "httproute",
        conflicts_with = "httproute",
        value_parser = parse_label
    )]
    pub service_selector: Option<String>,
    /// Set the backend weights of this HTTPRoute (with `--weight`).
    #[arg(long, value_name = "ROUTE", requires = "weights", value_parser = parse_label)]
    pub httproute: Option<String>,
    /// The side the Service selects (with `--service-selector`).
    #[arg(long, default_value = "green", value_name = "COLOR", value_parser = parse_label)]
    pub to: String,
    /// Ready pods the side must have before the Service selects it (gate).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = parse_min_targets)]
    pub min_ready: usize,
    /// Weight of one backend Service of the HTTPRoute, `SERVICE=WEIGHT` (repeatable);
    /// backends not named keep theirs.
    #[arg(long = "weight", value_name = "SERVICE=WEIGHT", value_parser = backend_weight)]
    pub weights: Vec<(String, i32)>,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub record: RecordArgs,
}

fn backend_weight(value: &str) -> Result<(String, i32), String> {
    let (name, weight) = key_value(value)?;
    match weight.trim().parse::<i32>() {
        Ok(w) if (0..=1_000_000).contains(&w) => Ok((name, w)),
        _ => Err(format!(
            "`{value}`: the weight must be a whole number from 0 to 1000000, e.g. orders-green=100"
        )),
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        CliError::Gke(Box::new(error))
    }
}

/// Green replicas: 1 to 10,000.
fn parse_replicas(value: &str) -> Result<i32, String> {
    whole_number(value, 1, 10_000)
}

/// A port: 1 to 65535.
fn parse_port(value: &str) -> Result<i32, String> {
    whole_number(value, 1, 65_535)
}

fn whole_number(value: &str, min: i32, max: i32) -> Result<i32, String> {
    match value.trim().parse::<i32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{value}` is not a whole number from {min} to {max}"
        )),
    }
}

fn key_value(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{value}` is not KEY=VALUE")),
    }
}

/// The Firestore log, if `--state` is a `firestore://` URL (the emulator when
/// `FIRESTORE_EMULATOR_HOST` is set); `None` for a directory.
pub async fn open_firestore(global: &GlobalArgs) -> Result<Option<AnyLog>, CliError> {
    let Some(value) = &global.state else {
        return Ok(None);
    };
    match StateLocation::parse(&value.to_string_lossy())? {
        StateLocation::Firestore(url) => Ok(Some(AnyLog::Firestore(
            FirestoreLog::connect_to(url, FirestoreEndpoint::from_env()).await?,
        ))),
        _ => Ok(None),
    }
}

/// Connects to the cluster of `--context`/`--namespace`.
pub async fn cluster(args: &KubeArgs) -> Result<Cluster, CliError> {
    Ok(Cluster::connect(&KubeOptions {
        context: args.context.clone(),
        namespace: args.namespace.clone(),
    })
    .await?)
}

/// The run's context: target, actor (`--actor`, else `user@host`), and recorded attributes.
pub fn run_context(app: &str, args: &RecordArgs) -> RunContext {
    let service = args.service.clone().unwrap_or_else(|| app.to_owned());
    RunContext {
        target: args.target.clone().unwrap_or_else(|| service.clone()),
        actor: crate::state::actor(args.actor.as_deref()),
        // Blank (an exported but empty variable) is unset.
        environment: args.environment.clone().filter(|v| !v.trim().is_empty()),
        build_id: args.build_id.clone().filter(|v| !v.trim().is_empty()),
        service: Some(service),
    }
}

/// Step and rollout lines on stderr, when progress is enabled (a terminal, not quiet).
pub struct StderrProgress {
    enabled: bool,
}

impl StderrProgress {
    /// Progress for `printer`.
    pub fn new(printer: &Printer) -> Self {
        StderrProgress {
            enabled: printer.progress_enabled(),
        }
    }
}

impl Progress for StderrProgress {
    fn step(&self, message: &str) {
        if self.enabled {
            eprintln!("… {message}");
        }
    }

    fn rollout(&self, deployment: &str, progress: &RolloutProgress) {
        if self.enabled {
            eprintln!("  {deployment}: {progress}");
        }
    }
}
