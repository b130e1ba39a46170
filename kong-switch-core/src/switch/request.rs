//! What a caller asks the engine to do: [`SwitchRequest`] and its parts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::admin::KongClient;
use crate::model::NameOrId;
use crate::state::Event;

use super::error::{Error, Result};
use super::input::{
    DurationRange, MAX_PARALLELISM, MAX_PROBE_COUNT, MAX_VERIFY_COUNT, check_count, check_fraction,
    check_http_url, check_label, check_suffix_pair, check_tag, check_tag_key,
};

/// What is switched: one Kong Service, or every Service carrying some tags (a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchTarget {
    /// One Service, by name or id. For the `route` strategy the name may also be the base
    /// name of a `<base>-blue`/`<base>-green` pair.
    Service(NameOrId),
    /// Every Service carrying all of these tags (`app=orders`), switched all-or-nothing.
    Tagged(Vec<String>),
}

impl SwitchTarget {
    /// The key the state log files this target under: the service name or id, or
    /// `tag:<t1>,<t2>` for a tag selection.
    pub fn key(&self) -> String {
        match self {
            SwitchTarget::Service(s) => s.as_str().to_owned(),
            SwitchTarget::Tagged(tags) => format!("tag:{}", tags.join(",")),
        }
    }

    /// Parses `tag:a,b` as [`SwitchTarget::Tagged`] and anything else as a service.
    pub fn parse(value: &str) -> Result<SwitchTarget> {
        match value.strip_prefix("tag:") {
            Some(tags) => {
                let tags: Vec<String> = tags
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
                if tags.is_empty() {
                    return Err(Error::invalid(
                        "target",
                        "`tag:` needs at least one tag, e.g. `tag:app=orders`",
                    ));
                }
                Ok(SwitchTarget::Tagged(tags))
            }
            None if value.trim().is_empty() => {
                Err(Error::invalid("target", "the service name or id is empty"))
            }
            None => Ok(SwitchTarget::Service(NameOrId::new(value))),
        }
    }
}

impl fmt::Display for SwitchTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl From<&str> for SwitchTarget {
    fn from(value: &str) -> Self {
        SwitchTarget::Service(NameOrId::new(value))
    }
}

impl From<NameOrId> for SwitchTarget {
    fn from(value: NameOrId) -> Self {
        SwitchTarget::Service(value)
    }
}

/// The topology being switched (design §2). Serialized as `upstream`, `route`, `weights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// One `PATCH /services/{s}` of `host` to the other side's upstream.
    Upstream,
    /// One `PATCH /routes/{r}` of `service` per route.
    Route,
    /// Target weights shifted in steps within one upstream.
    Weights,
}

impl StrategyKind {
    /// `upstream`, `route` or `weights`.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Upstream => "upstream",
            StrategyKind::Route => "route",
            StrategyKind::Weights => "weights",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StrategyKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "upstream" => Ok(StrategyKind::Upstream),
            "route" => Ok(StrategyKind::Route),
            "weights" => Ok(StrategyKind::Weights),
            other => Err(Error::invalid(
                "strategy",
                format!("unknown strategy {other:?}; use upstream, route or weights"),
            )),
        }
    }
}

/// How to switch, with the options of the strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Re-point the Service's `host` at the other side's Upstream (the default).
    Upstream,
    /// Re-point the Service's Routes at the other side's Service.
    Route,
    /// Shift target weights inside one Upstream.
    Weights(WeightsOptions),
}

impl Strategy {
    /// The strategy without its options.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Upstream => StrategyKind::Upstream,
            Strategy::Route => StrategyKind::Route,
            Strategy::Weights(_) => StrategyKind::Weights,
        }
    }
}

/// Options of the `weights` strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsOptions {
    /// The green percentages to go through, and the bake time after each.
    pub schedule: Schedule,
    /// Where to leave traffic if a step fails or the run is interrupted.
    pub on_failure: OnFailure,
}

impl Default for WeightsOptions {
    fn default() -> Self {
        WeightsOptions {
            schedule: Schedule::all_at_once(),
            on_failure: OnFailure::RestoreStart,
        }
    }
}

