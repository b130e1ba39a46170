//! Command-line arguments (clap derive types only).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kong_switch_core::switch::{
    self, DurationRange, HeaderMatch, MAX_PARALLELISM, MAX_PROBE_COUNT, MAX_VERIFY_COUNT,
};

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
#[derive(Debug, Clone, Args)]
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
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_request_timeout, global = true)]
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
    /// Show where a service's traffic goes now, the last logged event, and any drift.
    Status(StatusArgs),
    /// Switch a service (or every service with a tag) to green (or `--to` a side), gated and verified.
    Switch(SwitchArgs),
    /// Shift traffic by target weights inside one upstream, step by step (`switch
    /// --strategy weights`).
    Shift(ShiftArgs),
    /// Restore the state saved by the last switch of a target.
    Rollback(RollbackArgs),
    /// Print the state-log events of a target, oldest first.
    History(HistoryArgs),
    /// Close an unfinished run (one `status` reports as UNFINISHED or UNREADABLE) by reading
    /// Kong: records it as resolved on `--to` only if Kong is fully on that side. Writes
    /// nothing to Kong.
    Resolve(ResolveArgs),
    /// Deploy green on Kubernetes: clone blue with a new image, wait for the rollout, register it in Kong.
    #[cfg(feature = "gke")]
    DeployGreen(crate::gke::DeployGreenArgs),
    /// After the switch and a bake time, scale blue to zero (or delete it) on Kubernetes.
    #[cfg(feature = "gke")]
    RetireBlue(crate::gke::RetireBlueArgs),
    /// Switch in Kubernetes (Service selector or HTTPRoute weights), for clusters where Kong
    /// is driven by its ingress controller.
    #[cfg(feature = "gke")]
    K8sSwitch(crate::gke::K8sSwitchArgs),
}

/// Naming convention of the two sides.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sides")]
pub struct NamingArgs {
    /// Suffix of blue entity names (`orders-blue`).
    #[arg(long, default_value = "-blue", value_name = "SUFFIX", value_parser = parse_suffix)]
    pub blue_suffix: String,
    /// Suffix of green entity names (`orders-green`).
    #[arg(long, default_value = "-green", value_name = "SUFFIX", value_parser = parse_suffix)]
    pub green_suffix: String,
    /// Tag key naming an entity's color (`kong-switch.color=green`).
    #[arg(long, default_value = "kong-switch.color", value_name = "KEY", value_parser = parse_tag_key)]
    pub color_tag: String,
}

/// `switch` arguments.
#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// Service name or id. Omit it when selecting services with --tag.
    #[arg(required_unless_present = "tag", conflicts_with = "tag")]
    pub service: Option<String>,
    /// Switch every service carrying all these tags, all-or-nothing (repeatable).
    #[arg(long, value_name = "TAG", value_parser = parse_tag)]
    pub tag: Vec<String>,
    /// How to switch: one service host write, per-route writes, or target weights.
    #[arg(long, value_enum, default_value_t = StrategyArg::Upstream)]
    pub strategy: StrategyArg,
    /// The side to switch to: a color (`blue`, `green`) or an upstream (service for
    /// `--strategy route`) name; default: green.
    #[arg(long, value_name = "COLOR|NAME")]
    pub to: Option<String>,
    #[command(flatten)]
    pub weights: WeightsArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `shift` arguments: a weights switch.
