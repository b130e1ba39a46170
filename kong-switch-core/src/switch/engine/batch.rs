//! Batch switches: every service carrying a tag, all-or-nothing (design §3).
//!
//! Every service is read and gated before anything is written; a refusal of one refuses
//! the batch. The plans are applied at most `parallelism` services at once (on a DB-less
//! node, as one `POST /config` for the whole batch); any failure restores every service.
//! What the batch keeps per service is its plan and one short report line: gates are
//! tallied, and the intent is written in parts, so memory and log events stay small.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use uuid::Uuid;

use crate::admin::{ListParams, TagFilter};
use crate::model::Mode;
use crate::state::{DeploymentStatus, Event, EventKind, IntentPart, StateLog};

use super::super::apply::{self, Stopped};
use super::super::error::{Error, Result};
use super::super::gates::GateOutcome;
use super::super::intent::intent_of;
use super::super::plan::{
    Plan, RestoreItem, StagedChange, render_declarative_steps, restore_items,
};
use super::super::progress::ProgressEvent;
use super::super::report::{
    BatchReport, BatchService, Durations, GateTally, Outcome, ReadStats, RestoredTo, RollbackCause,
    RollbackReport,
};
use super::super::request::{SwitchRequest, SwitchTarget};
use super::super::snapshot::Prepared;
use super::converge::live_message;
use super::rollback::steps_to_undo;
use super::{Engine, moves_routes, ms};

/// Services per intent event. A Firestore document holds at most 1 MiB, and an event that
/// grew with the batch would make every append and recovery read grow with it too.
const INTENT_PART: usize = 100;

/// Services named for each failed gate of a refusal; the rest are counted.
const NAMED: usize = 3;

/// What applying one plan of the batch left behind (its step reports are not kept).
struct Done {
    /// Index into the applied plans.
    index: usize,
    /// Steps applied and read back.
    applied: usize,
    stopped: Option<Stopped>,
    /// Why its write was refused with nothing written, if it was (see `Applied::refused`).
    refused: Option<String>,
}

/// Distinct gate outcomes, counted.
#[derive(Default)]
struct Tally {
    index: HashMap<GateOutcome, usize>,
    tallies: Vec<GateTally>,
}

impl Tally {
    /// Counts `gate` as observed for `services` more services.
    fn add(&mut self, gate: &GateOutcome, services: usize) {
        match self.index.get(gate) {
            Some(&i) => self.tallies[i].services += services,
            None => {
                self.index.insert(gate.clone(), self.tallies.len());
                self.tallies.push(GateTally {
                    gate: gate.clone(),
                    services,
                });
            }
        }
    }
}

impl<L: StateLog> Engine<L> {
    /// Switches every service carrying the request's tags, all-or-nothing: every service is
    /// read and gated first (nothing is written if any is refused), then the plans are
    /// applied with at most `parallelism` services at once (a DB-less node gets one
    /// `POST /config` for all of them); on any failure every applied service is restored.
    pub async fn switch_batch(&self, req: &SwitchRequest) -> Result<BatchReport> {
        req.validate()?;
        let SwitchTarget::Tagged(tags) = &req.target else {
            return Err(Error::invalid(
                "target",
                "switch_batch needs a tag selection (tag:app=orders)",
            ));
        };
        let key = req.target.key();
        let run_id = Uuid::new_v4();
        if req.dry_run {
            return self.batch_locked(req, tags, &key, run_id).await;
        }
        let mut lease = self
            .take_lease(&key, &req.actor, req.lease_ttl, run_id)
            .await?;
        let run = self.leased_run(&lease);
        let result = lease.hold(run.batch_locked(req, tags, &key, run_id)).await;
        let lost = self.give_back(lease).await;
        result.map(|mut report| {
            if let Some(why) = lost {
                report.message = format!("lease lost ({why}); {}", report.message);
            }
            report
        })
    }

