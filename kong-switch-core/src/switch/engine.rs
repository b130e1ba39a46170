//! The engine: lock → read → gate → intend → apply → verify → record → release.
//!
//! This file holds the [`Engine`] itself (its builder methods, leases, the reader and
//! writer it hands out), [`Engine::plan`], and the switch of one service: its entry point
//! and the run under the lease. The rest of a run lives beside it: `converge` (waiting
//! for the new side and verifying), `rollback` (the automatic rollback path and the
//! `rollback` command), `recovery` (dangling intents and `drift`), `batch` (tag
//! selections) and `resolve` (closing a run whose intent cannot be read).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::admin::{KongClient, Node};
use crate::model::{Mode, NameOrId};
use crate::state::{
    DeploymentStatus, Event, EventKind, LeaseKeeper, LeasePolicy, StateLog, Step as LogStep,
};

use super::apply::{self, Applied};
use super::dbless::Writer;
use super::error::{Error, Result};
use super::gates::{self, GateOutcome};
use super::hybrid::{self, Watch};
use super::intent::intent_of_plan;
use super::plan::Plan;
use super::progress::{NoProgress, Progress, ProgressEvent};
use super::report::{Durations, Outcome, RollbackCause, StepReport, SwitchReport};
use super::request::{
    DEFAULT_PARALLELISM, StrategyKind, SwitchRequest, SwitchTarget, VerifyAmount, VerifyConfig,
};
use super::snapshot::{Prepared, Reader};
use super::verify;

mod batch;
mod converge;
mod recovery;
mod resolve;
mod rollback;

use converge::live_message;
pub use recovery::{ComparedValue, Drift, DriftState, KongState};

/// The events that open and close a run: the newest of them says whether an intent dangles.
const RUN_KINDS: [EventKind; 4] = [
    EventKind::Intent,
    EventKind::Completed,
    EventKind::RolledBack,
    EventKind::Resolved,
];

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The blue/green switch engine over one Kong Admin API and one state log.
///
/// ```no_run
/// use kong_switch_core::admin::{AdminConfig, KongClient};
/// use kong_switch_core::state::FileLog;
/// use kong_switch_core::switch::{Engine, Outcome, SwitchRequest, VerifyConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = KongClient::new(AdminConfig::builder("http://localhost:8001")?.build()?)?;
/// let engine = Engine::new(client, FileLog::open("/var/lib/kong-switch")?);
///
/// let mut request = SwitchRequest::new("orders");          // upstream strategy by default
/// request.gates.min_healthy = 1.0;                          // every green target HEALTHY
/// let mut verify = VerifyConfig::new("http://localhost:8000/orders".parse()?);
/// verify.expect_header = Some("x-color=green".parse()?);    // answers must come from green
/// request.verify = Some(verify);
///
/// let plan = engine.plan(&request).await?;                  // what it would write
/// for write in plan.writes() {
///     println!("{write}");
/// }
/// let report = engine.switch(&request).await?;              // lock, gate, write, verify, record
/// println!("{:?}: {}", report.outcome, report.message);
/// assert!(matches!(report.outcome, Outcome::Completed | Outcome::Refused));
/// # Ok(())
/// # }
/// ```
pub struct Engine<L> {
    client: KongClient,
    log: L,
    http: reqwest::Client,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
    disconnected_after: Duration,
    parallelism: usize,
    leases: LeasePolicy,
}

impl<L> std::fmt::Debug for Engine<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn all_passed(gates: &[GateOutcome]) -> bool {
    gates.iter().all(|g| g.passed)
}

impl<L: StateLog> Engine<L> {
    /// An engine writing through `client` and recording in `log`.
    pub fn new(client: KongClient, log: L) -> Self {
        Engine {
            client,
            log,
            http: reqwest::Client::new(),
            progress: Arc::new(NoProgress),
            cancel: CancellationToken::new(),
            disconnected_after: hybrid::DEFAULT_DISCONNECTED_AFTER,
            parallelism: DEFAULT_PARALLELISM,
            leases: LeasePolicy::default(),
        }
    }

