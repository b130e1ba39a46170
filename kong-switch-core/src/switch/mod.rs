//! The switch engine: moves traffic from the active side to the other one, health-gated,
//! atomic where Kong allows it, reversible, and recorded (design §2–§3).
//!
//! The engine reads a snapshot of Kong concurrently, computes a [`Plan`] (ordered writes,
//! each with its precomputed undo and read-back check) without I/O, gates it, records the
//! intent in the state log, applies it with read-back, waits until every node serves the
//! new side and verifies through the proxy, and records the outcome. Any failure after the
//! first write runs the undo in reverse (Kong is read first: only values that differ are
//! written). A dry run is the plan, printed.
//!
//! | strategy | writes |
//! |---|---|
//! | `upstream` | `PATCH /services/{s}` `{"host": "<green upstream>"}` |
//! | `route` | `PATCH /routes/{r}` `{"service": {"id": …}}` per route |
//! | `weights` | `PATCH /upstreams/{u}/targets/{id}` `{"weight": …}` per target and step, raising before lowering |
//! | DB-less node | one `POST /config` per stage with the edited declarative config |
//!
//! Entry points: [`Engine::plan`], [`Engine::switch`], [`Engine::switch_batch`],
//! [`Engine::rollback`], [`Engine::drift`]. The engine returns typed outcomes and errors
//! only; which exit code each means is the CLI's table.

mod apply;
mod dbless;
mod engine;
mod error;
pub mod gates;
mod hybrid;
mod input;
mod intent;
mod plan;
mod progress;
mod report;
mod request;
mod snapshot;
pub mod verify;

pub use engine::{ComparedValue, Drift, DriftState, Engine, KongState};
pub use error::{Error, Result};
pub use gates::GateOutcome;
pub use hybrid::{DEFAULT_DISCONNECTED_AFTER, PROXY_LAG_ALLOWANCE};
pub use input::{
    DurationRange, MAX_DURATION, MAX_PARALLELISM, MAX_PROBE_COUNT, MAX_VERIFY_COUNT, check_count,
    check_fraction, check_http_url, check_label, check_suffix, check_suffix_pair, check_tag,
    check_tag_key, parse_duration,
};
pub use plan::{Change, Check, Plan, RestoreItem, Side, Stage, Step, inverse, restore_items};
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use report::{
    BatchReport, BatchService, ConvergenceMethod, DataPlaneReport, Durations, GateTally,
    HybridReport, NodeConvergence, Outcome, ReadStats, Recovery, RestoredTo, RollbackCause,
    RollbackReport, StepReport, StepStatus, SwitchReport,
};
pub use request::{
    DEFAULT_PARALLELISM, DEFAULT_UNKNOWN_WRITE_WINDOW, DeploymentAttributes, ExtraNode, GateConfig,
    HeaderMatch, LatencyBound, OnFailure, Probe, Schedule, Sides, Strategy, StrategyKind,
    SwitchRequest, SwitchTarget, VerifyAmount, VerifyConfig, WeightsOptions,
};
pub use verify::VerificationReport;