#[derive(Debug, Args)]
pub struct ShiftArgs {
    /// Service name or id.
    pub service: String,
    /// The color (or target tag value) to shift traffic to; default: green.
    #[arg(long, value_name = "COLOR")]
    pub to: Option<String>,
    #[command(flatten)]
    pub weights: WeightsArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Weight-shift schedule.
#[derive(Debug, Args)]
#[command(next_help_heading = "Weights")]
pub struct WeightsArgs {
    /// Green percentages per step (`10,25,50,100`) or a preset: `all-at-once`,
    /// `linear-<P>-every-<D>`, `canary-<P>-<D>`.
    #[arg(long, value_name = "SCHEDULE", default_value = "all-at-once")]
    pub steps: String,
    /// Wait between steps (overrides the preset's).
    #[arg(long, value_name = "DURATION", value_parser = parse_bake)]
    pub bake: Option<Duration>,
    /// On failure: stay at the last good step, or restore the weights from before the shift.
    #[arg(long, value_enum, default_value_t = OnFailureArg::RestoreStart)]
    pub on_failure: OnFailureArg,
}

/// Gates, verification, cluster, and logging options shared by `switch` and `shift`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub gates: GateArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    /// Print the exact Admin API writes of the switch and of its rollback; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the new side even if verification fails (exit 7 instead of rolling back).
    #[arg(long)]
    pub no_rollback: bool,
    /// Services switched at once with --tag (and restored at once if the batch rolls back).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = parse_parallelism)]
    pub parallelism: usize,
    /// After a write whose answer was lost (timeout, reset, 5xx) and its undo: how long Kong
    /// must be seen holding the old side before the run is recorded as rolled back (the lost
    /// write may still land).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_settle)]
    pub unknown_write_window: Duration,
}

/// Pre-flight gates.
#[derive(Debug, Args)]
#[command(next_help_heading = "Gates")]
pub struct GateArgs {
    /// Minimum green targets with weight > 0.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = parse_min_targets)]
    pub min_targets: usize,
    /// Minimum fraction of green targets Kong reports HEALTHY (0.0–1.0).
    #[arg(long, default_value_t = 1.0, value_name = "FRACTION", value_parser = parse_fraction)]
    pub min_healthy: f64,
    /// Accept targets whose health Kong does not know (HEALTHCHECKS_OFF, no balancer yet).
    #[arg(long)]
    pub allow_unknown_health: bool,
    /// HTTP probe of the green side before switching (repeatable).
    #[arg(long, value_name = "URL")]
    pub probe: Vec<url::Url>,
    /// Status each probe must answer.
    #[arg(long, default_value_t = 200, value_name = "CODE", value_parser = parse_http_status)]
    pub probe_status: u16,
    /// Header each probe answer must carry, `Name=value`.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_header_match)]
    pub probe_header: Option<HeaderMatch>,
    /// Text each probe answer's body must contain.
    #[arg(long, value_name = "TEXT", value_parser = parse_probe_body)]
    pub probe_body: Option<String>,
    /// Requests per probe URL.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = parse_probe_count)]
    pub probe_count: u32,
    /// Timeout of each probe request.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_request_timeout)]
    pub probe_timeout: Duration,
}

/// Post-switch verification through the Kong proxy.
#[derive(Debug, Args)]
#[command(next_help_heading = "Verification")]
pub struct VerifyArgs {
    /// Proxy URL to send verification requests to after the switch.
    #[arg(long, value_name = "URL")]
    pub verify: Option<url::Url>,
    /// Number of verification requests.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "verify_for",
        requires = "verify",
        value_parser = parse_verify_count
    )]
    pub verify_count: Option<u32>,
    /// Verify for this long instead of a count.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait, requires = "verify")]
    pub verify_for: Option<Duration>,
    /// Minimum fraction of 2xx answers (0.0–1.0).
    #[arg(long, default_value_t = 1.0, value_name = "FRACTION", value_parser = parse_fraction)]
    pub min_success: f64,
    /// Fail when the 95th percentile latency exceeds this.
    #[arg(long, value_name = "DURATION", value_parser = parse_request_timeout, conflicts_with = "max_latency")]
    pub p95_latency: Option<Duration>,
    /// Fail when any answer takes longer than this.
    #[arg(long, value_name = "DURATION", value_parser = parse_request_timeout)]
    pub max_latency: Option<Duration>,
    /// Header proving an answer came from the new side, `Name=value` (e.g. `X-Color=green`).
    #[arg(long, value_name = "NAME=VALUE", requires = "verify", value_parser = parse_header_match)]
    pub expect_header: Option<HeaderMatch>,
    /// How long to wait for every node to serve the new side (default: from Kong's settings).
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub converge_timeout: Option<Duration>,
}

