//! Executing a plan: writes with read-back, bake times, and restores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, stream};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::admin::{AdminRequest, KongClient, Method};
use crate::state::StateLog;

use super::dbless::{WriteError, Writer};
use super::plan::{Change, Check, Plan, RestoreItem};
use super::progress::{Progress, ProgressEvent};
use super::report::{RollbackCause, StepReport, StepStatus};

/// Whether two JSON values are the same Kong value (numbers compared numerically).
pub(crate) fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < f64::EPSILON,
        _ => a == b,
    }
}

/// Reads the current value of a check; `None` if the entity is gone or the field missing.
pub(crate) async fn read_value(
    client: &KongClient,
    check: &Check,
) -> Result<Option<Value>, super::error::Error> {
    let entity: Option<Value> = client.execute_opt(&check.read).await?;
    Ok(entity.and_then(|e| e.pointer(&check.pointer).cloned()))
}

/// Why forward application stopped early.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stopped {
    /// Index of the step that failed, or of the next step not started (cancelled).
    pub step: usize,
    /// Why.
    pub cause: RollbackCause,
    /// In words.
    pub reason: String,
    /// The failed write may have been applied although no answer said so (timeout, lost
    /// connection, 5xx): Kong may still apply it after the run has moved on.
    pub uncertain: bool,
}

impl Stopped {
    /// A stop whose cause leaves no write in doubt.
    pub(crate) fn new(step: usize, cause: RollbackCause, reason: impl Into<String>) -> Stopped {
        Stopped {
            step,
            cause,
            reason: reason.into(),
            uncertain: false,
        }
    }
}

/// The result of applying (part of) a plan.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Steps applied and read back (a prefix of the plan).
    pub applied: usize,
    /// Stages fully applied (baked, except possibly the last).
    pub stages_done: usize,
    /// Writes sent, including a failed one.
    pub writes: Vec<AdminRequest>,
    /// Per step.
    pub steps: Vec<StepReport>,
    /// Set when the run stopped before the end of the plan.
    pub stopped: Option<Stopped>,
    /// Set when a write was refused and nothing of it written (a DB-less node's configuration
    /// changed while it was being edited, or its config lease stayed held): why.
    pub refused: Option<String>,
}

/// Why a write and its read-back did not succeed.
struct WriteFailure {
    cause: RollbackCause,
    reason: String,
    /// The write was refused: nothing of it was written.
    refused: bool,
    /// See [`Stopped::uncertain`].
    uncertain: bool,
}

impl WriteFailure {
    fn readback(reason: String) -> WriteFailure {
        WriteFailure {
            cause: RollbackCause::ReadbackMismatch,
            reason,
            refused: false,
            uncertain: false,
        }
    }
}

/// Sends one write (`edit`: a DB-less edit, see [`Writer::send`]) and reads its checks back.
async fn write_and_check<L: StateLog>(
    writer: &Writer<'_, L>,
    request: &AdminRequest,
    edit: &[Change],
    checks: &[Check],
    want_after: bool,
) -> Result<(), WriteFailure> {
    let client = writer.client;
    let answer = writer.send(request, edit).await.map_err(|e| WriteFailure {
        cause: RollbackCause::WriteFailed,
        reason: e.message().to_owned(),
        refused: matches!(e, WriteError::Refused(_)),
        uncertain: matches!(e, WriteError::Uncertain(_)),
    })?;
    for check in checks {
        let want = if want_after {
            &check.after
        } else {
            &check.before
        };
        // Kong answers a PATCH/PUT of an entity with the entity as stored after the write
        // (read back from the database): that answer is the read-back of a check on the
        // written entity, without a second request. Other checks are read with a GET.
        let same_entity = matches!(request.method, Method::Patch | Method::Put)
            && check.read.path == request.path
            && check.read.query.is_empty();
        let got = if same_entity && answer.is_object() {
            answer.pointer(&check.pointer).cloned()
        } else {
            read_value(client, check).await.map_err(|e| {
                WriteFailure::readback(format!("read-back {} failed: {e}", check.read))
            })?
        };
        if !got.as_ref().is_some_and(|g| same_value(g, want)) {
            return Err(WriteFailure::readback(format!(
                "read-back of {} {} shows {}, expected {want}",
                check.read.path,
                check.pointer,
                got.map_or_else(|| "nothing".to_owned(), |g| g.to_string())
            )));
        }
    }
    Ok(())
}

