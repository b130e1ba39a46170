//! The state-log side of a command run: who, for which target, under one run id.

use std::time::Duration;

use kong_switch_core::state::{
    Color, DeploymentStatus, Event, EventKind, LeaseHolder, LeaseKeeper, LeasePolicy, LeaseRequest,
    StateLog,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::Result;

/// Who runs a command, for which switch target, and the attributes every event of the run
/// carries.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The switch target key in the state log (usually the Kong service name).
    pub target: String,
    /// Who runs it, e.g. `alice@host (pid 4242)`.
    pub actor: String,
    /// The environment, e.g. `production`.
    pub environment: Option<String>,
    /// The CI build id.
    pub build_id: Option<String>,
    /// The Kong service involved.
    pub service: Option<String>,
}

/// Records the events of one run.
pub(crate) struct Recorder<'a, L> {
    log: &'a L,
    base: Event,
}

impl<'a, L: StateLog> Recorder<'a, L> {
    pub(crate) fn new(log: &'a L, context: &RunContext) -> Self {
        let mut base = Event::new(&context.target, EventKind::Status)
            .with_run_id(Uuid::new_v4())
            .with_actor(&context.actor);
        if let Some(environment) = &context.environment {
            base = base.with_environment(environment);
        }
        if let Some(build_id) = &context.build_id {
            base = base.with_build_id(build_id);
        }
        if let Some(service) = &context.service {
            base = base.with_service(service);
        }
        Recorder { log, base }
    }

    /// Takes the lease on the target for at most `ttl`, renewed while the command runs
    /// (see [`LeaseKeeper::hold`]) with the default renewal interval and expiry, so a killed
    /// command's lease lapses soon after; a takeover of a lapsed lease is recorded.
    pub(crate) async fn lease(&self, ttl: Duration) -> Result<LeaseKeeper<'a, L>> {
        let mut holder = LeaseHolder::new(self.base.actor.clone().unwrap_or_default());
        if let Some(run) = self.base.run_id {
            holder = holder.with_run_id(run);
        }
        let policy = LeasePolicy::default();
        let request = LeaseRequest::new(&self.base.target, holder, ttl)
            .renewed(policy.renew_every, policy.expiry);
        Ok(LeaseKeeper::acquire(self.log, request, false, &CancellationToken::new()).await?)
    }

    /// A status event about `color`'s `deployment`, with the run's context.
    pub(crate) fn event(
        &self,
        kind: EventKind,
        color: &Color,
        status: DeploymentStatus,
        deployment: &str,
    ) -> Event {
        self.base
            .next(kind)
            .with_color(color.clone())
            .with_status(status)
            .with_deployment(deployment)
    }

    /// Appends `event`.
    pub(crate) async fn append(&self, event: Event) -> Result<Event> {
        Ok(self.log.append(event).await?)
    }
}