/// Other Kong nodes of the cluster.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Admin API of another Kong node sharing the database (repeatable).
    #[arg(long = "node", value_name = "ADMIN_URL")]
    pub nodes: Vec<url::Url>,
    /// Proxy of the --node at the same position, to check it serves the new side.
    #[arg(long = "node-proxy", value_name = "URL")]
    pub node_proxies: Vec<url::Url>,
    /// Status API of a hybrid-mode data plane, where health is read (repeatable). After the
    /// writes, each must report the config hash the data planes converged on.
    #[arg(long = "dp-status", value_name = "URL")]
    pub data_planes: Vec<url::Url>,
    /// Hybrid mode: a data plane not seen by the control plane for longer than this is
    /// disconnected: named in the report, not waited for (Kong: 1.5 × its 30 s ping).
    #[arg(long = "dp-timeout", default_value = "45s", value_name = "DURATION", value_parser = parse_wait)]
    pub dp_timeout: Duration,
}

/// Who and what is recorded in the state log.
#[derive(Debug, Args)]
#[command(next_help_heading = "Recorded")]
pub struct RecordArgs {
    /// Who switches (default: `$USER@host`).
    #[arg(long, env = "KONG_SWITCH_ACTOR", value_name = "NAME", value_parser = parse_optional_label)]
    pub actor: Option<String>,
    /// Environment, e.g. `prod`.
    #[arg(long, value_name = "NAME", value_parser = parse_label)]
    pub environment: Option<String>,
    /// Deployment name, e.g. `orders-green`.
    #[arg(long, value_name = "NAME", value_parser = parse_label)]
    pub deployment: Option<String>,
    /// Version of the release switched to.
    #[arg(long, value_name = "VERSION", value_parser = parse_label)]
    pub app_version: Option<String>,
    /// CI build id.
    #[arg(long, value_name = "ID", value_parser = parse_label)]
    pub build_id: Option<String>,
    /// The longest a run may hold the lease on the target, renewals included.
    #[arg(long, default_value = "15m", value_name = "DURATION", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// How a run holds its lease on the target.
#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// How often the running holder renews its lease.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_wait)]
    pub lease_renew_every: Duration,
    /// How long a lease lasts after its last renewal: how soon after a killed run others
    /// may take the target over.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_wait)]
    pub lease_expiry: Duration,
    /// Take over a lease that has not expired when its holder is known to be gone (e.g. its
    /// clock runs ahead): refused if it is renewed while watched for 1.5 renewal intervals.
    #[arg(long)]
    pub break_lease: bool,
}

/// `rollback` arguments.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Service name or id (or `tag:K=V` for a batch switch).
    pub target: String,
    /// Who rolls back (default: `$USER@host`).
    #[arg(long, env = "KONG_SWITCH_ACTOR", value_name = "NAME", value_parser = parse_optional_label)]
    pub actor: Option<String>,
    /// The longest the rollback may hold the lease on the target, renewals included.
    #[arg(long, default_value = "15m", value_name = "DURATION", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Hybrid mode: a data plane not seen by the control plane for longer than this is
    /// disconnected: named in the report, not waited for.
    #[arg(long = "dp-timeout", default_value = "45s", value_name = "DURATION", value_parser = parse_wait)]
    pub dp_timeout: Duration,
    /// Services restored at once when rolling back a batch (`tag:K=V`).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = parse_parallelism)]
    pub parallelism: usize,
}