    async fn batch_locked(
        &self,
        req: &SwitchRequest,
        tags: &[String],
        key: &str,
        run_id: Uuid,
    ) -> Result<BatchReport> {
        let started = Instant::now();
        let parallelism = req.parallelism.max(1);
        let mut report = BatchReport {
            target: key.to_owned(),
            strategy: req.strategy.kind(),
            outcome: Outcome::NoOp,
            message: String::new(),
            parallelism,
            services: Vec::new(),
            gates: Vec::new(),
            writes: Vec::new(),
            rollback: None,
            verification: None,
            nodes: Vec::new(),
            hybrid: None,
            reads: ReadStats::default(),
            recovered: None,
            run_id: None,
            durations: Durations::default(),
        };
        if !req.dry_run {
            report.recovered = self.recover(key, &req.actor).await?;
        }

        // Read and plan every service. The listed bodies are what a per-service read would
        // return: plan from them.
        report.reads.round(1);
        let params = ListParams::default().with_tags(TagFilter::All(tags.to_vec()));
        let listed = self.client.services().list_all(&params).await?;
        if listed.is_empty() {
            // Most likely a mistyped tag: say so rather than "nothing to do".
            return Err(Error::NotFound {
                kind: "service tagged",
                name: tags.join(","),
            });
        }
        let mut reader = self.reader(req);
        reader.batch = true;
        let reader = &reader;

        // Plan and gate each service as its reads come back. What is kept per service is its
        // plan and its report line; gate outcomes are tallied, not kept.
        let mut tally = Tally::default();
        let mut ready: Vec<Prepared> = Vec::with_capacity(listed.len());
        report.services.reserve_exact(listed.len());
        let mut planning = futures::stream::iter(listed)
            .map(|service| async move {
                let target = service.key().to_owned();
                let prepared = reader.prepare_listed(service, &target).await;
                self.progress.event(ProgressEvent::Service {
                    name: target,
                    state: "planned".into(),
                });
                prepared
            })
            .buffer_unordered(parallelism);
        while let Some(prepared) = planning.next().await {
            let mut p = prepared?;
            report.reads.merge(p.reads);
            let gates = std::mem::take(&mut p.gates);
            gates.iter().for_each(|g| tally.add(g, 1));
            let failed: Vec<GateOutcome> = gates.iter().filter(|g| !g.passed).cloned().collect();
            report.services.push(BatchService {
                target: p.plan.target.clone(),
                from: p.plan.from.clone(),
                to: p.plan.to.clone(),
                outcome: match (failed.is_empty(), p.plan.is_noop()) {
                    (false, _) => Outcome::Refused,
                    (true, true) => Outcome::NoOp,
                    (true, false) => Outcome::DryRun,
                },
                failed_gates: failed,
            });
            ready.push(p);
        }
        drop(planning);
        ready.sort_by(|a, b| a.plan.target.cmp(&b.plan.target));
        report.services.sort_by(|a, b| a.target.cmp(&b.target));

        // The probes are the batch's own gates: once, counted for every service that changes.
        let changes = ready.iter().filter(|p| !p.plan.is_noop()).count();
        if changes > 0 {
            let probes = reader.probe_gates().await;
            probes.iter().for_each(|g| tally.add(g, changes));
            let failed: Vec<&GateOutcome> = probes.iter().filter(|g| !g.passed).collect();
            if !failed.is_empty() {
                for (s, p) in report.services.iter_mut().zip(&ready) {
                    if !p.plan.is_noop() {
                        s.failed_gates.extend(failed.iter().map(|g| (*g).clone()));
                        s.outcome = Outcome::Refused;
                    }
                }
            }
        }
        report.durations.read_ms = ms(started.elapsed());
        report.gates = tally.tallies;
        let refused = report
            .services
            .iter()
            .filter(|s| s.outcome == Outcome::Refused)
            .count();
        if refused > 0 {
            let reason = refusal_summary(&report.services);
            if !req.dry_run {
                self.log
                    .append(
                        req.attributes.stamp(
                            Event::new(key, EventKind::Refused)
                                .with_actor(req.actor.clone())
                                .with_strategy(req.strategy.kind().as_str())
                                .with_reason(reason.clone()),
                        ),
                    )
                    .await?;
            }
            report.outcome = Outcome::Refused;
            report.message = format!(
                "nothing changed in Kong: {refused} of {} service(s) failed their gates: {reason}",
                report.services.len()
            );
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        }
        let active: Vec<Prepared> = ready.into_iter().filter(|p| !p.plan.is_noop()).collect();
        let Some(first) = active.first() else {
            report.message = format!(
                "all {} service(s) tagged {} already on the requested side; nothing to do",
                report.services.len(),
                tags.join(",")
            );
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        };
        let node = first.node.clone();

        // A DB-less node takes the whole batch as one `POST /config`: one edit of the
        // configuration for every service, atomic.
        let plans: Vec<Plan> = if node.mode == Mode::DbLess {
            let changes: Vec<StagedChange> = active
                .iter()
                .flat_map(|p| p.changes.iter().cloned())
                .collect();
            let mut combined = Plan::noop(first.plan.strategy, key, first.plan.from.clone());
            combined.to = first.plan.to.clone();
            combined.stages = first.plan.stages.clone();
            combined.declarative = true;
            combined.steps = render_declarative_steps(&changes);
            vec![combined]
        } else {
            active.into_iter().map(|p| p.plan).collect()
        };
        let (from, to) = (plans[0].from.clone(), plans[0].to.clone());
        let changing = report
            .services
            .iter()
            .filter(|s| s.outcome == Outcome::DryRun)
            .count();

        if req.dry_run {
            report.writes = plans.iter().flat_map(Plan::writes).collect();
            report.outcome = Outcome::DryRun;
            report.message = format!(
                "{} write(s) over {changing} service(s) would be made; nothing was written",
                report.writes.len(),
            );
            report.durations.total_ms = ms(started.elapsed());
            return Ok(report);
        }

        // Hybrid mode: the data planes' state before anything is logged or written.
        let watch = self.hybrid_watch(&node, &req.gates.data_planes).await?;

        // Intend, in parts, all before the first write.
        report.run_id = Some(run_id);
        let base = req.attributes.stamp(
            Event::new(key, EventKind::Intent)
                .with_run_id(run_id)
                .with_actor(req.actor.clone())
                .with_strategy(req.strategy.kind().as_str())
                .with_sides(from.color.clone(), to.color.clone()),
        );
        let parts = plans.len().div_ceil(INTENT_PART);
        for (i, chunk) in plans.chunks(INTENT_PART).enumerate() {
            let intent = intent_of(
                req.strategy.kind().as_str(),
                &from.color,
                &to.color,
                chunk,
                (parts > 1).then_some(IntentPart {
                    index: i + 1,
                    of: parts,
                }),
            );
            self.log.append(base.clone().with_intent(intent)).await?;
        }

        // Apply.
        let apply_started = Instant::now();
        let mut done = Vec::with_capacity(plans.len());
        let mut applying = futures::stream::iter(plans.iter().enumerate())
            .map(|(index, plan)| async move {
                let applied = apply::apply_plan(
                    &self.writer(&req.actor),
                    plan,
                    &self.cancel,
                    self.progress.as_ref(),
                    |_, _| async { None },
                )
                .await;
                self.progress.event(ProgressEvent::Service {
                    name: plan.target.clone(),
                    state: if applied.stopped.is_none() {
                        "applied"
                    } else {
                        "failed"
                    }
                    .into(),
                });
                (index, applied)
            })
            .buffer_unordered(parallelism);
        while let Some((index, applied)) = applying.next().await {
            report.writes.extend(applied.writes);
            done.push(Done {
                index,
                applied: applied.applied,
                stopped: applied.stopped,
                refused: applied.refused,
            });
        }
        drop(applying);
        let written_at = Instant::now();
        report.durations.apply_ms = ms(apply_started.elapsed());
        let write_failure = done
            .iter()
            .find_map(|d| d.stopped.clone().map(|s| (Some(d.index), s)));

        // Verify.
        let stop = match write_failure {
            Some(failure) => Some(failure),
            None => {
                let verify_started = Instant::now();
                let router = plans.iter().any(moves_routes);
                let v = self
                    .converge_and_verify(
                        req,
                        &node,
                        router,
                        watch.map(|w| (w.with_writes(report.writes.len()), written_at)),
                    )
                    .await;
                report.durations.verify_ms = ms(verify_started.elapsed());
                let stop = v.stop(0);
                report.nodes = v.nodes;
                report.hybrid = v.hybrid;
                report.verification = v.verification;
                stop.map(|s| (None, s))
            }
        };

        // Record.
        let switched = |services: &mut [BatchService], outcome: Outcome| {
            for s in services.iter_mut().filter(|s| s.outcome == Outcome::DryRun) {
                s.outcome = outcome;
            }
        };
        match stop {
            None => {
                self.record_completed(&base, &plans[0])
                    .await
                    .map_err(|source| Error::Unrecorded {
                        target: key.to_owned(),
                        kong: format!("{changing} service(s) route to {}", to.color),
                        source: Box::new(source),
                    })?;
                switched(&mut report.services, Outcome::Completed);
                report.outcome = Outcome::Completed;
                report.message = format!(
                    "{changing} service(s) switched from {} to {} ({} write(s){}){}",
                    from.color,
                    to.color,
                    report.writes.len(),
                    if report.verification.is_some() {
                        ", verified"
                    } else {
                        ""
                    },
                    report.hybrid.as_ref().map(live_message).unwrap_or_default()
                );
            }
            Some((_, stopped))
                if stopped.cause == RollbackCause::VerificationFailed && req.no_rollback =>
            {
                self.record_unverified(&base, &to.color, &stopped.reason)
                    .await?;
                switched(&mut report.services, Outcome::Completed);
                report.outcome = Outcome::VerificationFailed;
                report.message = format!(
                    "{changing} service(s) now on {} but verification failed (rollback disabled): {}",
                    to.color, stopped.reason
                );
            }
            Some((failed_index, stopped)) => {
                let groups: Vec<Vec<RestoreItem>> = done
                    .iter()
                    .map(|d| {
                        let plan = &plans[d.index];
                        let upto = steps_to_undo(plan, d.applied, d.stopped.as_ref());
                        restore_items(&plan.steps[..upto])
                    })
                    .collect();
                let who = failed_index.map(|i| plans[i].target.clone());
                let reason = match &who {
                    Some(s) => format!("{s}: {}", stopped.reason),
                    None => stopped.reason.clone(),
                };
                let watch = self.rollback_watch().await;
                let mut restored = self
                    .undo_or_inconsistent(
                        &req.actor,
                        key,
                        &reason,
                        &groups,
                        parallelism,
                        &mut report.writes,
                    )
                    .await?;
                let uncertain: Vec<Vec<RestoreItem>> = done
                    .iter()
                    .zip(&groups)
                    .filter(|(d, _)| d.stopped.as_ref().is_some_and(|s| s.uncertain))
                    .map(|(_, g)| g.clone())
                    .collect();
                if !uncertain.is_empty() {
                    restored.extend(
                        self.fence_or_inconsistent(key, &reason, &uncertain, req)
                            .await?,
                    );
                }
                let (nodes, hybrid) = self
                    .settle_rollback(
                        watch,
                        Instant::now(),
                        plans.iter().any(moves_routes),
                        restored.len(),
                    )
                    .await;
                self.log
                    .append(
                        base.next(EventKind::RolledBack)
                            .with_status(DeploymentStatus::RolledBack)
                            .with_reason(reason.clone()),
                    )
                    .await
                    .map_err(|source| Error::Unrecorded {
                        target: key.to_owned(),
                        kong: format!(
                            "{reason}; every service of the batch is back on its old side"
                        ),
                        source: Box::new(source),
                    })?;
                switched(&mut report.services, Outcome::RolledBack);
                report.outcome = if stopped.cause == RollbackCause::Interrupted {
                    Outcome::Interrupted
                } else {
                    Outcome::RolledBack
                };
                report.message =
                    format!("{reason}; every service of the batch is back on its old side");
                if let Some(refused) = done.iter().find_map(|d| d.refused.clone()) {
                    return Err(Error::ConfigChanged {
                        target: key.to_owned(),
                        message: format!("{refused}; {}", report.message),
                    });
                }
                report.rollback = Some(RollbackReport {
                    cause: stopped.cause,
                    reason,
                    stopped_at: who,
                    restored: RestoredTo::Start,
                    writes: restored,
                    nodes,
                    hybrid,
                });
            }
        }
        report.durations.total_ms = ms(started.elapsed());
        Ok(report)
    }
}