/// Sleeps unless cancelled; `false` when cancelled.
pub(crate) async fn wait(d: Duration, cancel: &CancellationToken) -> bool {
    if d.is_zero() {
        return !cancel.is_cancelled();
    }
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Applies the plan's steps in order, stage by stage, reading each back, waiting the bake
/// time after each stage but the last. Stops between steps when cancelled.
/// `watch_stage(stage, bake)` runs after each completed stage, during its bake (zero after
/// the last stage): it logs `weights` steps and may watch the proxy; a failure it returns
/// stops the plan there, as a failed verification.
pub(crate) async fn apply_plan<L, F, Fut>(
    writer: &Writer<'_, L>,
    plan: &Plan,
    cancel: &CancellationToken,
    progress: &dyn Progress,
    mut watch_stage: F,
) -> Applied
where
    L: StateLog,
    F: FnMut(usize, Duration) -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let mut out = Applied {
        steps: StepReport::planned(plan),
        ..Applied::default()
    };
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        if cancel.is_cancelled() {
            out.stopped = Some(Stopped::new(
                i,
                RollbackCause::Interrupted,
                format!("interrupted before step {} of {total}", i + 1),
            ));
            return out;
        }
        out.writes.push(step.request.clone());
        if let Err(failure) =
            write_and_check(writer, &step.request, &step.edit, &step.checks, true).await
        {
            if failure.refused {
                out.refused = Some(failure.reason.clone());
            }
            out.steps[i].status = StepStatus::Failed;
            out.steps[i].error = Some(failure.reason.clone());
            out.stopped = Some(Stopped {
                step: i,
                cause: failure.cause,
                reason: format!(
                    "step {} of {total} ({}) failed: {}",
                    i + 1,
                    step.description,
                    failure.reason
                ),
                uncertain: failure.uncertain,
            });
            return out;
        }
        out.applied = i + 1;
        out.steps[i].status = StepStatus::Applied;
        progress.event(ProgressEvent::StepApplied {
            index: i + 1,
            of: total,
            description: step.description.clone(),
        });
        let stage_complete = plan
            .steps
            .get(i + 1)
            .is_none_or(|next| next.stage != step.stage);
        if stage_complete {
            out.stages_done = step.stage + 1;
            let stage = plan.stages.get(step.stage);
            let bake = if i + 1 < total {
                stage.map(|s| s.bake).unwrap_or_default()
            } else {
                Duration::ZERO
            };
            if !bake.is_zero() {
                progress.event(ProgressEvent::Waiting {
                    what: format!(
                        "bake time after {}",
                        stage.map_or("the step", |s| s.label.as_str())
                    ),
                    up_to: bake,
                });
            }
            let (failure, baked) =
                futures::join!(watch_stage(step.stage, bake), wait(bake, cancel));
            if let Some(reason) = failure {
                out.stopped = Some(Stopped::new(
                    i + 1,
                    RollbackCause::VerificationFailed,
                    format!("after step {} of {total}: {reason}", i + 1),
                ));
                return out;
            }
            if !bake.is_zero() && !baked {
                out.stopped = Some(Stopped::new(
                    i + 1,
                    RollbackCause::Interrupted,
                    format!(
                        "interrupted during the bake time after step {} of {total}",
                        i + 1
                    ),
                ));
                return out;
            }
        }
    }
    out
}

/// A restore that could not finish.
#[derive(Debug)]
pub(crate) struct RestoreFailed {
    /// What failed.
    pub message: String,
    /// Writes sent before the failure.
    pub writes: Vec<AdminRequest>,
    /// Restore writes not applied.
    pub remaining: Vec<AdminRequest>,
}

