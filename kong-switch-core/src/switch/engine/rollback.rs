//! Rolling back: the automatic rollback path of a run that stopped after its first write
//! (undo in reverse, fenced when a write's outcome is unknown, waited for like the switch),
//! and the `rollback` command, which restores the state saved in the last intent.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::admin::{AdminRequest, Node};
use crate::state::{DeploymentStatus, Event, EventKind, StateLog, Step as LogStep};

use super::super::apply::{self, Applied, RestoreFailed, Stopped};
use super::super::error::{Error, Result};
use super::super::hybrid::{self, Watch};
use super::super::plan::{Plan, RestoreItem, restore_items};
use super::super::progress::ProgressEvent;
use super::super::report::{
    ConvergenceMethod, Durations, HybridReport, NodeConvergence, Outcome, ReadStats, RestoredTo,
    RollbackCause, RollbackReport, StepStatus, SwitchReport,
};
use super::super::request::{OnFailure, Strategy, SwitchRequest};
use super::converge::live_message;
use super::{Engine, RUN_KINDS, moves_routes, ms};

/// The steps of `plan` a rollback must undo: those applied, plus a write that failed or read
/// back wrong, since it may have taken effect (the restore compares with Kong first).
pub(super) fn steps_to_undo(plan: &Plan, applied: usize, stopped: Option<&Stopped>) -> usize {
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

impl<L: StateLog> Engine<L> {
    /// Takes the documented rollback path after `stopped`, logs it, and fills the report.
    pub(super) async fn roll_back(
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

    /// Runs the undo of a failed run: `groups` holds one service's restore each, up to
    /// `parallelism` at once. When the undo itself fails, Kong may be between the sides: the
    /// undo writes that went out are added to `writes`, and the error names what stopped the
    /// run, what stopped the undo, and what remains to undo.
    pub(super) async fn undo_or_inconsistent(
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
    pub(super) async fn fence_or_inconsistent(
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
    pub(super) async fn restore_plans(
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

    /// Before an automatic rollback's undo writes, in hybrid mode: the data planes' state.
    /// A failure to read it is logged, never a reason to skip the undo.
    pub(super) async fn rollback_watch(&self) -> Option<Watch> {
        let node = self.client.node().await.ok()?;
        match self.hybrid_watch(&node, &[]).await {
            Ok(watch) => watch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the data planes; the rollback will not wait for them");
                None
            }
        }
    }

    /// After an automatic rollback's undo writes: waits as [`Self::settle_restore`] does,
    /// unless the run was interrupted (Ctrl-C asks to stop, not to wait).
    pub(super) async fn settle_rollback(
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
        let watch = self.hybrid_watch(&node, &[]).await?;
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
