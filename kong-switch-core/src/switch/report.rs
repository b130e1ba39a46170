//! What a run did: [`SwitchReport`] and [`BatchReport`].
//!
//! These types are the CLI's `--output json`: field names and enum spellings are stable.
//! Durations are whole milliseconds (`*_ms`). Optional fields are left out when unset.
//! Writes are `{"method", "path", "query"?, "body"?}`; a DB-less `POST /config` is
//! `{"method", "path", "summary"}`: what it changes, never a whole configuration.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::admin::{AdminRequest, brief};

use super::gates::GateOutcome;
use super::plan::{Plan, Side};
use super::request::StrategyKind;
use super::verify::VerificationReport;

/// How a run ended. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `completed`: the new side serves the traffic (verified when asked).
    Completed,
    /// `no_op`: the target already was on the requested side; nothing was written.
    NoOp,
    /// `dry_run`: the plan was computed and the gates passed; nothing was written.
    DryRun,
    /// `refused`: a gate refused the switch; nothing was written.
    Refused,
    /// `rolled_back`: a write, read-back or verification failed and the undo ran (for
    /// `weights` with `keep-last-good`: traffic stays at the last good step).
    RolledBack,
    /// `verification_failed`: verification failed and rollback was disabled; the new side
    /// stays.
    VerificationFailed,
    /// `interrupted`: cancelled (Ctrl-C); the documented rollback path was taken.
    Interrupted,
}

/// What happened to one planned step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Planned, not sent (dry run, refusal, or stopped before it).
    Planned,
    /// Sent and read back as expected.
    Applied,
    /// Sent and failed (Kong error or read-back mismatch).
    Failed,
    /// Applied, then undone by the rollback.
    Undone,
}

/// One step of the plan and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// 1-based position in the plan.
    pub index: usize,
    /// Stage (index into the plan's stages).
    pub stage: usize,
    /// What the step does.
    pub description: String,
    /// The write (a DB-less `POST /config` by its summary, without the configuration).
    #[serde(serialize_with = "brief::one")]
    pub request: AdminRequest,
    /// What became of it.
    pub status: StepStatus,
    /// The error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepReport {
    /// The report of every step of `plan`, all still `planned`.
    pub(crate) fn planned(plan: &Plan) -> Vec<StepReport> {
        plan.steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepReport {
                index: i + 1,
                stage: s.stage,
                description: s.description.clone(),
                request: s.request.clone(),
                status: StepStatus::Planned,
                error: None,
            })
            .collect()
    }
}

/// Why a rollback ran. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackCause {
    /// A write failed.
    WriteFailed,
    /// A write succeeded but Kong did not read back the value written.
    ReadbackMismatch,
    /// Verification through the proxy failed.
    VerificationFailed,
    /// The run was cancelled.
    Interrupted,
    /// Asked for (`kong-switch rollback`).
    Requested,
    /// A previous run stopped mid-switch; this run restored its start.
    Recovery,
}

/// Where a rollback left traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "at")]
pub enum RestoredTo {
    /// Everything as before the switch.
    Start,
    /// `weights` with `keep-last-good`: the last fully applied step.
    LastGoodStep {
        /// Stage index.
        stage: usize,
        /// The new side's share there.
        percent: Option<u8>,
    },
}

/// The rollback of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// Why.
    pub cause: RollbackCause,
    /// The failure, in words.
    pub reason: String,
    /// The step the forward run stopped at (its description), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// Where traffic was left.
    pub restored: RestoredTo,
    /// The undo writes sent, in order (only those whose value differed in Kong).
    #[serde(serialize_with = "brief::many")]
    pub writes: Vec<AdminRequest>,
    /// How Kong was waited for after the undo writes (the router delay, or the data planes
    /// in hybrid mode); empty when nothing was written back or the run was interrupted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeConvergence>,
    /// Hybrid mode: the data planes' convergence on the restored configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<HybridReport>,
}

/// How a node was found to serve the new side. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvergenceMethod {
    /// Answers through the node's proxy carried the expected header.
    Proxy,
    /// The node's propagation delay (from its `GET /`) was waited out.
    Waited,
    /// Nothing to wait for (e.g. target weights on the written node apply at once).
    Immediate,
    /// Hybrid mode: the data plane reported the new config hash to the control plane.
    ConfigHash,
}

/// Whether one node serves the new side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConvergence {
    /// Node label (`primary` for the written node).
    pub node: String,
    /// How it was established.
    pub method: ConvergenceMethod,
    /// Whether it converged.
    pub converged: bool,
    /// After how long (from the last write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged_after_ms: Option<u64>,
    /// Details, e.g. `waited db_update_frequency 5 s + router 5 s`.
    pub detail: String,
}

/// Hybrid mode: how the data planes took the change (kong-admin-api.md §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HybridReport {
    /// The control plane's push window (`db_update_frequency`).
    pub db_update_frequency_ms: u64,
    /// Whether every connected data plane serves the change.
    pub live: bool,
    /// From the last write until the switch was found live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_after_ms: Option<u64>,
    /// The config hash every connected data plane reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// The longest time a data plane spent on an intermediate configuration (several writes
    /// reaching it in different pushes, e.g. green raised before blue was lowered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_traffic_ms: Option<u64>,
    /// Data planes not seen for longer than the disconnect timeout: named, not waited for.
    pub disconnected: Vec<String>,
    /// Every data plane the control plane lists.
    pub data_planes: Vec<DataPlaneReport>,
    /// The Status APIs checked against the common hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_checks: Vec<String>,
}

