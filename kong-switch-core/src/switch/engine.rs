//! The engine: lock → read → gate → intend → apply → verify → record → release.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::admin::{AdminRequest, KongClient, Node};
use crate::model::{Mode, NameOrId};
use crate::state::{
    DeploymentStatus, Event, EventKind, IntentRecord, LeaseKeeper, LeasePolicy, StateLog,
    Step as LogStep,
};

use super::apply::{self, Applied, RestoreFailed, Stopped, read_value, same_value};
use super::dbless::Writer;
use super::error::{Error, Result};
use super::gates::{self, GateOutcome};
use super::hybrid::{self, Settle, Watch};
use super::intent::{self, Unreadable, intent_of};
use super::plan::{Check, Plan, RestoreItem, restore_items};
use super::progress::{NoProgress, Progress, ProgressEvent};
use super::report::{
    ConvergenceMethod, Durations, HybridReport, NodeConvergence, Outcome, ReadStats, Recovery,
    RestoredTo, RollbackCause, RollbackReport, StepReport, StepStatus, SwitchReport,
};
use super::request::{
    DEFAULT_PARALLELISM, OnFailure, Strategy, StrategyKind, SwitchRequest, SwitchTarget,
    VerifyAmount, VerifyConfig,
};
use super::snapshot::{Prepared, Reader};
use super::verify::{self, Converged, Poll, VerificationReport};

mod batch;
mod resolve;

/// The events that open and close a run: the newest of them says whether an intent dangles.
const RUN_KINDS: [EventKind; 4] = [
    EventKind::Intent,
    EventKind::Completed,
    EventKind::RolledBack,
    EventKind::Resolved,
];

/// Margin added to the computed convergence timeout.
const CONVERGENCE_MARGIN: Duration = Duration::from_secs(3);

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

/// The outcome of converging and verifying.
struct Verified {
    nodes: Vec<NodeConvergence>,
    hybrid: Option<HybridReport>,
    verification: Option<VerificationReport>,
    cancelled: bool,
    failure: Option<String>,
}

impl Verified {
    /// Why the run must stop after verification (the rollback path), if it must.
    fn stop(&self, step: usize) -> Option<Stopped> {
        if self.cancelled {
            return Some(Stopped::new(
                step,
                RollbackCause::Interrupted,
                "interrupted while waiting for the new side / verifying",
            ));
        }
        self.failure
            .clone()
            .map(|reason| Stopped::new(step, RollbackCause::VerificationFailed, reason))
    }
}

/// The steps of `plan` a rollback must undo: those applied, plus a write that failed or read
/// back wrong, since it may have taken effect (the restore compares with Kong first).
fn steps_to_undo(plan: &Plan, applied: usize, stopped: Option<&Stopped>) -> usize {
    match stopped {
        Some(s)
            if matches!(
                s.cause,
                RollbackCause::WriteFailed | RollbackCause::ReadbackMismatch
            ) =>
        {
            (s.step + 1).min(plan.steps.len())
        }
        _ => applied,
    }
}

/// What `drift` found, comparing the log's last word with Kong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    /// Nothing recorded for the target (or only refusals).
    NoHistory,
    /// Kong shows what the log says.
    InSync,
    /// Kong differs from what the log says (changed outside kong-switch, or a failed
    /// rollback).
    Drifted,
    /// The last record is an intent without outcome: a run crashed or is running. A re-run of
    /// the switch, or `rollback`, resolves it.
    DanglingIntent,
    /// The last run's intent cannot be read by this version (another shape, an edited log):
    /// Kong cannot be compared with it, and nothing is assumed. `resolve` records what Kong
    /// shows.
    Unreadable,
}

/// Where Kong stands relative to a plan. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KongState {
    /// Every planned value is as before the switch.
    Before,
    /// Every planned value is as after the switch.
    After,
    /// Some values before, some after (or other values).
    Partial,
}

/// One value compared by `drift`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparedValue {
    /// The read, e.g. `GET /services/orders`.
    pub read: String,
    /// JSON pointer, e.g. `/host`.
    pub pointer: String,
    /// What the log implies.
    pub expected: Value,
    /// What Kong shows (`null` when the entity or field is missing).
    pub kong: Value,
}

/// The log's last word about a target compared with Kong (for `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Target key.
    pub target: String,
    /// The finding.
    pub state: DriftState,
    /// The last relevant event's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<EventKind>,
    /// Its run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    /// For a dangling intent: where Kong stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kong: Option<KongState>,
    /// Every value compared.
    pub values: Vec<ComparedValue>,
    /// One sentence.
    pub message: String,
}