/// Restores saved values. `groups` holds one list per service, restored in its order; up to
/// `parallelism` services are restored at once. For each item, reads Kong first and writes only
/// where it differs (Kong is the source of truth), then reads back. A failure stops its own
/// service only: the others are still restored, so as much as possible is back on the old side.
/// Returns the writes sent.
pub(crate) async fn restore<L: StateLog>(
    writer: &Writer<'_, L>,
    groups: &[Vec<RestoreItem>],
    parallelism: usize,
    progress: &dyn Progress,
) -> Result<Vec<AdminRequest>, RestoreFailed> {
    let total = groups.iter().map(Vec::len).sum();
    let started = AtomicUsize::new(0);
    let results: Vec<Result<Vec<AdminRequest>, RestoreFailed>> = stream::iter(groups)
        .map(|items| restore_group(writer, items, total, &started, progress))
        .buffered(parallelism.max(1))
        .collect()
        .await;
    let mut writes = Vec::new();
    let mut failures = Vec::new();
    let mut remaining = Vec::new();
    for result in results {
        match result {
            Ok(sent) => writes.extend(sent),
            Err(failed) => {
                writes.extend(failed.writes);
                remaining.extend(failed.remaining);
                failures.push(failed.message);
            }
        }
    }
    match failures.as_slice() {
        [] => Ok(writes),
        [first, rest @ ..] => Err(RestoreFailed {
            message: if rest.is_empty() {
                first.clone()
            } else {
                format!(
                    "{first} (and {} more service(s) could not be restored)",
                    rest.len()
                )
            },
            writes,
            remaining,
        }),
    }
}

/// Restores one service's items in order, stopping at the first failure.
async fn restore_group<L: StateLog>(
    writer: &Writer<'_, L>,
    items: &[RestoreItem],
    total: usize,
    started: &AtomicUsize,
    progress: &dyn Progress,
) -> Result<Vec<AdminRequest>, RestoreFailed> {
    let mut writes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut differs = false;
        for check in &item.checks {
            match read_value(writer.client, check).await {
                Ok(Some(v)) if same_value(&v, &check.before) => {}
                Ok(_) => differs = true,
                Err(e) => {
                    return Err(RestoreFailed {
                        message: format!(
                            "cannot read {} before restoring it: {e}",
                            check.read.path
                        ),
                        writes,
                        remaining: items[i..].iter().map(|r| r.request.clone()).collect(),
                    });
                }
            }
        }
        if !differs {
            continue;
        }
        progress.event(ProgressEvent::RollingBack {
            index: started.fetch_add(1, Ordering::Relaxed) + 1,
            of: total,
            description: item.request.to_string(),
        });
        writes.push(item.request.clone());
        if let Err(failure) =
            write_and_check(writer, &item.request, &item.edit, &item.checks, false).await
        {
            return Err(RestoreFailed {
                message: format!("restore write {} failed: {}", item.request, failure.reason),
                writes,
                remaining: items[i..].iter().map(|r| r.request.clone()).collect(),
            });
        }
    }
    Ok(writes)
}

/// How often [`fence`] reads Kong.
const FENCE_POLL: Duration = Duration::from_millis(200);

/// Restores this many times at most while fencing; more means something else keeps writing.
const FENCE_MAX_RESTORES: usize = 5;

/// After a restore that followed a write of unknown outcome: keeps reading the restored values
/// for `window`, restoring again whenever the lost write lands late and changes one back, and
/// succeeds only when a read after `window` shows every value restored. Returns the writes
/// sent. This is the proof a `rolled_back` record needs: one read right after a timeout shows
/// nothing about a write still on its way to Kong.
pub(crate) async fn fence<L: StateLog>(
    writer: &Writer<'_, L>,
    groups: &[Vec<RestoreItem>],
    window: Duration,
    progress: &dyn Progress,
) -> Result<Vec<AdminRequest>, RestoreFailed> {
    let deadline = tokio::time::Instant::now() + window;
    let mut writes = Vec::new();
    let mut restores = 0;
    loop {
        let now = tokio::time::Instant::now();
        let last = now >= deadline;
        if !last {
            tokio::time::sleep(FENCE_POLL.min(deadline - now)).await;
        }
        let sent = restore(writer, groups, 1, progress).await?;
        if !sent.is_empty() {
            restores += 1;
            writes.extend(sent);
            if restores > FENCE_MAX_RESTORES {
                return Err(RestoreFailed {
                    message: format!(
                        "Kong changed the restored values back {restores} times within {} ms: another writer is active",
                        window.as_millis()
                    ),
                    writes,
                    remaining: groups.iter().flatten().map(|i| i.request.clone()).collect(),
                });
            }
        } else if last {
            return Ok(writes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_numerically_and_other_values_exactly() {
        assert!(same_value(&json!(10), &json!(10.0)));
        assert!(!same_value(&json!(10), &json!(11)));
        assert!(same_value(&json!("orders-green"), &json!("orders-green")));
        assert!(!same_value(&json!("10"), &json!(10)));
    }
}