/// Where a failed or interrupted `weights` shift leaves traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// `keep-last-good`: stay at the last step that was fully applied (and, for the final
    /// step, verified); restore the start if no step was.
    KeepLastGood,
    /// `restore-start`: put every weight back as it was before the shift.
    RestoreStart,
}

impl FromStr for OnFailure {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "keep-last-good" => Ok(OnFailure::KeepLastGood),
            "restore-start" => Ok(OnFailure::RestoreStart),
            other => Err(Error::invalid(
                "on_failure",
                format!("unknown value {other:?}; use keep-last-good or restore-start"),
            )),
        }
    }
}

/// The steps of a `weights` shift: green percentages, ascending, ending at 100, and the bake
/// time waited after each step but the last.
///
/// Parsed from a preset or a list:
///
/// ```
/// use std::time::Duration;
/// use kong_switch_core::switch::Schedule;
///
/// let s: Schedule = "linear-25-every-30s".parse().unwrap();
/// assert_eq!(s.percents, vec![25, 50, 75, 100]);
/// assert_eq!(s.bake, Duration::from_secs(30));
/// let s: Schedule = "canary-10-5m".parse().unwrap();
/// assert_eq!((s.percents, s.bake), (vec![10, 100], Duration::from_secs(300)));
/// let s: Schedule = "10,25,50,100".parse().unwrap();
/// assert_eq!(s.percents, vec![10, 25, 50, 100]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Green percentage after each step, strictly ascending, the last one 100.
    pub percents: Vec<u8>,
    /// Time to wait after each step before the next one.
    #[serde(with = "duration_ms")]
    pub bake: Duration,
}

impl Schedule {
    /// One step to 100 %.
    pub fn all_at_once() -> Schedule {
        Schedule {
            percents: vec![100],
            bake: Duration::ZERO,
        }
    }

    /// Checked steps: strictly ascending percentages in 1..=100, ending at 100.
    pub fn new(percents: Vec<u8>, bake: Duration) -> Result<Schedule> {
        if percents.is_empty() {
            return Err(Error::invalid(
                "steps",
                "no steps given; end with 100, e.g. 10,50,100",
            ));
        }
        if percents.iter().any(|p| *p == 0 || *p > 100) {
            return Err(Error::invalid(
                "steps",
                "each step is a green percentage in 1..=100",
            ));
        }
        if percents.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "steps",
                "steps must be strictly ascending, e.g. 10,25,50,100",
            ));
        }
        if percents.last() != Some(&100) {
            return Err(Error::invalid(
                "steps",
                "the last step must be 100 (all traffic on the new side)",
            ));
        }
        Ok(Schedule { percents, bake })
    }

    /// The same steps with another bake time.
    #[must_use]
    pub fn with_bake(mut self, bake: Duration) -> Schedule {
        self.bake = bake;
        self
    }
}

impl FromStr for Schedule {
    type Err = Error;

    /// `all-at-once`, `linear-<P>-every-<D>`, `canary-<P>-<D>` or a list `10,25,50,100`
    /// (bake 0; set it with [`Schedule::with_bake`]). Durations are humantime: `30s`, `5m`,
    /// `1h 30m`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "all-at-once" {
            return Ok(Schedule::all_at_once());
        }
        if let Some(rest) = s.strip_prefix("linear-") {
            let (step, every) = rest.split_once("-every-").ok_or_else(|| {
                Error::invalid(
                    "steps",
                    format!("{s:?}: expected linear-<P>-every-<D>, e.g. linear-25-every-30s"),
                )
            })?;
            let step = parse_percent(step)?;
            let bake = DurationRange::BAKE.parse("steps", every)?;
            let mut percents: Vec<u8> = (1..)
                .map(|i: u32| u32::from(step) * i)
                .take_while(|p| *p < 100)
                .filter_map(|p| u8::try_from(p).ok())
                .collect();
            percents.push(100);
            return Schedule::new(percents, bake);
        }
        if let Some(rest) = s.strip_prefix("canary-") {
            let (p, d) = rest.split_once('-').ok_or_else(|| {
                Error::invalid(
                    "steps",
                    format!("{s:?}: expected canary-<P>-<D>, e.g. canary-10-5m"),
                )
            })?;
            let p = parse_percent(p)?;
            let bake = DurationRange::BAKE.parse("steps", d)?;
            let percents = if p == 100 { vec![100] } else { vec![p, 100] };
            return Schedule::new(percents, bake);
        }
        let percents = s
            .split(',')
            .map(|p| parse_percent(p.trim()))
            .collect::<Result<Vec<u8>>>()?;
        Schedule::new(percents, Duration::ZERO)
    }
}