/// `resolve` arguments.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Service name or id whose last run is unfinished.
    pub service: String,
    /// The side Kong is on: a color (`blue`, `green`) or an upstream (service for
    /// `--strategy route`) name. Checked against Kong before anything is recorded.
    #[arg(long, value_name = "COLOR|NAME", value_parser = parse_label)]
    pub to: String,
    /// How the run switched (default: the strategy the unfinished run recorded).
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    #[command(flatten)]
    pub naming: NamingArgs,
    /// Who resolves (default: `$USER@host`).
    #[arg(long, env = "KONG_SWITCH_ACTOR", value_name = "NAME", value_parser = parse_optional_label)]
    pub actor: Option<String>,
    /// How long the lock on the target is held at most.
    #[arg(long, default_value = "15m", value_name = "DURATION", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
}

/// `history` arguments.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Service name or id (or `tag:K=V` for a batch switch).
    pub target: String,
    /// Only the last N events.
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub limit: Option<usize>,
}

/// Switch strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// One PATCH of the service host to the green upstream.
    Upstream,
    /// Re-point the routes from the blue service to the green service.
    Route,
    /// Shift target weights inside one upstream.
    Weights,
}

/// What a failed weight shift leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailureArg {
    /// Stay at the last step that passed.
    KeepLastGood,
    /// Restore the weights from before the shift.
    RestoreStart,
}

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Service name or id (or `tag:K=V` for the runs of a batch switch).
    pub service: String,
    #[command(flatten)]
    pub naming: NamingArgs,
}

// Value parsers: each checks one flag's value with the core's checks, so clap's error
// names the flag ("invalid value '0' for '--probe-count <N>': …") and nothing runs.

/// The reason of a refused value, without the field name clap already shows.
fn reason(error: switch::Error) -> String {
    match error {
        switch::Error::InvalidRequest { message, .. } => message,
        other => other.to_string(),
    }
}

/// A whole number in `min..=max`.
fn parse_count<T>(value: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n = value.trim().parse::<T>().map_err(|_| {
        format!("`{value}` is not a whole number (or is far too large); give e.g. {min}")
    })?;
    switch::check_count("count", n, min, max).map_err(reason)
}

/// Services handled at once: 1 to [`MAX_PARALLELISM`].
pub fn parse_parallelism(value: &str) -> Result<usize, String> {
    parse_count(value, 1, MAX_PARALLELISM)
}

/// Green targets required: at least 1.
pub fn parse_min_targets(value: &str) -> Result<usize, String> {
    parse_count(value, 1, usize::MAX)
}

/// Requests per probe URL: 1 to [`MAX_PROBE_COUNT`].
pub fn parse_probe_count(value: &str) -> Result<u32, String> {
    parse_count(value, 1, MAX_PROBE_COUNT)
}

/// Verification requests: 1 to [`MAX_VERIFY_COUNT`].
pub fn parse_verify_count(value: &str) -> Result<u32, String> {
    parse_count(value, 1, MAX_VERIFY_COUNT)
}

/// Events shown: at least 1.
pub fn parse_limit(value: &str) -> Result<usize, String> {
    parse_count(value, 1, usize::MAX)
}

/// An HTTP status: 100 to 599.
pub fn parse_http_status(value: &str) -> Result<u16, String> {
    parse_count(value, 100, 599)
}

/// A fraction from 0.0 to 1.0 (not NaN or infinite).
pub fn parse_fraction(value: &str) -> Result<f64, String> {
    let f = value
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("`{value}` is not a number; give a fraction such as 0.99"))?;
    switch::check_fraction("fraction", f).map_err(reason)
}

/// Parses a duration (the core's one grammar) in `range`.
fn parse_duration_in(value: &str, range: DurationRange) -> Result<Duration, String> {
    range.parse("duration", value).map_err(reason)
}

/// The timeout of one request, or a latency bound: more than 0, at most an hour.
pub fn parse_request_timeout(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, DurationRange::REQUEST)
}

/// A wait of a run: more than 0, at most a day.
pub fn parse_wait(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, DurationRange::WAIT)
}

/// A bake time: 0 to a week.
pub fn parse_bake(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, DurationRange::BAKE)
}

/// How long restored values must be seen to hold: 0 to an hour.
pub fn parse_settle(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, DurationRange::SETTLE)
}