/// Checks merged per value: `before` from the first step touching it, `after` from the last.
fn merged_checks(steps: &[super::plan::Step]) -> Vec<Check> {
    let mut out: Vec<Check> = Vec::new();
    for check in steps.iter().flat_map(|s| &s.checks) {
        match out
            .iter_mut()
            .find(|c| c.read.path == check.read.path && c.pointer == check.pointer)
        {
            Some(existing) => existing.after = check.after.clone(),
            None => out.push(check.clone()),
        }
    }
    out
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
    async fn hybrid_watch(&self, node: &Node) -> Result<Option<Watch>> {
        if node.mode != Mode::HybridControlPlane {
            return Ok(None);
        }
        self.progress.event(ProgressEvent::Reading {
            what: "the control plane's data planes".into(),
        });
        Ok(Some(Watch::start(&self.client, node).await?))
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

        let watch = self.hybrid_watch(&prepared.node).await?;

        // Intend.
        let intent = intent_of(
            plan.strategy.as_str(),
            &plan.from.color,
            &plan.to.color,
            std::slice::from_ref(plan),
            None,
        );
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

    /// Takes the documented rollback path after `stopped`, logs it, and fills the report.
    async fn roll_back(
        &self,
        req: &SwitchRequest,
        plan: &Plan,
        base: &Event,
        applied: &Applied,
        stopped: Stopped,
        report: &mut SwitchReport,
    ) -> Result<()> {
        let upto = steps_to_undo(plan, applied.applied, Some(&stopped));
        let keep_last_good = matches!(&req.strategy, Strategy::Weights(o) if o.on_failure == OnFailure::KeepLastGood);
        let good_stages = if stopped.cause == RollbackCause::VerificationFailed {
            applied.stages_done.saturating_sub(1)
        } else {
            applied.stages_done
        };
        let (from, restored) = if keep_last_good && good_stages > 0 {
            let stage = good_stages - 1;
            (
                plan.stage_end(stage),
                RestoredTo::LastGoodStep {
                    stage,
                    percent: plan.stages.get(stage).and_then(|s| s.percent),
                },
            )
        } else {
            (0, RestoredTo::Start)
        };
        let items = [restore_items(&plan.steps[from.min(upto)..upto])];
        let stopped_at = plan.steps.get(stopped.step).map(|s| s.description.clone());
        let watch = self.rollback_watch().await;
        let mut restored_writes = self
            .undo_or_inconsistent(
                &req.actor,
                &plan.target,
                &stopped.reason,
                &items,
                1,
                &mut report.writes,
            )
            .await?;
        if stopped.uncertain {
            restored_writes.extend(
                self.fence_or_inconsistent(&plan.target, &stopped.reason, &items, req)
                    .await?,
            );
        }
        let (nodes, hybrid) = self
            .settle_rollback(
                watch,
                Instant::now(),
                moves_routes(plan),
                restored_writes.len(),
            )
            .await;
        for s in report.steps.iter_mut().take(upto).skip(from) {
            if s.status == StepStatus::Applied {
                s.status = StepStatus::Undone;
            }
        }
        let mut event = base
            .next(EventKind::RolledBack)
            .with_reason(stopped.reason.clone())
            .with_status(DeploymentStatus::RolledBack)
            .with_color(plan.to.color.clone());
        let where_now = match &restored {
            RestoredTo::Start => format!("{} is back on {}", plan.target, plan.from.name),
            RestoredTo::LastGoodStep { stage, percent } => {
                if let Some(s) = plan.stages.get(*stage) {
                    event = event.with_step(LogStep {
                        index: *stage,
                        of: Some(plan.stages.len()),
                        weights: s.weights.clone(),
                    });
                }
                format!(
                    "{} stays at the last good step ({}% {})",
                    plan.target,
                    percent.unwrap_or(0),
                    plan.to.color
                )
            }
        };
        self.log
            .append(event)
            .await
            .map_err(|source| Error::Unrecorded {
                target: plan.target.clone(),
                kong: format!("{}; {where_now}", stopped.reason),
                source: Box::new(source),
            })?;
        report.outcome = if stopped.cause == RollbackCause::Interrupted {
            Outcome::Interrupted
        } else {
            Outcome::RolledBack
        };
        report.message = format!("{}; {where_now}", stopped.reason);
        report.rollback = Some(RollbackReport {
            cause: stopped.cause,
            reason: stopped.reason,
            stopped_at,
            restored,
            writes: restored_writes,
            nodes,
            hybrid,
        });
        Ok(())
    }

    /// Waits until every node serves the new side, then verifies through the proxy.
    /// `router`: the writes moved routes (see [`moves_routes`]).
    async fn converge_and_verify(
        &self,
        req: &SwitchRequest,
        node: &Node,
        router: bool,
        watch: Option<(Watch, Instant)>,
    ) -> Verified {
        // Hybrid mode: every connected data plane must report the new config hash first.
        let mut hybrid_report = None;
        let mut hybrid_failure = None;
        let hybrid_nodes = match watch {
            Some((watch, written_at)) => {
                let settled = self.settle_hybrid(req, node, watch, written_at).await;
                if settled.cancelled {
                    return Verified {
                        nodes: settled.nodes,
                        hybrid: Some(settled.report),
                        verification: None,
                        cancelled: true,
                        failure: None,
                    };
                }
                hybrid_report = Some(settled.report);
                hybrid_failure = settled.failure;
                Some(settled.nodes)
            }
            None => None,
        };
        let hybrid_mode = hybrid_nodes.is_some();
        let primary_delay = primary_delay(node, router);
        let extra_nodes: Vec<(String, Option<Arc<Node>>)> = join_all(
            req.nodes
                .iter()
                .map(|n| async move { (n.name.clone(), n.client.node().await.ok()) }),
        )
        .await;
        let extra_delay = |n: &Option<Arc<Node>>| -> Duration {
            match n {
                Some(n) => {
                    n.db_update_frequency()
                        + if router {
                            n.router_rebuild_delay()
                        } else {
                            Duration::ZERO
                        }
                }
                None => Duration::from_secs(10),
            }
        };
        let longest = extra_nodes
            .iter()
            .map(|(_, n)| extra_delay(n))
            .chain(std::iter::once(primary_delay))
            .max()
            .unwrap_or_default();
        let verify = req.verify.as_ref();
        let timeout = verify
            .and_then(|v| v.convergence_timeout)
            .unwrap_or(longest + CONVERGENCE_MARGIN);

        let primary = async {
            match verify.and_then(|v| v.expect_header.as_ref().map(|h| (v, h))) {
                Some((v, header)) => {
                    let label = if hybrid_mode { "proxy" } else { "primary" };
                    Some(self.await_proxy(label, &v.url, header, v, timeout).await)
                }
                None if hybrid_mode => None,
                None => Some(
                    self.await_delay("primary", primary_delay, node_detail(node, router))
                        .await,
                ),
            }
        };
        let others = join_all(req.nodes.iter().zip(&extra_nodes).map(|(n, (_, info))| {
            let delay = extra_delay(info);
            async move {
                match (
                    verify,
                    &n.proxy_url,
                    verify.and_then(|v| v.expect_header.as_ref()),
                ) {
                    (Some(v), Some(url), Some(header)) => {
                        self.await_proxy(&n.name, url, header, v, timeout).await
                    }
                    _ => {
                        let detail = match info {
                            Some(info) => node_detail_extra(info, router),
                            None => "GET / failed: waited 10 s".to_owned(),
                        };
                        self.await_delay(&n.name, delay, detail).await
                    }
                }
            }
        }));
        let (primary, others) = futures::join!(primary, others);
        let mut nodes = hybrid_nodes.unwrap_or_default();
        nodes.extend(primary);
        nodes.extend(others);
        let cancelled = self.cancel.is_cancelled();
        if cancelled {
            return Verified {
                nodes,
                hybrid: hybrid_report,
                verification: None,
                cancelled,
                failure: None,
            };
        }
        let mut failure = hybrid_failure.or_else(|| {
            nodes
                .iter()
                .find(|n| !n.converged)
                .map(|n| format!("node {} did not serve the new side: {}", n.node, n.detail))
        });
        let mut verification = None;
        if let Some(v) = verify {
            match verify::measure(&self.http, v, &self.cancel, self.progress.as_ref()).await {
                None => {
                    return Verified {
                        nodes,
                        hybrid: hybrid_report,
                        verification: None,
                        cancelled: true,
                        failure: None,
                    };
                }
                Some(samples) => {
                    let converged_after = nodes
                        .first()
                        .and_then(|n| n.converged_after_ms)
                        .map(Duration::from_millis);
                    let r = verify::evaluate(&samples, v, converged_after);
                    if failure.is_none() {
                        failure = r
                            .failure
                            .clone()
                            .map(|f| format!("verification failed: {f}"));
                    }
                    verification = Some(r);
                }
            }
        }
        Verified {
            nodes,
            hybrid: hybrid_report,
            verification,
            cancelled: false,
            failure,
        }
    }

    /// Hybrid mode: waits until every connected data plane reports what was written at
    /// `written_at` (see `hybrid`).
    async fn settle_hybrid(
        &self,
        req: &SwitchRequest,
        node: &Node,
        watch: Watch,
        written_at: Instant,
    ) -> hybrid::Settled {
        let timeout = req
            .verify
            .as_ref()
            .and_then(|v| v.convergence_timeout)
            .unwrap_or_else(|| hybrid::default_timeout(node, self.disconnected_after));
        let proxy_proof = req
            .verify
            .as_ref()
            .is_some_and(|v| v.expect_header.is_some());
        self.settle_watch(
            node,
            watch,
            written_at,
            timeout,
            &req.gates.data_planes,
            proxy_proof,
        )
        .await
    }

    /// Waits until the data planes `watch` saw report what was written at `written_at`.
    async fn settle_watch(
        &self,
        node: &Node,
        watch: Watch,
        written_at: Instant,
        timeout: Duration,
        status_urls: &[url::Url],
        proxy_proof: bool,
    ) -> hybrid::Settled {
        watch
            .settle(Settle {
                node,
                written_at,
                disconnected_after: self.disconnected_after,
                timeout,
                status_urls,
                http: &self.http,
                cancel: &self.cancel,
                progress: self.progress.as_ref(),
                proxy_proof,
            })
            .await
    }

    async fn await_proxy(
        &self,
        node: &str,
        url: &url::Url,
        header: &super::request::HeaderMatch,
        v: &VerifyConfig,
        timeout: Duration,
    ) -> NodeConvergence {
        let poll = Poll {
            url,
            header,
            consecutive: v.consecutive,
            interval: v.interval,
            request_timeout: v.request_timeout,
            timeout,
            node,
        };
        match verify::await_new_side(&self.http, poll, &self.cancel, self.progress.as_ref()).await {
            Converged::After(d) => NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Proxy,
                converged: true,
                converged_after_ms: Some(ms(d)),
                detail: format!("{} consecutive answers with {header}", v.consecutive),
            },
            Converged::TimedOut(d) => NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Proxy,
                converged: false,
                converged_after_ms: None,
                detail: format!(
                    "no {} consecutive answers with {header} within {} ms",
                    v.consecutive,
                    ms(d)
                ),
            },
            Converged::Cancelled => NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Proxy,
                converged: false,
                converged_after_ms: None,
                detail: "interrupted".into(),
            },
        }
    }

    async fn await_delay(&self, node: &str, delay: Duration, detail: String) -> NodeConvergence {
        if delay.is_zero() {
            return NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Immediate,
                converged: true,
                converged_after_ms: Some(0),
                detail,
            };
        }
        self.progress.event(ProgressEvent::Waiting {
            what: format!("{node} to apply the change ({detail})"),
            up_to: delay,
        });
        let done = apply::wait(delay, &self.cancel).await;
        NodeConvergence {
            node: node.to_owned(),
            method: ConvergenceMethod::Waited,
            converged: done,
            converged_after_ms: done.then_some(ms(delay)),
            detail: if done { detail } else { "interrupted".into() },
        }
    }

    /// Resolves a dangling intent of `key` (a previous run crashed): Kong fully after → the
    /// switch is recorded as completed; fully before → recorded as rolled back; in between
    /// → the start is restored (only values that differ are written) and recorded.
    async fn recover(&self, key: &str, actor: &str) -> Result<Option<Recovery>> {
        // A run ends with an outcome (`completed`/`rolled_back`) after its intent; only
        // `step` and `status` events may follow it. So the newest of those three kinds tells
        // whether an intent dangles, read from the end of the log without loading it all.
        let Some(last) = self.log.last_of(key, &RUN_KINDS).await? else {
            return Ok(None);
        };
        if last.kind != EventKind::Intent {
            return Ok(None);
        }
        let plans = self.plans_of_run(key, &last).await?;
        let to = last.to.clone().unwrap_or_default();
        let state = self.kong_state(&plans).await?;
        let base = last.next(EventKind::RolledBack).with_actor(actor);
        let (action, writes, event) = match state.0 {
            KongState::After => (
                "recorded as completed",
                Vec::new(),
                last.next(EventKind::Completed)
                    .with_actor(actor)
                    .with_status(DeploymentStatus::Active)
                    .with_color(to)
                    .with_reason(
                        "recovered: the previous run applied every write but recorded no outcome",
                    ),
            ),
            KongState::Before => (
                "recorded as rolled back",
                Vec::new(),
                base.with_status(DeploymentStatus::RolledBack).with_reason(
                    "recovered: the previous run stopped before any write took effect",
                ),
            ),
            KongState::Partial => {
                let writes = self
                    .restore_plans(actor, key, &plans, "recovering a dangling intent: ")
                    .await?;
                (
                    "restored the start",
                    writes,
                    base.with_status(DeploymentStatus::RolledBack).with_reason(
                        "recovered: the previous run stopped mid-switch; restored the start",
                    ),
                )
            }
        };
        self.log.append(event).await?;
        Ok(Some(Recovery {
            run_id: last.run_id,
            kong: match state.0 {
                KongState::Before => "before",
                KongState::After => "after",
                KongState::Partial => "partial",
            }
            .to_owned(),
            action: action.to_owned(),
            writes,
        }))
    }

    /// Reads every planned value from Kong and classifies it.
    async fn kong_state(&self, plans: &[Plan]) -> Result<(KongState, Vec<(Check, Value)>)> {
        let checks: Vec<Check> = plans.iter().flat_map(|p| merged_checks(&p.steps)).collect();
        if checks.is_empty() {
            // Nothing to read is not "nothing changed": the caller cannot decide from it.
            return Err(Error::Unsupported(
                "the saved plans hold no value to read back from Kong".to_owned(),
            ));
        }
        let values =
            futures::future::try_join_all(checks.iter().map(|c| read_value(&self.client, c)))
                .await?;
        let pairs: Vec<(Check, Value)> = checks
            .into_iter()
            .zip(values)
            .map(|(c, v)| (c, v.unwrap_or(Value::Null)))
            .collect();
        let all_after = pairs.iter().all(|(c, v)| same_value(v, &c.after));
        let all_before = pairs.iter().all(|(c, v)| same_value(v, &c.before));
        let state = if all_after {
            KongState::After
        } else if all_before {
            KongState::Before
        } else {
            KongState::Partial
        };
        Ok((state, pairs))
    }

    /// Compares the log's last word about `target` with Kong (for `status`). Reads only.
    pub async fn drift(&self, target: &str) -> Result<Drift> {
        let mut drift = Drift {
            target: target.to_owned(),
            state: DriftState::NoHistory,
            last_event: None,
            run_id: None,
            kong: None,
            values: Vec::new(),
            message: format!("no switch of {target} recorded"),
        };
        let Some(last) = self.log.last_of(target, &RUN_KINDS).await? else {
            return Ok(drift);
        };
        drift.last_event = Some(last.kind);
        drift.run_id = last.run_id;
        // The intent of the last run, which is the newest intent (runs do not interleave);
        // a requested rollback has its own run id and no intent; a resolution carries what
        // it read.
        let intent_event = match last.kind {
            EventKind::Intent | EventKind::Resolved => Some(last.clone()),
            _ => {
                self.log
                    .last_of(target, &[EventKind::Intent, EventKind::Resolved])
                    .await?
            }
        };
        let Some(intent_event) = intent_event.filter(|e| e.intent.is_some()) else {
            drift.state = DriftState::InSync;
            drift.message = "the log holds no intent to compare with Kong".into();
            return Ok(drift);
        };
        let (from, to) = (
            intent_event.from.clone().unwrap_or_default(),
            intent_event.to.clone().unwrap_or_default(),
        );
        let plans = match self.plans_of_run(target, &intent_event).await {
            Ok(plans) => plans,
            Err(e @ Error::UnreadableIntent { .. }) => {
                drift.state = DriftState::Unreadable;
                drift.run_id = intent_event.run_id;
                drift.message = e.to_string();
                return Ok(drift);
            }
            Err(e) => return Err(e),
        };
        let (state, pairs) = self.kong_state(&plans).await?;
        if last.kind == EventKind::Intent {
            drift.state = DriftState::DanglingIntent;
            drift.kong = Some(state);
            drift.values = pairs
                .into_iter()
                .map(|(c, v)| compared(&c, c.after.clone(), v))
                .collect();
            drift.message = format!(
                "a switch of {target} started ({from} → {to}) but recorded no outcome; Kong is {}; re-run the switch or `rollback` to resolve it",
                match state {
                    KongState::Before => "still on the old side",
                    KongState::After => "on the new side",
                    KongState::Partial => "between the sides",
                }
            );
            return Ok(drift);
        }
        // Expected: after for completed; before for rolled back (or the kept step).
        let kept: Option<&LogStep> = if last.kind == EventKind::RolledBack {
            last.step.as_ref()
        } else {
            None
        };
        // A resolution on the run's `to` side reads like a completion, on its `from` side like
        // a rollback.
        let on_new_side = last.kind == EventKind::Completed
            || (last.kind == EventKind::Resolved && last.status == Some(DeploymentStatus::Active));
        let mut values = Vec::new();
        for (check, kong) in pairs {
            let expected = match (on_new_side, kept) {
                (true, _) => check.after.clone(),
                (_, Some(step)) => plans
                    .iter()
                    .find_map(|p| {
                        let end = p.stage_end(step.index);
                        merged_checks(&p.steps[..end])
                            .into_iter()
                            .find(|c| c.read.path == check.read.path && c.pointer == check.pointer)
                            .map(|c| c.after)
                    })
                    .unwrap_or_else(|| check.before.clone()),
                _ => check.before.clone(),
            };
            values.push(compared(&check, expected, kong));
        }
        let in_sync = values.iter().all(|v| same_value(&v.kong, &v.expected));
        drift.state = if in_sync {
            DriftState::InSync
        } else {
            DriftState::Drifted
        };
        drift.message = if in_sync {
            format!(
                "Kong matches the log ({} {})",
                last.kind,
                if on_new_side { &to } else { &from }
            )
        } else {
            let first = values.iter().find(|v| !same_value(&v.kong, &v.expected));
            format!(
                "Kong differs from the log ({}): {}",
                last.kind,
                first.map_or_else(String::new, |v| format!(
                    "{} {} is {} in Kong, {} in the log",
                    v.read, v.pointer, v.kong, v.expected
                ))
            )
        };
        drift.values = values;
        Ok(drift)
    }

    /// Restores the state saved in the last intent of `target`: compares Kong with it first
    /// and writes only the values that differ, then logs `rolled_back`. A report with outcome
    /// [`Outcome::Completed`] (the rollback is done) or [`Outcome::NoOp`] (Kong already
    /// showed the saved state).
    pub async fn rollback(
        &self,
        target: &str,
        actor: &str,
        lease_ttl: Duration,
    ) -> Result<SwitchReport> {
        let run_id = Uuid::new_v4();
        let mut lease = self.take_lease(target, actor, lease_ttl, run_id).await?;
        let run = self.leased_run(&lease);
        let result = lease.hold(run.rollback_locked(target, actor, run_id)).await;
        let lost = self.give_back(lease).await;
        result.map(|mut report| {
            if let Some(why) = lost {
                report.message = format!("lease lost ({why}); {}", report.message);
            }
            report
        })
    }

    /// Runs the undo of a failed run: `groups` holds one service's restore each, up to
    /// `parallelism` at once. When the undo itself fails, Kong may be between the sides: the
    /// undo writes that went out are added to `writes`, and the error names what stopped the
    /// run, what stopped the undo, and what remains to undo.
    async fn undo_or_inconsistent(
        &self,
        actor: &str,
        target: &str,
        reason: &str,
        groups: &[Vec<RestoreItem>],
        parallelism: usize,
        writes: &mut Vec<AdminRequest>,
    ) -> Result<Vec<AdminRequest>> {
        let writer = self.writer(actor);
        match apply::restore(&writer, groups, parallelism, self.progress.as_ref()).await {
            Ok(done) => Ok(done),
            Err(RestoreFailed {
                message,
                writes: sent,
                remaining,
            }) => {
                writes.extend(sent);
                Err(Error::Inconsistent {
                    target: target.to_owned(),
                    message: format!("{reason}; then the rollback failed: {message}"),
                    remaining,
                })
            }
        }
    }

    /// After the undo of a run stopped by a write of unknown outcome: proves the restore
    /// holds for `req.unknown_write_window` (see [`apply::fence`]). A failure is
    /// [`Error::Inconsistent`]: no `rolled_back` is recorded, the intent stays unfinished.
    async fn fence_or_inconsistent(
        &self,
        target: &str,
        reason: &str,
        groups: &[Vec<RestoreItem>],
        req: &SwitchRequest,
    ) -> Result<Vec<AdminRequest>> {
        self.progress.event(ProgressEvent::Waiting {
            what: "a write whose answer was lost: proving the restore holds".to_owned(),
            up_to: req.unknown_write_window,
        });
        apply::fence(
            &self.writer(&req.actor),
            groups,
            req.unknown_write_window,
            self.progress.as_ref(),
        )
        .await
        .map_err(|failed| Error::Inconsistent {
            target: target.to_owned(),
            message: format!(
                "{reason}; the restore could not be proven to hold: {}",
                failed.message
            ),
            remaining: failed.remaining,
        })
    }

    /// Restores the start of every plan, `self.parallelism` services at once. A failure is
    /// [`Error::Inconsistent`], its message prefixed with `context`.
    async fn restore_plans(
        &self,
        actor: &str,
        target: &str,
        plans: &[Plan],
        context: &str,
    ) -> Result<Vec<AdminRequest>> {
        let groups: Vec<Vec<RestoreItem>> = plans.iter().map(|p| restore_items(&p.steps)).collect();
        apply::restore(
            &self.writer(actor),
            &groups,
            self.parallelism,
            self.progress.as_ref(),
        )
        .await
        .map_err(|failed| Error::Inconsistent {
            target: target.to_owned(),
            message: format!("{context}{}", failed.message),
            remaining: failed.remaining,
        })
    }

    /// The plans of the run whose intent is `intent_event`, or why they cannot be read
    /// ([`Error::UnreadableIntent`]). Only a batch's intent, written in parts, needs the
    /// history read to gather them.
    async fn plans_of_run(&self, target: &str, intent_event: &Event) -> Result<Vec<Plan>> {
        let split = matches!(
            &intent_event.intent,
            Some(IntentRecord::Readable(i)) if i.part.is_some()
        );
        let events = if split {
            self.log.history(target).await?.events
        } else {
            Vec::new()
        };
        intent::plans_of_run(&events, intent_event).map_err(|u| unreadable(target, u))
    }

    /// Waits until Kong serves what a restore wrote at `written_at`: every data plane in
    /// hybrid mode (`watch`, taken before the writes), else the written node's router delay
    /// when `router` (the writes moved routes).
    async fn settle_restore(
        &self,
        node: &Node,
        watch: Option<Watch>,
        written_at: Instant,
        router: bool,
        writes: usize,
    ) -> (Vec<NodeConvergence>, Option<HybridReport>) {
        match watch {
            Some(watch) => {
                let timeout = hybrid::default_timeout(node, self.disconnected_after);
                let settled = self
                    .settle_watch(
                        node,
                        watch.with_writes(writes),
                        written_at,
                        timeout,
                        &[],
                        false,
                    )
                    .await;
                (settled.nodes, Some(settled.report))
            }
            None => (vec![self.await_primary(node, router).await], None),
        }
    }

    /// Before an automatic rollback's undo writes, in hybrid mode: the data planes' state.
    /// A failure to read it is logged, never a reason to skip the undo.
    async fn rollback_watch(&self) -> Option<Watch> {
        let node = self.client.node().await.ok()?;
        match self.hybrid_watch(&node).await {
            Ok(watch) => watch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the data planes; the rollback will not wait for them");
                None
            }
        }
    }

    /// After an automatic rollback's undo writes: waits as [`Self::settle_restore`] does,
    /// unless the run was interrupted (Ctrl-C asks to stop, not to wait).
    async fn settle_rollback(
        &self,
        watch: Option<Watch>,
        written_at: Instant,
        router: bool,
        undo_writes: usize,
    ) -> (Vec<NodeConvergence>, Option<HybridReport>) {
        if undo_writes == 0 || self.cancel.is_cancelled() {
            return (Vec::new(), None);
        }
        match self.client.node().await {
            Ok(node) => {
                self.settle_restore(&node, watch, written_at, router, undo_writes)
                    .await
            }
            Err(e) => (
                vec![NodeConvergence {
                    node: "primary".to_owned(),
                    method: ConvergenceMethod::Waited,
                    converged: false,
                    converged_after_ms: None,
                    detail: format!("not waited for: GET / failed: {e}"),
                }],
                None,
            ),
        }
    }

    /// Waits until the written node serves what was just written: its router rebuild delay
    /// when `router` (service and route changes; none for target weights or `POST /config`),
    /// as `GET /` reports it.
    async fn await_primary(&self, node: &Node, router: bool) -> NodeConvergence {
        let delay = primary_delay(node, router);
        if !delay.is_zero() {
            self.progress.event(ProgressEvent::Waiting {
                what: "Kong to apply the rollback".to_owned(),
                up_to: delay,
            });
            tokio::time::sleep(delay).await;
        }
        NodeConvergence {
            node: "primary".to_owned(),
            method: if delay.is_zero() {
                ConvergenceMethod::Immediate
            } else {
                ConvergenceMethod::Waited
            },
            converged: true,
            converged_after_ms: Some(ms(delay)),
            detail: node_detail(node, router),
        }
    }

    async fn rollback_locked(
        &self,
        target: &str,
        actor: &str,
        run_id: Uuid,
    ) -> Result<SwitchReport> {
        let started = Instant::now();
        let already_rolled_back = self
            .log
            .last_of(target, &RUN_KINDS)
            .await?
            .is_some_and(|e| {
                e.kind == EventKind::RolledBack
                    || (e.kind == EventKind::Resolved
                        && e.status == Some(DeploymentStatus::RolledBack))
            });
        let Some(intent_event) = self
            .log
            .last_of(target, &[EventKind::Intent, EventKind::Resolved])
            .await?
            .filter(|e| e.intent.is_some())
        else {
            return Err(Error::NotFound {
                kind: "recorded switch of",
                name: target.to_owned(),
            });
        };
        let (run_strategy, run_from, run_to) = (
            intent_event.strategy.clone().unwrap_or_default(),
            intent_event.from.clone().unwrap_or_default(),
            intent_event.to.clone().unwrap_or_default(),
        );
        let plans = self.plans_of_run(target, &intent_event).await?;
        let Some(first) = plans.first() else {
            return Err(Error::Unsupported(format!(
                "the last intent of {target} carries no plan"
            )));
        };
        let node = self.client.node().await?;
        let watch = self.hybrid_watch(&node).await?;
        let writes = self.restore_plans(actor, target, &plans, "").await?;
        let written_at = Instant::now();
        let strategy = first.strategy;
        let (nodes, hybrid_report) = if writes.is_empty() {
            (Vec::new(), None)
        } else {
            self.settle_restore(
                &node,
                watch,
                written_at,
                plans.iter().any(moves_routes),
                writes.len(),
            )
            .await
        };
        let reason = format!(
            "rollback requested by {actor} (restores run {})",
            intent_event
                .run_id
                .map_or_else(|| "?".to_owned(), |r| r.to_string())
        );
        let event = Event::new(target, EventKind::RolledBack)
            .with_run_id(run_id)
            .with_actor(actor)
            .with_strategy(run_strategy)
            .with_sides(run_from, run_to.clone())
            .with_status(DeploymentStatus::RolledBack)
            .with_color(run_to)
            .with_reason(reason.clone());
        let noop = writes.is_empty();
        // A no-op rollback of an already rolled-back switch needs no new record.
        if !(noop && already_rolled_back) {
            self.log.append(event).await?;
        }
        Ok(SwitchReport {
            target: target.to_owned(),
            strategy,
            from: Some(first.to.clone()),
            to: Some(first.from.clone()),
            outcome: if noop {
                Outcome::NoOp
            } else {
                Outcome::Completed
            },
            message: if noop {
                format!(
                    "{target} already shows the state saved before run {}; nothing written",
                    intent_event
                        .run_id
                        .map_or_else(|| "?".to_owned(), |r| r.to_string())
                )
            } else {
                format!(
                    "{target} rolled back to {} ({} write(s)){}",
                    first.from.name,
                    writes.len(),
                    hybrid_report.as_ref().map(live_message).unwrap_or_default()
                )
            },
            gates: Vec::new(),
            writes: writes.clone(),
            undo: Vec::new(),
            steps: Vec::new(),
            rollback: Some(RollbackReport {
                cause: RollbackCause::Requested,
                reason,
                stopped_at: None,
                restored: RestoredTo::Start,
                writes,
                nodes: Vec::new(),
                hybrid: None,
            }),
            verification: None,
            nodes,
            hybrid: hybrid_report,
            reads: ReadStats::default(),
            recovered: None,
            run_id: Some(run_id),
            durations: Durations {
                total_ms: ms(started.elapsed()),
                ..Durations::default()
            },
        })
    }
}