fn parse_percent(s: &str) -> Result<u8> {
    let value = s.trim_end_matches('%');
    match value.parse::<u8>() {
        Ok(p) if (1..=100).contains(&p) => Ok(p),
        _ => Err(Error::invalid(
            "steps",
            format!("{s:?} is not a percentage in 1..=100"),
        )),
    }
}

/// How the two sides are found: by naming convention (`<base>-blue`/`<base>-green`) and by
/// tags (`kong-switch.color=green`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    /// Suffix of the blue side's name (default `-blue`).
    pub blue_suffix: String,
    /// Suffix of the green side's name (default `-green`).
    pub green_suffix: String,
    /// Tag key naming an entity's color: `<key>=blue` / `<key>=green` (default
    /// `kong-switch.color`).
    pub color_tag: String,
}

impl Default for Sides {
    fn default() -> Self {
        Sides {
            blue_suffix: "-blue".into(),
            green_suffix: "-green".into(),
            color_tag: "kong-switch.color".into(),
        }
    }
}

/// A `K=V` header match (name compared case-insensitively, value exactly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// Expected value.
    pub value: String,
}

impl FromStr for HeaderMatch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        /// The characters of an HTTP header name (RFC 9110 `tchar`).
        fn is_tchar(c: char) -> bool {
            c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
        }
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                let name = k.trim();
                if !name.chars().all(is_tchar) {
                    return Err(Error::invalid(
                        "header",
                        format!(
                            "{name:?} is not a header name (letters, digits and -_.!#$%&'*+^`|~ only), e.g. x-color=green"
                        ),
                    ));
                }
                if v.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(Error::invalid(
                        "header",
                        format!("the value of {name} holds control characters; remove them"),
                    ));
                }
                Ok(HeaderMatch {
                    name: name.to_owned(),
                    value: v.trim().to_owned(),
                })
            }
            _ => Err(Error::invalid(
                "header",
                format!("{s:?}: expected NAME=VALUE, e.g. x-color=green"),
            )),
        }
    }
}

impl fmt::Display for HeaderMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// An HTTP probe of the green side, run as a gate before any write.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// URL probed (typically green's backend directly, or a test route).
    pub url: Url,
    /// Status every answer must have (default 200).
    pub expect_status: u16,
    /// A header every answer must carry.
    pub expect_header: Option<HeaderMatch>,
    /// A substring every answer's body must contain.
    pub body_contains: Option<String>,
    /// How many requests (default 1); all must match.
    pub count: u32,
    /// Timeout of each request (default 5 s).
    pub timeout: Duration,
}

impl Probe {
    /// A probe of `url` expecting one 200.
    pub fn new(url: Url) -> Probe {
        Probe {
            url,
            expect_status: 200,
            expect_header: None,
            body_contains: None,
            count: 1,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Pre-flight gates (design §3 step 3).
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// Minimum number of targets with weight > 0 on the new side (for `weights`: targets of
    /// the new color, whatever their weight). Default 1.
    pub min_targets: usize,
    /// Minimum fraction (0.0..=1.0) of those targets Kong reports `HEALTHY`. Default 1.0.
    pub min_healthy: f64,
    /// Accept health Kong does not know (`HEALTHCHECKS_OFF`, bare targets) as healthy.
    pub allow_unknown_health: bool,
    /// HTTP probes of the new side.
    pub probes: Vec<Probe>,
    /// Hybrid mode: Status API base URLs of the data planes, where health is read
    /// (`GET {url}/upstreams/{u}/health`). The control plane has no health view.
    pub data_planes: Vec<Url>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            min_targets: 1,
            min_healthy: 1.0,
            allow_unknown_health: false,
            probes: Vec::new(),
            data_planes: Vec::new(),
        }
    }
}

