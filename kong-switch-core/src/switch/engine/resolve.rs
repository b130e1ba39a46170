//! Closing an unfinished run by reading Kong: the way out when a run's intent cannot be read
//! (another kong-switch version wrote it, or the log was edited), so neither recovery nor
//! `rollback` may decide from it.
//!
//! The operator names the side they believe Kong is on; the engine reads Kong, plans a switch
//! there and accepts only if that plan is empty (Kong is fully on that side). It then records
//! a `resolved` event for the unfinished run holding a fresh plan of the run read from Kong,
//! so `status` and `rollback` have values to compare with again. Nothing is written to Kong.

use std::time::Instant;

use crate::state::{DeploymentStatus, EventKind, StateLog};

use super::super::error::{Error, Result};
use super::super::intent::intent_of_plan;
use super::super::plan::Plan;
use super::super::report::{Outcome, SwitchReport};
use super::super::request::SwitchRequest;
use super::{Engine, RUN_KINDS, base_report, ms};

impl<L: StateLog> Engine<L> {
    /// Records where Kong is for a target whose last run is unfinished (an intent without
    /// outcome, readable or not). `req.to` names the side the operator says Kong is on; the
    /// run is recorded as `resolved` there only when a read of Kong shows that side (the plan
    /// to it is empty). Writes nothing to Kong.
    ///
    /// Outcomes: [`Outcome::Completed`] (recorded), [`Outcome::Refused`] (Kong is not on that
    /// side; nothing recorded), [`Outcome::NoOp`] (no unfinished run).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] without a `to` side or with a tag selection,
    /// [`Error::Locked`] while another run holds the target, and read failures.
    pub async fn resolve(&self, req: &SwitchRequest) -> Result<SwitchReport> {
        req.validate()?;
        let service = Self::service_key(req)?;
        if req.to.is_none() {
            return Err(Error::invalid(
                "to",
                "say which side Kong is on (blue, green or the entity's name)",
            ));
        }
        let key = req.target.key();
        let mut lease = self
            .take_lease(&key, &req.actor, req.lease_ttl, uuid::Uuid::new_v4())
            .await?;
        let run = self.leased_run(&lease);
        let result = lease.hold(run.resolve_locked(req, &service, &key)).await;
        self.give_back(lease).await;
        result
    }

    async fn resolve_locked(
        &self,
        req: &SwitchRequest,
        service: &crate::model::NameOrId,
        key: &str,
    ) -> Result<SwitchReport> {
        let started = Instant::now();
        let reader = self.reader(req);
        let prepared = reader.prepare(service, key).await?;
        let mut report = base_report(key, &prepared);
        report.gates.clear();
        report.undo.clear();
        report.durations.read_ms = ms(started.elapsed());
        let last = self.log.last_of(key, &RUN_KINDS).await?;
        let Some(last) = last.filter(|e| e.kind == EventKind::Intent) else {
            report.outcome = Outcome::NoOp;
            report.message = format!("{key} has no unfinished run to resolve; nothing recorded");
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        };
        report.run_id = last.run_id;
        let found = &prepared.plan;
        if !found.is_noop() {
            report.outcome = Outcome::Refused;
            report.writes = found.writes();
            report.message = format!(
                "Kong is not on {}: {} write(s) would still be needed to get there ({}); nothing recorded",
                found.to.name,
                found.steps.len(),
                found
                    .steps
                    .iter()
                    .map(|s| s.description.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        }
        let side = found.to.clone();
        // The run as it reads from Kong now, from its `from` side to its `to` side, so that
        // `status` compares with it and `rollback` restores its `from` side.
        let run_to = last.to.clone();
        let run_from = last.from.clone();
        let (status, plan) = if run_from.as_deref() == Some(side.color.as_str()) {
            (
                DeploymentStatus::RolledBack,
                self.plan_towards(req, service, key, run_to.as_deref())
                    .await,
            )
        } else {
            (
                DeploymentStatus::Active,
                self.plan_towards(req, service, key, run_from.as_deref())
                    .await
                    .map(|p| p.inverted()),
            )
        };
        let unreadable = match self.plans_of_run(key, &last).await {
            Err(Error::UnreadableIntent { reason, .. }) => Some(reason),
            _ => None,
        };
        let mut event = last
            .next(EventKind::Resolved)
            .with_actor(req.actor.clone())
            .with_color(side.color.clone())
            .with_status(status)
            .with_reason(format!(
                "resolved by {}: Kong read on {} ({}){}",
                req.actor,
                side.color,
                side.name,
                unreadable
                    .map(|r| format!("; the run's intent could not be read: {r}"))
                    .unwrap_or_default()
            ));
        if let Some(plan) = &plan {
            let intent = intent_of_plan(plan);
            // Keep the run's sides on the event: the intent's are those of the plan read now.
            let (from, to) = (event.from.clone(), event.to.clone());
            event = event.with_intent(intent);
            event.from = from.or(event.from);
            event.to = to.or(event.to);
        }
        self.log.append(event).await?;
        report.outcome = Outcome::Completed;
        report.message = format!(
            "run {} of {key} recorded as resolved: Kong is on {} ({}){}",
            last.run_id
                .map_or_else(|| "?".to_owned(), |r| r.to_string()),
            side.color,
            side.name,
            if plan.is_some() {
                ""
            } else {
                "; the other side could not be read, so later comparisons have nothing to check"
            }
        );
        report.durations.total_ms = ms(started.elapsed());
        Ok(report)
    }

    /// The plan from where Kong is now to `side` (a color or name), if Kong can be read and
    /// the side exists; `None` otherwise.
    async fn plan_towards(
        &self,
        req: &SwitchRequest,
        service: &crate::model::NameOrId,
        key: &str,
        side: Option<&str>,
    ) -> Option<Plan> {
        let mut towards = req.clone();
        towards.to = Some(side?.to_owned());
        match self.reader(&towards).prepare(service, key).await {
            Ok(prepared) if !prepared.plan.is_noop() => Some(prepared.plan),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot plan towards the other side of the resolved run");
                None
            }
        }
    }
}
