//! Command-line arguments (clap derive types only).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Health-gated, reversible blue/green traffic switches through Kong's Admin API.
#[derive(Debug, Parser)]
#[command(name = "kong-switch", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Kong Admin API URL, with an optional path prefix.
    #[arg(
        long,
        env = "KONG_ADMIN_URL",
        default_value = "http://localhost:8001",
        global = true
    )]
    pub admin_url: String,

    /// Admin token, sent as `Kong-Admin-Token`. Prefer the environment variable or
    /// --admin-token-file: a value on the command line is visible to other local users.
    #[arg(long, env = "KONG_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,

    /// Read the admin token from this file (first line; surrounding whitespace trimmed).
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        conflicts_with = "admin_token"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// Extra header for every Admin API request, as `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE", global = true)]
    pub headers: Vec<String>,

    /// Kong Enterprise workspace (prefixes entity paths with `/<workspace>`).
    #[arg(long, env = "KONG_WORKSPACE", global = true)]
    pub workspace: Option<String>,

    /// PEM bundle of CA certificates to trust for the Admin API.
    #[arg(long, value_name = "PATH", global = true)]
    pub ca_cert: Option<PathBuf>,

    /// PEM client certificate for mutual TLS (with --client-key).
    #[arg(long, value_name = "PATH", global = true, requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(long, value_name = "PATH", global = true, requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Accept any TLS certificate from the Admin API. Dangerous; a warning is printed.
    #[arg(long, global = true)]
    pub insecure_skip_verify: bool,

    /// Timeout of each Admin API request (e.g. `30s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,

    /// State log: a directory for the embedded file log (default: the user's state dir), or
    /// `firestore://PROJECT[/DATABASE]/COLLECTION` (with the `gke` feature).
    #[arg(long, value_name = "PATH", env = "KONG_SWITCH_STATE", global = true)]
    pub state: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,

    /// More logging on stderr (-v debug, -vv trace). The admin token is never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr; no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable lines.
    Text,
    /// One JSON document (see README "JSON output").
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that the Admin API answers; print Kong's version, edition and mode.
    Ping,
    /// Show where a service's traffic goes now.
    Status(StatusArgs),
    /// Deploy green on Kubernetes: clone blue with a new image, wait for the rollout, register it in Kong.
    #[cfg(feature = "gke")]
    DeployGreen(crate::gke::DeployGreenArgs),
    /// After the switch and a bake time, scale blue to zero (or delete it) on Kubernetes.
    #[cfg(feature = "gke")]
    RetireBlue(crate::gke::RetireBlueArgs),
}

/// Naming convention of the two sides.
#[derive(Debug, Clone, Args)]
pub struct NamingArgs {
    /// Suffix of blue entity names (`orders-blue`).
    #[arg(long, default_value = "-blue")]
    pub blue_suffix: String,
    /// Suffix of green entity names (`orders-green`).
    #[arg(long, default_value = "-green")]
    pub green_suffix: String,
}

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Service name or id.
    pub service: String,
    #[command(flatten)]
    pub naming: NamingArgs,
}

/// Parses `30s`, `1m30s`, `500ms`, or a bare number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(value)
        .map_err(|e| format!("`{value}` is not a duration ({e}); write e.g. 30s, 500ms or 2m"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }
}