/// How much traffic verification sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyAmount {
    /// This many requests.
    Count(u32),
    /// Requests for this long.
    For(Duration),
}

/// A latency bound checked by verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyBound {
    /// The 95th percentile must not exceed this.
    P95(Duration),
    /// No request may take longer than this.
    Max(Duration),
}

/// Post-switch verification through the Kong proxy (design §3 step 6).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyConfig {
    /// URL through the Kong proxy that reaches the switched service.
    pub url: Url,
    /// How many requests, or for how long.
    pub amount: VerifyAmount,
    /// Fraction of 2xx answers required (default 1.0: no failure allowed).
    pub min_success: f64,
    /// Optional latency bound.
    pub latency: Option<LatencyBound>,
    /// Answers must carry this header to count as coming from the new side; also what
    /// convergence waits for.
    pub expect_header: Option<HeaderMatch>,
    /// Consecutive answers from the new side that prove convergence (default 3).
    pub consecutive: u32,
    /// Upper bound on the convergence wait; default: router rebuild delay + the largest
    /// `db_update_frequency` of the other nodes + 3 s.
    pub convergence_timeout: Option<Duration>,
    /// Pause between requests (default 50 ms).
    pub interval: Duration,
    /// Timeout of each request (default 5 s).
    pub request_timeout: Duration,
}

impl VerifyConfig {
    /// 20 requests to `url`, all must succeed.
    pub fn new(url: Url) -> VerifyConfig {
        VerifyConfig {
            url,
            amount: VerifyAmount::Count(20),
            min_success: 1.0,
            latency: None,
            expect_header: None,
            consecutive: 3,
            convergence_timeout: None,
            interval: Duration::from_millis(50),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Another Kong node of the same cluster (traditional mode: same database).
#[derive(Clone)]
pub struct ExtraNode {
    /// A label for reports (e.g. the host name).
    pub name: String,
    /// Admin API client of that node (reads only: health and `GET /`).
    pub client: KongClient,
    /// URL through that node's proxy reaching the switched service, to prove it serves the
    /// new side. Without it, the engine waits the node's propagation delay.
    pub proxy_url: Option<Url>,
}

impl fmt::Debug for ExtraNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtraNode")
            .field("name", &self.name)
            .field("admin", &self.client.config().base_url().as_str())
            .field("proxy_url", &self.proxy_url.as_ref().map(Url::as_str))
            .finish()
    }
}

/// The deployment attributes recorded on every state-log event of a run (design §4): which
/// environment, which deployment, which version and build, beyond what Kong itself shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentAttributes {
    /// Environment, e.g. `prod` or `staging`.
    pub environment: Option<String>,
    /// Deployment name, e.g. the Kubernetes Deployment `orders-green`.
    pub deployment: Option<String>,
    /// Version being switched to, e.g. `1.4.2`.
    pub version: Option<String>,
    /// CI build id.
    pub build_id: Option<String>,
}

impl DeploymentAttributes {
    /// Copies the attributes that are set onto `event`.
    pub fn stamp(&self, mut event: Event) -> Event {
        if let Some(v) = &self.environment {
            event = event.with_environment(v.clone());
        }
        if let Some(v) = &self.deployment {
            event = event.with_deployment(v.clone());
        }
        if let Some(v) = &self.version {
            event = event.with_version(v.clone());
        }
        if let Some(v) = &self.build_id {
            event = event.with_build_id(v.clone());
        }
        event
    }
}

