//! `retire-blue`.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::apps::v1::Deployment;
use kong_switch_core::state::{Color, DeploymentStatus, EventKind, StateLog};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::cluster::Cluster;
use super::record::{Recorder, RunContext};
use super::rollout::Progress;
use crate::error::{Error, Result};

/// The annotation keeping blue's replica count when it is scaled to zero, so it can be
/// scaled back.
pub const RETIRED_REPLICAS_ANNOTATION: &str = "kong-switch/retired-replicas";

/// How blue is retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetireMode {
    /// Scale to zero replicas, keeping the Deployment (default): quick to bring back.
    #[default]
    ScaleToZero,
    /// Delete the Deployment.
    Delete,
}

/// What `retire-blue` should do.
#[derive(Debug, Clone)]
pub struct RetireBlue {
    /// The app: blue is found by `app=<app>,version=blue`.
    pub app: String,
    /// The blue Deployment by name, instead of by labels.
    pub blue: Option<String>,
    /// Scale to zero or delete.
    pub mode: RetireMode,
    /// How long green must have been active (per the state log) before blue is retired;
    /// the command waits out the rest.
    pub bake_time: Duration,
    /// Retire even if the state log does not show green active.
    pub force: bool,
}

impl RetireBlue {
    /// `retire-blue` for `app`: scale to zero after a 5-minute bake time.
    pub fn new(app: impl Into<String>) -> RetireBlue {
        RetireBlue {
            app: app.into(),
            blue: None,
            mode: RetireMode::ScaleToZero,
            bake_time: Duration::from_secs(300),
            force: false,
        }
    }
}

/// What `retire-blue` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetireReport {
    /// `namespace/name` of the blue Deployment.
    pub deployment: String,
    /// What was done.
    pub mode: RetireMode,
    /// Blue's replicas before.
    pub previous_replicas: i32,
    /// How long the command waited for the bake time.
    pub waited_ms: u64,
}

/// Runs `retire-blue`: checks in the state log that green is active (the last switch of the
/// target completed to green, or green's last status is `active`), waits out the rest of
/// the bake time, scales blue to zero (recording the old replica count in an annotation)
/// or deletes it, and records `idle` for blue.
pub async fn retire_blue<L: StateLog>(
    cluster: &Cluster,
    log: &L,
    context: &RunContext,
    request: &RetireBlue,
    progress: &dyn Progress,
) -> Result<RetireReport> {
    let recorder = Recorder::new(log, context);
    let mut lease = recorder
        .lease(request.bake_time + Duration::from_secs(300))
        .await?;
    let result = lease
        .hold(retire(cluster, log, &recorder, context, request, progress))
        .await;
    let released = lease.release().await;
    let report = result?;
    released?;
    Ok(report)
}

async fn retire<L: StateLog>(
    cluster: &Cluster,
    log: &L,
    recorder: &Recorder<'_, L>,
    context: &RunContext,
    request: &RetireBlue,
    progress: &dyn Progress,
) -> Result<RetireReport> {
    progress.step("find the blue Deployment");
    let blue = cluster
        .blue_deployment(&request.app, request.blue.as_deref())
        .await?;
    let name = blue.metadata.name.clone().unwrap_or_default();
    let qualified = cluster.qualified(&name);
    let previous_replicas = blue.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);

    let history = log.history(&context.target).await?;
    let active_since = history
        .events
        .iter()
        .rev()
        .find_map(|e| {
            let to_green = e.kind == EventKind::Completed && e.to.as_deref() == Some("green");
            let green_active = e.status == Some(DeploymentStatus::Active)
                && e.color.as_ref() == Some(&Color::Green);
            let to_blue = e.kind == EventKind::Completed && e.to.as_deref() == Some("blue");
            if to_green || green_active {
                Some(Some(e.timestamp))
            } else if to_blue {
                Some(None)
            } else {
                None
            }
        })
        .flatten();
    let waited = match active_since {
        Some(since) => {
            let baked = (Utc::now() - since).to_std().unwrap_or_default();
            let rest = request.bake_time.saturating_sub(baked);
            if !rest.is_zero() {
                progress.step(&format!(
                    "bake: green has been active {}, waiting {} more",
                    humantime::format_duration(Duration::from_secs(baked.as_secs())),
                    humantime::format_duration(Duration::from_secs(rest.as_secs().max(1)))
                ));
                tokio::time::sleep(rest).await;
            }
            rest
        }
        None if request.force => Duration::ZERO,
        None => {
            return Err(Error::Refused(format!(
                "the state log does not show green active for {:?}: switch to green first (or pass --force); blue Deployment {qualified} left unchanged",
                context.target
            )));
        }
    };

    let api: Api<Deployment> = cluster.api();
    match request.mode {
        RetireMode::ScaleToZero => {
            progress.step(&format!("scale Deployment {qualified} to 0"));
            let patch = json!({
                "metadata": {"annotations": {RETIRED_REPLICAS_ANNOTATION: previous_replicas.to_string()}},
                "spec": {"replicas": 0}
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::kube(format!("scale Deployment {qualified} to 0")))?;
        }
        RetireMode::Delete => {
            progress.step(&format!("delete Deployment {qualified}"));
            api.delete(&name, &DeleteParams::default())
                .await
                .map_err(Error::kube(format!("delete Deployment {qualified}")))?;
        }
    }
    let mut event = recorder.event(
        EventKind::Status,
        &Color::Blue,
        DeploymentStatus::Idle,
        &name,
    );
    if let Some(version) = blue
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kong-switch/version"))
    {
        event = event.with_version(version);
    }
    let reason = match request.mode {
        RetireMode::ScaleToZero => format!("scaled to 0 (was {previous_replicas})"),
        RetireMode::Delete => format!("deleted (had {previous_replicas} replicas)"),
    };
    recorder.append(event.with_reason(reason)).await?;
    Ok(RetireReport {
        deployment: qualified,
        mode: request.mode,
        previous_replicas,
        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
    })
}
