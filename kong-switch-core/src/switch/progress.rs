//! Progress reporting for progress bars: the engine tells, the caller draws.

use std::time::Duration;

use super::gates::GateOutcome;

/// Something worth showing while a switch runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Reading Kong: `what` (e.g. `service orders, routes, upstreams`).
    Reading {
        /// What is being read.
        what: String,
    },
    /// One gate was evaluated.
    Gate(GateOutcome),
    /// Step `index` (1-based) of `of` was applied and read back.
    StepApplied {
        /// 1-based step number.
        index: usize,
        /// Number of steps.
        of: usize,
        /// The step's description.
        description: String,
    },
    /// Waiting for something, for at most `up_to`.
    Waiting {
        /// What is awaited, e.g. `bake time after 25%` or `node b to apply the change`.
        what: String,
        /// The longest the wait may take.
        up_to: Duration,
    },
    /// Verification request `done` of `of` (`None` for a duration-bound run).
    Verifying {
        /// Requests sent so far.
        done: u32,
        /// Requests planned, if counted.
        of: Option<u32>,
    },
    /// Undoing: step `index` (1-based) of `of` restore writes.
    RollingBack {
        /// 1-based restore write number.
        index: usize,
        /// Number of restore writes.
        of: usize,
        /// The write.
        description: String,
    },
    /// Batch: one service of the selection finished planning or applying.
    Service {
        /// The service.
        name: String,
        /// What happened (`planned`, `applied`, `undone`).
        state: String,
    },
}

/// Receives [`ProgressEvent`]s. Implementations must be cheap and must not block.
pub trait Progress: Send + Sync {
    /// Called for each event.
    fn event(&self, event: ProgressEvent);
}

/// Ignores every event: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: ProgressEvent) {}
}

impl<F> Progress for F
where
    F: Fn(ProgressEvent) + Send + Sync,
{
    fn event(&self, event: ProgressEvent) {
        self(event)
    }
}