/// The error for a run whose plans cannot be read.
fn unreadable(target: &str, u: Unreadable) -> Error {
    Error::UnreadableIntent {
        target: target.to_owned(),
        run_id: u.run_id,
        seq: u.seq,
        reason: u.reason,
    }
}

/// Whether applying `plan` changes what a route leads to, which a 3.x node's proxy serves
/// only after its router rebuild (target weights and `POST /config` apply at once).
fn moves_routes(plan: &Plan) -> bool {
    plan.strategy != StrategyKind::Weights && !plan.declarative && !plan.is_noop()
}

fn compared(check: &Check, expected: Value, kong: Value) -> ComparedValue {
    ComparedValue {
        read: check.read.to_string(),
        pointer: check.pointer.clone(),
        expected,
        kong,
    }
}

fn primary_delay(node: &Node, router: bool) -> Duration {
    match node.mode {
        // Pushes to data planes happen within db_update_frequency; 3.x proxies lag ~1 s more.
        Mode::HybridControlPlane => node.db_update_frequency() + Duration::from_secs(2),
        _ if router => node.router_rebuild_delay(),
        _ => Duration::ZERO,
    }
}

fn node_detail(node: &Node, router: bool) -> String {
    match node.mode {
        Mode::HybridControlPlane => format!(
            "control plane pushes within db_update_frequency {:.1} s (+2 s for data-plane proxies)",
            node.db_update_frequency().as_secs_f64()
        ),
        _ if router => format!(
            "router rebuild delay {:.1} s (Kong {})",
            node.router_rebuild_delay().as_secs_f64(),
            node.version
        ),
        _ => "target weight changes apply at once on the written node".to_owned(),
    }
}

fn node_detail_extra(node: &Node, router: bool) -> String {
    if router {
        format!(
            "db_update_frequency {:.1} s + router rebuild delay {:.1} s",
            node.db_update_frequency().as_secs_f64(),
            node.router_rebuild_delay().as_secs_f64()
        )
    } else {
        format!(
            "db_update_frequency {:.1} s",
            node.db_update_frequency().as_secs_f64()
        )
    }
}

/// `, live on 2 data plane(s) after 6.1 s (dp x disconnected, not waited for)`.
fn live_message(h: &HybridReport) -> String {
    let connected = h.data_planes.iter().filter(|d| d.connected).count();
    let mut text = match h.live_after_ms {
        Some(after) => format!(
            ", live on {connected} data plane(s) after {:.1} s",
            Duration::from_millis(after).as_secs_f64()
        ),
        None => format!(", not live on every data plane ({connected} connected)"),
    };
    if !h.disconnected.is_empty() {
        text.push_str(&format!(
            "; disconnected, not waited for: {}",
            h.disconnected.join(", ")
        ));
    }
    text
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