/// Each distinct failed gate once, with the services that failed it:
/// `min_healthy: observed 0 of 1 HEALTHY, required >= 100% HEALTHY (a, b, c and 997 more)`.
fn refusal_summary(services: &[BatchService]) -> String {
    let mut index: HashMap<&GateOutcome, usize> = HashMap::new();
    let mut groups: Vec<(&GateOutcome, Vec<&str>)> = Vec::new();
    for s in services {
        for gate in &s.failed_gates {
            let i = *index.entry(gate).or_insert_with(|| {
                groups.push((gate, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(&s.target);
        }
    }
    groups
        .iter()
        .map(|(gate, names)| {
            let mut who = names
                .iter()
                .take(NAMED)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            if names.len() > NAMED {
                who.push_str(&format!(" and {} more", names.len() - NAMED));
            }
            format!(
                "{}: observed {}, required {} ({who})",
                gate.name, gate.observed, gate.required
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::Side;

    fn service(name: &str, failed: &[GateOutcome]) -> BatchService {
        BatchService {
            target: name.to_owned(),
            from: Side::new("blue", "u-blue"),
            to: Side::new("green", "u-green"),
            outcome: Outcome::Refused,
            failed_gates: failed.to_vec(),
        }
    }

    #[test]
    fn a_refusal_names_each_failed_gate_once_with_a_few_services_and_a_count() {
        let down = GateOutcome::new("min_healthy", false, "0 of 1 HEALTHY", ">= 100% HEALTHY");
        let missing = GateOutcome::new("green_exists", false, "no upstream x", "upstream x");
        let services: Vec<BatchService> = (0..1000)
            .map(|i| service(&format!("s{i:04}"), std::slice::from_ref(&down)))
            .chain([service("z", std::slice::from_ref(&missing))])
            .collect();

        let text = refusal_summary(&services);

        assert_eq!(
            text,
            "min_healthy: observed 0 of 1 HEALTHY, required >= 100% HEALTHY (s0000, s0001, s0002 and 997 more) \
             | green_exists: observed no upstream x, required upstream x (z)"
        );
    }

    #[test]
    fn equal_gate_outcomes_are_tallied_once() {
        let up = GateOutcome::new("min_healthy", true, "1 of 1 HEALTHY", ">= 100% HEALTHY");
        let other = GateOutcome::new("min_targets", true, "1", ">= 1");
        let mut tally = Tally::default();
        for _ in 0..3 {
            tally.add(&up, 1);
        }
        tally.add(&other, 3);
        let counts: Vec<(&str, usize)> = tally
            .tallies
            .iter()
            .map(|t| (t.gate.name.as_str(), t.services))
            .collect();
        assert_eq!(counts, vec![("min_healthy", 3), ("min_targets", 3)]);
    }
}