/// Everything a switch run needs to know. Build with [`SwitchRequest::new`] and set fields.
#[derive(Debug, Clone)]
pub struct SwitchRequest {
    /// What to switch.
    pub target: SwitchTarget,
    /// How.
    pub strategy: Strategy,
    /// Explicit destination: a color (`blue`, `green`: each service's side of that color),
    /// or an upstream name (`upstream`) or a service name (`route`). Default: the green side
    /// (a switch when green is active is a no-op).
    pub to: Option<String>,
    /// How sides are recognised.
    pub sides: Sides,
    /// Pre-flight gates.
    pub gates: GateConfig,
    /// Post-switch verification; `None` waits the propagation delays only.
    pub verify: Option<VerifyConfig>,
    /// Keep the new side even if verification fails (exit code 7 instead of a rollback).
    pub no_rollback: bool,
    /// Plan and gate, print, write nothing.
    pub dry_run: bool,
    /// Other nodes of the cluster whose health gates the switch and whose convergence ends it.
    pub nodes: Vec<ExtraNode>,
    /// Who runs the switch, as the lease and the log show it (e.g. `alice@host (pid 42)`).
    pub actor: String,
    /// Deployment attributes recorded on every event of the run.
    pub attributes: DeploymentAttributes,
    /// How long the lease on the target lasts (default 15 min).
    pub lease_ttl: Duration,
    /// Batch only: services switched at once (default 10).
    pub parallelism: usize,
    /// After a write whose answer was lost (timeout, reset, 5xx) and its undo: how long the
    /// restored values must be seen to hold before the run is recorded as rolled back, since
    /// Kong may still apply the lost write (default 5 s).
    pub unknown_write_window: Duration,
}

/// Default of [`SwitchRequest::unknown_write_window`].
pub const DEFAULT_UNKNOWN_WRITE_WINDOW: Duration = Duration::from_secs(5);

/// Services a batch switch, or a restore of several services, writes at once by default.
pub const DEFAULT_PARALLELISM: usize = 10;

impl SwitchRequest {
    /// A request with defaults: `upstream` strategy, gates `min_targets = 1`,
    /// `min_healthy = 1.0`, no verification, rollback on failure.
    pub fn new(target: impl Into<SwitchTarget>) -> SwitchRequest {
        SwitchRequest {
            target: target.into(),
            strategy: Strategy::Upstream,
            to: None,
            sides: Sides::default(),
            gates: GateConfig::default(),
            verify: None,
            no_rollback: false,
            dry_run: false,
            nodes: Vec::new(),
            actor: "kong-switch".into(),
            attributes: DeploymentAttributes::default(),
            lease_ttl: Duration::from_secs(15 * 60),
            parallelism: DEFAULT_PARALLELISM,
            unknown_write_window: DEFAULT_UNKNOWN_WRITE_WINDOW,
        }
    }

    /// Checks values the types cannot: every count, fraction, duration, suffix, tag and
    /// label in its range. The error names the field (as the CLI flag, `_` for `-`) and the
    /// fix; nothing is read or written before this passes.
    pub fn validate(&self) -> Result<()> {
        self.target.validate()?;
        self.sides.validate()?;
        if let Some(to) = &self.to
            && to.trim().is_empty()
        {
            return Err(Error::invalid(
                "to",
                "empty destination; give blue, green or a name",
            ));
        }
        if let Strategy::Weights(w) = &self.strategy {
            DurationRange::BAKE.check("bake", w.schedule.bake)?;
        }
        self.gates.validate()?;
        if let Some(v) = &self.verify {
            v.validate()?;
        }
        for node in &self.nodes {
            if let Some(proxy) = &node.proxy_url {
                check_http_url("node_proxy", proxy)?;
            }
        }
        DurationRange::LEASE.check("lease_ttl", self.lease_ttl)?;
        DurationRange::SETTLE.check("unknown_write_window", self.unknown_write_window)?;
        check_count("parallelism", self.parallelism, 1, MAX_PARALLELISM)?;
        check_label("actor", &self.actor)?;
        let a = &self.attributes;
        for (field, value) in [
            ("environment", &a.environment),
            ("deployment", &a.deployment),
            ("app_version", &a.version),
            ("build_id", &a.build_id),
        ] {
            if let Some(value) = value {
                check_label(field, value)?;
            }
        }
        Ok(())
    }
}