/// One data plane in a [`HybridReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPlaneReport {
    /// Its id on the control plane.
    pub id: String,
    /// Its hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Whether its `last_seen` is recent enough.
    pub connected: bool,
    /// Its config hash before the first write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash_before: Option<String>,
    /// Its config hash now.
    pub config_hash: String,
    /// Its `last_seen` (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
    /// Whether it reports the new configuration.
    pub converged: bool,
    /// When its row first showed the final hash, from the last write (0 when it already did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged_after_ms: Option<u64>,
    /// From its first new hash to its final hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_traffic_ms: Option<u64>,
}

/// Admin API reads of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadStats {
    /// Read requests issued.
    pub requests: u32,
    /// The most read requests issued at once.
    pub concurrent: u32,
}

impl ReadStats {
    /// Records a round of `n` reads issued concurrently.
    pub(crate) fn round(&mut self, n: u32) {
        self.requests += n;
        self.concurrent = self.concurrent.max(n);
    }

    pub(crate) fn merge(&mut self, other: ReadStats) {
        self.requests += other.requests;
        self.concurrent = self.concurrent.max(other.concurrent);
    }
}

/// Time spent per phase, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    /// The whole run.
    pub total_ms: u64,
    /// Reading Kong.
    pub read_ms: u64,
    /// Evaluating gates (incl. probes).
    pub gates_ms: u64,
    /// Writing (incl. read-back and bake times).
    pub apply_ms: u64,
    /// Convergence wait and verification.
    pub verify_ms: u64,
}

/// A dangling intent found and resolved at the start of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The run that left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    /// What Kong showed: `before`, `after` or `partial`.
    pub kong: String,
    /// What was done: `recorded as completed`, `recorded as rolled back`, `restored the start`.
    pub action: String,
    /// Writes made to restore consistency.
    #[serde(serialize_with = "brief::many")]
    pub writes: Vec<AdminRequest>,
}

/// The result of one switch run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchReport {
    /// Target key (service name or id).
    pub target: String,
    /// Strategy used.
    pub strategy: StrategyKind,
    /// The side traffic left (or was on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Side>,
    /// The side traffic was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Side>,
    /// How it ended.
    pub outcome: Outcome,
    /// One plain sentence saying what happened.
    pub message: String,
    /// Every gate, passed or not.
    pub gates: Vec<GateOutcome>,
    /// Writes sent in order (dry run: the writes that would be sent).
    #[serde(serialize_with = "brief::many")]
    pub writes: Vec<AdminRequest>,
    /// The planned undo, in order (what a rollback would send after the whole plan).
    #[serde(serialize_with = "brief::many")]
    pub undo: Vec<AdminRequest>,
    /// Every planned step and what became of it.
    pub steps: Vec<StepReport>,
    /// The rollback, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
    /// Verification through the proxy, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationReport>,
    /// Per node: whether it serves the new side.
    pub nodes: Vec<NodeConvergence>,
    /// Hybrid mode: the data planes' convergence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<HybridReport>,
    /// Admin API reads.
    pub reads: ReadStats,
    /// A previous run's dangling intent this run resolved first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovery>,
    /// Ties this run's log events together (absent for dry runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    /// Time per phase.
    pub durations: Durations,
}

/// The result of a batch switch (a tag selecting several services, all-or-nothing).
///
/// Its size grows with the number of services only by one short [`BatchService`] line each
/// and the writes sent: gates are tallied, not repeated per service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchReport {
    /// Target key, `tag:…`.
    pub target: String,
    /// Strategy used.
    pub strategy: StrategyKind,
    /// How the batch ended: `completed` only if every service switched.
    pub outcome: Outcome,
    /// One plain sentence.
    pub message: String,
    /// Services switched at once.
    pub parallelism: usize,
    /// Per service, sorted by name: its sides and how it ended.
    pub services: Vec<BatchService>,
    /// Every distinct gate outcome with the number of services it was observed for.
    pub gates: Vec<GateTally>,
    /// Every write sent, in the order the responses arrived (dry run: the writes that would
    /// be sent). A DB-less node gets one `POST /config` for the whole batch.
    #[serde(serialize_with = "brief::many")]
    pub writes: Vec<AdminRequest>,
    /// The rollback, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
    /// Verification through the proxy, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationReport>,
    /// Per node: whether it serves the new side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeConvergence>,
    /// Hybrid mode: the data planes' convergence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<HybridReport>,
    /// Admin API reads.
    pub reads: ReadStats,
    /// A previous run's dangling intent this run resolved first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovery>,
    /// Ties the batch's log events together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    /// Time per phase.
    pub durations: Durations,
}

/// One service of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchService {
    /// The service (name, or id when it has none).
    pub target: String,
    /// The side traffic left (or was on).
    pub from: Side,
    /// The side traffic was sent to.
    pub to: Side,
    /// How it ended.
    pub outcome: Outcome,
    /// The gates it failed, with what was observed (empty unless refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_gates: Vec<GateOutcome>,
}

/// One gate outcome and how many services of a batch it was observed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateTally {
    /// The outcome (name, passed, observed, required).
    #[serde(flatten)]
    pub gate: GateOutcome,
    /// Services it was observed for.
    pub services: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_serialize_in_snake_case() {
        assert_eq!(serde_json::to_value(Outcome::NoOp).unwrap(), "no_op");
        assert_eq!(
            serde_json::to_value(RestoredTo::LastGoodStep {
                stage: 1,
                percent: Some(25)
            })
            .unwrap(),
            serde_json::json!({"at": "last_good_step", "stage": 1, "percent": 25})
        );
    }
}