    /// How runs hold their leases: renewal interval, expiry, host, `--break-lease`
    /// (default: renewed every 10 s, expiring 30 s after the last renewal).
    #[must_use]
    pub fn with_lease_policy(mut self, leases: LeasePolicy) -> Self {
        self.leases = leases;
        self
    }

    /// Takes the lease on `key` for the run `run_id` (recording a takeover). The run works
    /// through [`Self::leased_run`] and [`LeaseKeeper::hold`], so it stops at its next step
    /// boundary when the lease is lost.
    async fn take_lease(
        &self,
        key: &str,
        actor: &str,
        ttl: Duration,
        run_id: Uuid,
    ) -> Result<LeaseKeeper<'_, L>> {
        self.leases
            .validate()
            .map_err(|message| Error::invalid("lease policy", message))?;
        let request = self.leases.request(key, actor, ttl, run_id);
        Ok(LeaseKeeper::acquire(&self.log, request, self.leases.break_lease, &self.cancel).await?)
    }

    /// This engine for one leased run: stops between steps when `lease` is lost (or on
    /// this engine's own cancellation).
    fn leased_run(&self, lease: &LeaseKeeper<'_, L>) -> Engine<&L> {
        Engine {
            client: self.client.clone(),
            log: &self.log,
            http: self.http.clone(),
            progress: Arc::clone(&self.progress),
            cancel: lease.stop_token(),
            disconnected_after: self.disconnected_after,
            parallelism: self.parallelism,
            leases: self.leases.clone(),
        }
    }

    /// Gives the lease back; returns why it was lost, if it was.
    async fn give_back(&self, lease: LeaseKeeper<'_, L>) -> Option<String> {
        let lost = lease.lost().map(str::to_owned);
        if let Err(e) = lease.release().await {
            tracing::warn!(error = %e, "could not release the lease; it lapses at its expiry");
        }
        lost
    }

    /// Hybrid mode: a data plane whose `last_seen` is older than this is disconnected, named in
    /// the report and not waited for. Default 45 s (Kong's 1.5 × the 30 s ping).
    #[must_use]
    pub fn with_data_plane_timeout(mut self, timeout: Duration) -> Self {
        self.disconnected_after = timeout;
        self
    }

    /// How many services a `rollback` or the recovery of an interrupted batch restores at
    /// once (default 10). A batch's own automatic rollback uses its request's `parallelism`.
    #[must_use]
    pub fn with_parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism.max(1);
        self
    }

    /// Hybrid mode: records the data planes before the first write (`None` otherwise).
    async fn hybrid_watch(&self, node: &Node, status_urls: &[url::Url]) -> Result<Option<Watch>> {
        if node.mode != Mode::HybridControlPlane {
            return Ok(None);
        }
        self.progress.event(ProgressEvent::Reading {
            what: "the control plane's data planes".into(),
        });
        Ok(Some(
            Watch::start(&self.client, node, &self.http, status_urls).await?,
        ))
    }

    /// Reports progress to `progress` (progress bars).
    #[must_use]
    pub fn with_progress(mut self, progress: impl Progress + 'static) -> Self {
        self.progress = Arc::new(progress);
        self
    }

    /// Stops between steps when `token` is cancelled (Ctrl-C), taking the rollback path.
    #[must_use]
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The HTTP client used for probes, data-plane health and verification (e.g. with the
    /// CLI's TLS settings). Default: a plain `reqwest::Client`.
    #[must_use]
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The state log.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// The Admin API client.
    pub fn client(&self) -> &KongClient {
        &self.client
    }

    fn reader<'a>(&'a self, req: &'a SwitchRequest) -> Reader<'a> {
        Reader {
            client: &self.client,
            http: &self.http,
            progress: self.progress.as_ref(),
            req,
            destinations: Default::default(),
            batch: false,
        }
    }

    /// Sends writes for `actor`: entity writes as they are, DB-less edits under the node's
    /// config lease (see `dbless`).
    fn writer<'a>(&'a self, actor: &'a str) -> Writer<'a, L> {
        Writer {
            client: &self.client,
            log: &self.log,
            holder: actor,
        }
    }

    fn service_key(req: &SwitchRequest) -> Result<NameOrId> {
        match &req.target {
            SwitchTarget::Service(s) => Ok(s.clone()),
            SwitchTarget::Tagged(_) => Err(Error::invalid(
                "target",
                "a tag selection switches several services: use switch_batch",
            )),
        }
    }

    /// Reads Kong and computes the plan without writing, locking or logging.
    pub async fn plan(&self, req: &SwitchRequest) -> Result<Plan> {
        req.validate()?;
        let key = Self::service_key(req)?;
        Ok(self
            .reader(req)
            .prepare(&key, &req.target.key())
            .await?
            .plan)
    }

    /// Runs a switch of one service (design §3). Domain outcomes (no-op, refused, rolled
    /// back, interrupted, verification failed) are in the report; errors are what kept the
    /// engine from reaching one, and [`Error::Locked`].
    pub async fn switch(&self, req: &SwitchRequest) -> Result<SwitchReport> {
        req.validate()?;
        let service = Self::service_key(req)?;
        let key = req.target.key();
        if req.dry_run {
            return self.dry_run(req, &service, &key).await;
        }
        let run_id = Uuid::new_v4();
        let mut lease = self
            .take_lease(&key, &req.actor, req.lease_ttl, run_id)
            .await?;
        let run = self.leased_run(&lease);
        let result = lease
            .hold(run.switch_locked(req, &service, &key, run_id))
            .await;
        let lost = self.give_back(lease).await;
        result.map(|mut report| {
            if let Some(why) = lost {
                report.message = format!("lease lost ({why}); {}", report.message);
            }
            report
        })
    }

    async fn dry_run(
        &self,
        req: &SwitchRequest,
        service: &NameOrId,
        key: &str,
    ) -> Result<SwitchReport> {
        let started = Instant::now();
        let reader = self.reader(req);
        let prepared = reader.prepare(service, key).await?;
        let read_ms = ms(started.elapsed());
        let mut report = base_report(key, &prepared);
        report.durations.read_ms = read_ms;
        if prepared.plan.is_noop() && all_passed(&prepared.gates) {
            report.outcome = Outcome::NoOp;
            report.message = noop_message(&prepared.plan);
            return Ok(report);
        }
        let gates_started = Instant::now();
        report.gates.extend(reader.probe_gates().await);
        report.durations.gates_ms = ms(gates_started.elapsed());
        report.writes = prepared.plan.writes();
        if all_passed(&report.gates) {
            report.outcome = Outcome::DryRun;
            report.message = format!(
                "{} write(s) would move {} from {} to {}; nothing was written",
                report.writes.len(),
                key,
                prepared.plan.from.name,
                prepared.plan.to.name
            );
        } else {
            report.outcome = Outcome::Refused;
            report.message = format!(
                "the switch would be refused: {}",
                gates::refusal_reason(&report.gates)
            );
        }
        report.durations.total_ms = ms(started.elapsed());
        Ok(report)
    }

    fn event(
        &self,
        key: &str,
        kind: EventKind,
        run_id: Uuid,
        req: &SwitchRequest,
        plan: &Plan,
    ) -> Event {
        let mut e = Event::new(key, kind)
            .with_run_id(run_id)
            .with_actor(req.actor.clone())
            .with_strategy(plan.strategy.as_str())
            .with_sides(plan.from.color.clone(), plan.to.color.clone());
        match &req.target {
            SwitchTarget::Service(s) => e = e.with_service(s.as_str()),
            SwitchTarget::Tagged(_) => {}
        }
        // The upstream that receives traffic: the green upstream (upstream strategy) or the
        // shared one (weights). The route strategy switches services, not upstreams.
        if plan.strategy != StrategyKind::Route {
            e = e.with_upstream(plan.to.name.clone());
        }
        req.attributes.stamp(e)
    }

    async fn switch_locked(
        &self,
        req: &SwitchRequest,
        service: &NameOrId,
        key: &str,
        run_id: Uuid,
    ) -> Result<SwitchReport> {
        let started = Instant::now();
        let recovered = self.recover(key, &req.actor).await?;
        let reader = self.reader(req);
        let prepared = reader.prepare(service, key).await?;
        let mut report = base_report(key, &prepared);
        report.recovered = recovered;
        report.durations.read_ms = ms(started.elapsed());
        if prepared.plan.is_noop() && all_passed(&prepared.gates) {
            report.outcome = Outcome::NoOp;
            report.message = noop_message(&prepared.plan);
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        }

        // Gates.
        let gates_started = Instant::now();
        if !prepared.plan.is_noop() {
            report.gates.extend(reader.probe_gates().await);
        }
        report.durations.gates_ms = ms(gates_started.elapsed());
        report.run_id = Some(run_id);
        let plan = &prepared.plan;
        if !all_passed(&report.gates) {
            let reason = gates::refusal_reason(&report.gates);
            self.log
                .append(
                    self.event(key, EventKind::Refused, run_id, req, plan)
                        .with_reason(reason.clone()),
                )
                .await?;
            report.outcome = Outcome::Refused;
            report.message = format!("nothing changed in Kong: {reason}");
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        }

        let watch = self
            .hybrid_watch(&prepared.node, &req.gates.data_planes)
            .await?;

        // Intend.
        let intent = intent_of_plan(plan);
        let base = self.event(key, EventKind::Intent, run_id, req, plan);
        self.log.append(base.clone().with_intent(intent)).await?;

        // Apply.
        let apply_started = Instant::now();
        let applied = self.apply_logged(req, plan, &base).await;
        let written_at = Instant::now();
        report.durations.apply_ms = ms(apply_started.elapsed());
        report.writes = applied.writes.clone();
        report.steps = applied.steps.clone();
        if let Some(stopped) = applied.stopped.clone() {
            self.roll_back(req, plan, &base, &applied, stopped, &mut report)
                .await?;
            if let Some(reason) = applied.refused {
                return Err(Error::ConfigChanged {
                    target: key.to_owned(),
                    message: format!("{reason}; {}", report.message),
                });
            }
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        }

        // Verify.
        let verify_started = Instant::now();
        let verified = self
            .converge_and_verify(
                req,
                &prepared.node,
                moves_routes(plan),
                watch.map(|w| (w.with_writes(applied.writes.len()), written_at)),
            )
            .await;
        report.durations.verify_ms = ms(verify_started.elapsed());
        let stop = verified.stop(plan.steps.len());
        report.nodes = verified.nodes;
        report.hybrid = verified.hybrid;
        report.verification = verified.verification;
        match stop {
            Some(stopped)
                if stopped.cause == RollbackCause::VerificationFailed && req.no_rollback =>
            {
                self.record_unverified(&base, &plan.to.color, &stopped.reason)
                    .await?;
                report.outcome = Outcome::VerificationFailed;
                report.message = format!(
                    "{key} now routes to {} but verification failed (rollback disabled): {}",
                    plan.to.name, stopped.reason
                );
            }
            Some(stopped) => {
                self.roll_back(req, plan, &base, &applied, stopped, &mut report)
                    .await?;
            }
            None => {
                self.record_completed(&base, plan)
                    .await
                    .map_err(|source| Error::Unrecorded {
                        target: key.to_owned(),
                        kong: format!("{key} routes to {} (switch verified)", plan.to.name),
                        source: Box::new(source),
                    })?;
                report.outcome = Outcome::Completed;
                report.message = format!(
                    "{key} switched from {} to {} ({} write(s){}){}",
                    plan.from.name,
                    plan.to.name,
                    report.writes.len(),
                    if report.verification.is_some() {
                        ", verified"
                    } else {
                        ""
                    },
                    report.hybrid.as_ref().map(live_message).unwrap_or_default()
                );
            }
        }
        report.durations.total_ms = ms(started.elapsed());
        Ok(report)
    }

    async fn record_completed(
        &self,
        base: &Event,
        plan: &Plan,
    ) -> std::result::Result<(), crate::state::Error> {
        self.log
            .append(
                base.next(EventKind::Completed)
                    .with_color(plan.to.color.clone())
                    .with_status(DeploymentStatus::Active),
            )
            .await?;
        self.log
            .append(
                base.next(EventKind::Status)
                    .with_color(plan.from.color.clone())
                    .with_status(DeploymentStatus::Idle),
            )
            .await?;
        Ok(())
    }

    /// Records a switch kept on the new side although its verification failed
    /// (`--no-rollback`).
    async fn record_unverified(&self, base: &Event, color: &str, failure: &str) -> Result<()> {
        self.log
            .append(
                base.next(EventKind::Completed)
                    .with_color(color)
                    .with_status(DeploymentStatus::Active)
                    .with_reason(format!("verification failed, rollback disabled: {failure}")),
            )
            .await?;
        Ok(())
    }

    /// Applies the plan, logging a `step` event after each stage of a `weights` plan and,
    /// with `--verify`, watching the proxy during each bake: a stage whose traffic fails the
    /// success ratio or latency bound stops the shift there (the share from the new side is
    /// checked only at the end, since both sides answer mid-shift).
    async fn apply_logged(&self, req: &SwitchRequest, plan: &Plan, base: &Event) -> Applied {
        let log = &self.log;
        let stages = plan.stages.len();
        let weights = plan.strategy == StrategyKind::Weights;
        apply::apply_plan(
            &self.writer(&req.actor),
            plan,
            &self.cancel,
            self.progress.as_ref(),
            |stage, bake| {
                let event = weights.then(|| {
                    base.next(EventKind::Step).with_step(LogStep {
                        index: stage,
                        of: Some(stages),
                        weights: plan
                            .stages
                            .get(stage)
                            .map(|s| s.weights.clone())
                            .unwrap_or_default(),
                    })
                });
                let watch = req
                    .verify
                    .as_ref()
                    .filter(|_| weights && !bake.is_zero())
                    .map(|v| VerifyConfig {
                        amount: VerifyAmount::For(bake),
                        expect_header: None,
                        ..v.clone()
                    });
                let label = plan.stages.get(stage).map(|s| s.label.clone());
                async move {
                    if let Some(event) = event
                        && let Err(e) = log.append(event).await
                    {
                        tracing::warn!(error = %e, stage, "could not log a weights step");
                    }
                    let watch = watch?;
                    let samples =
                        verify::measure(&self.http, &watch, &self.cancel, self.progress.as_ref())
                            .await?;
                    verify::evaluate(&samples, &watch, None).failure.map(|f| {
                        format!(
                            "traffic during the bake of {} failed verification: {f}",
                            label.as_deref().unwrap_or("the step")
                        )
                    })
                }
            },
        )
        .await
    }
}

/// Whether applying `plan` changes what a route leads to, which a 3.x node's proxy serves
/// only after its router rebuild (target weights and `POST /config` apply at once).
fn moves_routes(plan: &Plan) -> bool {
    plan.strategy != StrategyKind::Weights && !plan.declarative && !plan.is_noop()
}

fn noop_message(plan: &Plan) -> String {
    format!(
        "{} already routes to {} ({}); nothing to do, no Kong write",
        plan.target, plan.to.name, plan.to.color
    )
}

fn base_report(key: &str, prepared: &Prepared) -> SwitchReport {
    let plan = &prepared.plan;
    SwitchReport {
        target: key.to_owned(),
        strategy: plan.strategy,
        from: Some(plan.from.clone()),
        to: Some(plan.to.clone()),
        outcome: Outcome::DryRun,
        message: String::new(),
        gates: prepared.gates.clone(),
        writes: Vec::new(),
        undo: plan.undo(),
        steps: StepReport::planned(plan),
        rollback: None,
        verification: None,
        nodes: Vec::new(),
        hybrid: None,
        reads: prepared.reads,
        recovered: None,
        run_id: None,
        durations: Durations::default(),
    }
}