impl SwitchTarget {
    /// Checks the target names something: a non-blank service, or Kong tags.
    pub fn validate(&self) -> Result<()> {
        match self {
            SwitchTarget::Service(s) if s.as_str().trim().is_empty() => {
                Err(Error::invalid("target", "the service name or id is empty"))
            }
            SwitchTarget::Service(s) if s.as_str().chars().any(char::is_control) => {
                Err(Error::invalid(
                    "target",
                    format!(
                        "{:?} holds control characters; give the service name or id",
                        s.as_str()
                    ),
                ))
            }
            SwitchTarget::Service(_) => Ok(()),
            SwitchTarget::Tagged(tags) if tags.is_empty() => {
                Err(Error::invalid("tag", "no tag given; e.g. --tag app=orders"))
            }
            SwitchTarget::Tagged(tags) => tags.iter().try_for_each(|t| check_tag("tag", t)),
        }
    }
}

impl Sides {
    /// Checks the suffixes tell the sides apart and the color tag key is usable.
    pub fn validate(&self) -> Result<()> {
        check_suffix_pair(&self.blue_suffix, &self.green_suffix)?;
        check_tag_key("color_tag", &self.color_tag)
    }
}

impl GateConfig {
    /// Checks the gates' counts, fraction and probes.
    pub fn validate(&self) -> Result<()> {
        check_count("min_targets", self.min_targets, 1, usize::MAX)?;
        check_fraction("min_healthy", self.min_healthy)?;
        for url in &self.data_planes {
            check_http_url("dp_status", url)?;
        }
        for probe in &self.probes {
            check_http_url("probe", &probe.url)?;
            check_count("probe_count", probe.count, 1, MAX_PROBE_COUNT)?;
            check_count("probe_status", probe.expect_status, 100, 599)?;
            DurationRange::REQUEST.check("probe_timeout", probe.timeout)?;
        }
        Ok(())
    }
}

impl VerifyConfig {
    /// Checks the amount, fraction, latency bound and waits.
    pub fn validate(&self) -> Result<()> {
        check_http_url("verify", &self.url)?;
        match self.amount {
            VerifyAmount::Count(n) => {
                check_count("verify_count", n, 1, MAX_VERIFY_COUNT)?;
            }
            VerifyAmount::For(d) => {
                DurationRange::WAIT.check("verify_for", d)?;
            }
        }
        check_fraction("min_success", self.min_success)?;
        match self.latency {
            Some(LatencyBound::P95(d)) => {
                DurationRange::REQUEST.check("p95_latency", d)?;
            }
            Some(LatencyBound::Max(d)) => {
                DurationRange::REQUEST.check("max_latency", d)?;
            }
            None => {}
        }
        check_count("consecutive", self.consecutive, 1, MAX_VERIFY_COUNT)?;
        if let Some(d) = self.convergence_timeout {
            DurationRange::WAIT.check("converge_timeout", d)?;
        }
        DurationRange::REQUEST.check("request_timeout", self.request_timeout)?;
        DurationRange::BAKE.check("interval", self.interval)?;
        Ok(())
    }
}