/// A lease's time to live: a second to a week.
pub fn parse_lease_ttl(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, DurationRange::LEASE)
}

/// A side's name suffix: not empty, no whitespace.
pub fn parse_suffix(value: &str) -> Result<String, String> {
    switch::check_suffix("suffix", value).map_err(reason)?;
    Ok(value.to_owned())
}

/// A tag key: not empty, no whitespace, `,` or `=`.
pub fn parse_tag_key(value: &str) -> Result<String, String> {
    switch::check_tag_key("tag key", value).map_err(reason)?;
    Ok(value.to_owned())
}

/// A Kong tag: not empty, no whitespace or `,`.
pub fn parse_tag(value: &str) -> Result<String, String> {
    switch::check_tag("tag", value).map_err(reason)?;
    Ok(value.to_owned())
}

/// A recorded label (actor, environment, version…): not blank, no control characters.
pub fn parse_label(value: &str) -> Result<String, String> {
    switch::check_label("label", value).map_err(reason)?;
    Ok(value.to_owned())
}

/// A label that may also come from an environment variable (`--actor`): blank means unset
/// (the default is used), so an exported but empty variable changes nothing; control
/// characters are refused.
pub fn parse_optional_label(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    parse_label(value)
}

/// Text a probe answer must contain: not empty.
pub fn parse_probe_body(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("the text is empty, which every answer contains; give the text to look for, or leave the option out".to_owned());
    }
    Ok(value.to_owned())
}

/// A `Name=value` header match with a valid header name.
pub fn parse_header_match(value: &str) -> Result<HeaderMatch, String> {
    value.parse::<HeaderMatch>().map_err(reason)
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
        assert_eq!(parse_bake("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_bake("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_bake("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_bake("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn every_flag_parser_refuses_empty_zero_and_absurd_values() {
        type Parser = fn(&str) -> Result<(), String>;
        let cases: &[(&str, Parser, &str)] = &[
            ("", |v| parse_request_timeout(v).map(drop), "no duration"),
            ("0", |v| parse_request_timeout(v).map(drop), "more than 0"),
            ("1e300", |v| parse_request_timeout(v).map(drop), "too long"),
            ("NaN", |v| parse_wait(v).map(drop), "not a number"),
            ("2d", |v| parse_wait(v).map(drop), "too long"),
            ("1e30", |v| parse_lease_ttl(v).map(drop), "too long"),
            ("0s", |v| parse_lease_ttl(v).map(drop), "too short"),
            ("2h", |v| parse_settle(v).map(drop), "too long"),
            ("-5", |v| parse_bake(v).map(drop), "negative"),
            ("0", |v| parse_probe_count(v).map(drop), "at least 1"),
            ("1001", |v| parse_probe_count(v).map(drop), "at most 1000"),
            (
                "-1",
                |v| parse_verify_count(v).map(drop),
                "not a whole number",
            ),
            ("0", |v| parse_parallelism(v).map(drop), "at least 1"),
            ("0", |v| parse_min_targets(v).map(drop), "at least 1"),
            ("0", |v| parse_limit(v).map(drop), "at least 1"),
            ("99", |v| parse_http_status(v).map(drop), "at least 100"),
            ("NaN", |v| parse_fraction(v).map(drop), "fraction"),
            ("1.5", |v| parse_fraction(v).map(drop), "fraction"),
            ("", |v| parse_suffix(v).map(drop), "empty"),
            ("a b", |v| parse_tag(v).map(drop), "tag"),
            ("a=b", |v| parse_tag_key(v).map(drop), "tag key"),
            ("\t", |v| parse_label(v).map(drop), "empty"),
            ("", |v| parse_probe_body(v).map(drop), "empty"),
            (
                "x color=green",
                |v| parse_header_match(v).map(drop),
                "header name",
            ),
        ];
        for (value, parse, needle) in cases {
            let err = parse(value).expect_err(value);
            assert!(err.contains(needle), "{value:?}: {err}");
        }
    }
}
