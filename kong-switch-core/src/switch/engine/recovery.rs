//! Recovery and drift: what the log's last run says compared with what Kong shows. A
//! dangling intent (a crashed run) is recovered before the next run; `drift` reads the same
//! values for `status` and changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::state::{DeploymentStatus, Event, EventKind, IntentRecord, StateLog, Step as LogStep};

use super::super::apply::{read_value, same_value};
use super::super::error::{Error, Result};
use super::super::intent::{self, Unreadable};
use super::super::plan::{Check, Plan};
use super::super::report::Recovery;
use super::{Engine, RUN_KINDS};

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
fn merged_checks(steps: &[super::super::plan::Step]) -> Vec<Check> {
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

impl<L: StateLog> Engine<L> {
    /// Resolves a dangling intent of `key` (a previous run crashed): Kong fully after → the
    /// switch is recorded as completed; fully before → recorded as rolled back; in between
    /// → the start is restored (only values that differ are written) and recorded.
    pub(super) async fn recover(&self, key: &str, actor: &str) -> Result<Option<Recovery>> {
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

    /// The plans of the run whose intent is `intent_event`, or why they cannot be read
    /// ([`Error::UnreadableIntent`]). Only a batch's intent, written in parts, needs the
    /// history read to gather them.
    pub(super) async fn plans_of_run(
        &self,
        target: &str,
        intent_event: &Event,
    ) -> Result<Vec<Plan>> {
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

fn compared(check: &Check, expected: Value, kong: Value) -> ComparedValue {
    ComparedValue {
        read: check.read.to_string(),
        pointer: check.pointer.clone(),
        expected,
        kong,
    }
}