/// Serde helper: a `Duration` as whole milliseconds.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_into_ascending_steps_ending_at_100() {
        let s: Schedule = "all-at-once".parse().unwrap();
        assert_eq!(s, Schedule::all_at_once());
        let s: Schedule = "linear-30-every-1m".parse().unwrap();
        assert_eq!(s.percents, vec![30, 60, 90, 100]);
        assert_eq!(s.bake, Duration::from_secs(60));
        let s: Schedule = "linear-50-every-250ms".parse().unwrap();
        assert_eq!(s.percents, vec![50, 100]);
        assert_eq!(s.bake, Duration::from_millis(250));
        let s: Schedule = "canary-10-5m".parse().unwrap();
        assert_eq!(s.percents, vec![10, 100]);
        assert_eq!(s.bake, Duration::from_secs(300));
        let s: Schedule = "10,25,50,100".parse().unwrap();
        assert_eq!(s.percents, vec![10, 25, 50, 100]);
        assert_eq!(s.bake, Duration::ZERO);
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        for (input, needle) in [
            ("10,50", "last step must be 100"),
            ("50,25,100", "ascending"),
            ("0,100", "1..=100"),
            ("linear-25", "linear-<P>-every-<D>"),
            ("canary-10-soon", "soon"),
            ("abc", "percentage"),
        ] {
            let err = input.parse::<Schedule>().unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn targets_parse_tags_and_services() {
        assert_eq!(
            SwitchTarget::parse("tag:app=orders,tier=web").unwrap(),
            SwitchTarget::Tagged(vec!["app=orders".into(), "tier=web".into()])
        );
        assert_eq!(SwitchTarget::parse("orders").unwrap().key(), "orders");
        assert!(SwitchTarget::parse("tag:").is_err());
    }

    #[test]
    fn header_matches_parse_name_equals_value() {
        let h: HeaderMatch = "x-color=green".parse().unwrap();
        assert_eq!((h.name.as_str(), h.value.as_str()), ("x-color", "green"));
        assert!("nonsense".parse::<HeaderMatch>().is_err());
    }

    #[test]
    fn validation_names_the_field_of_every_bad_value() {
        type Edit = fn(&mut SwitchRequest);
        let verify = || VerifyConfig::new("http://kong:8000/orders".parse().unwrap());
        let probe = || Probe::new("http://green:80/health".parse().unwrap());
        let cases: &[(&str, Edit)] = &[
            ("green_suffix", |r| r.sides.green_suffix.clear()),
            ("green_suffix", |r| r.sides.green_suffix = "-blue".into()),
            ("blue_suffix", |r| r.sides.blue_suffix = " ".into()),
            ("color_tag", |r| r.sides.color_tag = "a=b".into()),
            ("target", |r| r.target = SwitchTarget::from(" ")),
            ("tag", |r| {
                r.target = SwitchTarget::Tagged(vec!["a b".into()])
            }),
            ("to", |r| r.to = Some(String::new())),
            ("min_targets", |r| r.gates.min_targets = 0),
            ("min_healthy", |r| r.gates.min_healthy = f64::NAN),
            ("lease_ttl", |r| r.lease_ttl = Duration::ZERO),
            ("lease_ttl", |r| r.lease_ttl = Duration::MAX),
            ("parallelism", |r| r.parallelism = 0),
            ("actor", |r| r.actor = "a\nb".into()),
            ("environment", |r| {
                r.attributes.environment = Some(String::new())
            }),
        ];
        for (field, edit) in cases {
            let mut req = SwitchRequest::new("orders");
            edit(&mut req);
            match req.validate() {
                Err(Error::InvalidRequest { field: f, .. }) => assert_eq!(f, *field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut req = SwitchRequest::new("orders");
        req.gates.probes = vec![Probe {
            count: 0,
            ..probe()
        }];
        assert!(req.validate().is_err());
        req.gates.probes = vec![Probe {
            timeout: Duration::MAX,
            ..probe()
        }];
        assert!(req.validate().is_err());
        req.gates.probes = vec![probe()];
        req.verify = Some(VerifyConfig {
            amount: VerifyAmount::For(Duration::ZERO),
            ..verify()
        });
        assert!(req.validate().is_err());
        req.verify = Some(VerifyConfig {
            amount: VerifyAmount::Count(0),
            ..verify()
        });
        assert!(req.validate().is_err());
        req.verify = Some(verify());
        assert!(req.validate().is_ok());
    }

    #[test]
    fn validation_rejects_out_of_range_fractions() {
        let mut req = SwitchRequest::new("orders");
        req.gates.min_healthy = 1.5;
        assert!(req.validate().is_err());
        req.gates.min_healthy = 0.5;
        assert!(req.validate().is_ok());
    }
}
