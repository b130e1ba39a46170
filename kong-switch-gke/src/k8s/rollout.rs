//! Waiting for a Deployment's rollout, and telling why it is stuck.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::error::{Error, Result};

/// Container waiting reasons that do not resolve by waiting.
const STUCK_REASONS: [&str; 7] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RolloutProgress {
    /// Replicas wanted.
    pub desired: i32,
    /// Replicas running the new template.
    pub updated: i32,
    /// Replicas ready.
    pub ready: i32,
    /// Replicas available.
    pub available: i32,
    /// Whether the controller has seen the latest spec (`observedGeneration`).
    pub observed: bool,
}

impl RolloutProgress {
    /// Reads the progress of `deployment`.
    pub fn of(deployment: &Deployment) -> RolloutProgress {
        let desired = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let status = deployment.status.clone().unwrap_or_default();
        RolloutProgress {
            desired,
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            observed: status.observed_generation.unwrap_or(0)
                >= deployment.metadata.generation.unwrap_or(0),
        }
    }

    /// Whether the rollout is complete: the latest spec observed, and every wanted replica
    /// updated, ready and available.
    pub fn is_complete(&self) -> bool {
        self.observed
            && self.updated >= self.desired
            && self.ready >= self.desired
            && self.available >= self.desired
    }
}

impl std::fmt::Display for RolloutProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} replicas updated, {} ready, {} available{}",
            self.updated,
            self.desired,
            self.ready,
            self.available,
            if self.observed {
                ""
            } else {
                " (new spec not yet observed)"
            }
        )
    }
}

/// Receives progress while a command waits.
pub trait Progress: Send + Sync {
    /// A step started, e.g. `create Deployment shop/orders-green`.
    fn step(&self, message: &str);
    /// The rollout moved.
    fn rollout(&self, deployment: &str, progress: &RolloutProgress);
}

/// A [`Progress`] that reports nothing.
impl Progress for () {
    fn step(&self, _: &str) {}
    fn rollout(&self, _: &str, _: &RolloutProgress) {}
}

/// Polls `name` until its rollout is complete, a pod is stuck (e.g. `ImagePullBackOff`),
/// the Deployment reports `ProgressDeadlineExceeded`, or `timeout` runs out.
pub(crate) async fn wait_for_rollout(
    deployments: &Api<Deployment>,
    pods: &Api<Pod>,
    qualified: &str,
    name: &str,
    timeout: Duration,
    poll: Duration,
    progress: &dyn Progress,
) -> Result<RolloutProgress> {
    let started = Instant::now();
    let mut last: Option<RolloutProgress> = None;
    loop {
        let deployment = deployments
            .get(name)
            .await
            .map_err(Error::kube(format!("get Deployment {qualified}")))?;
        let now = RolloutProgress::of(&deployment);
        if last != Some(now) {
            progress.rollout(qualified, &now);
            last = Some(now);
        }
        if now.is_complete() {
            return Ok(now);
        }
        if let Some(condition) = stuck_condition(&deployment) {
            return Err(Error::RolloutFailed {
                deployment: qualified.to_owned(),
                condition,
            });
        }
        let selector = deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(Error::kube(format!(
                "list the pods of Deployment {qualified}"
            )))?;
        if let Some(condition) = listed.items.iter().find_map(stuck_pod) {
            return Err(Error::RolloutFailed {
                deployment: qualified.to_owned(),
                condition,
            });
        }
        if started.elapsed() >= timeout {
            return Err(Error::RolloutTimeout {
                deployment: qualified.to_owned(),
                after: timeout,
                progress: now.to_string(),
            });
        }
        tokio::time::sleep(poll.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

/// `ProgressDeadlineExceeded` (or another `Progressing=False`) on the Deployment.
fn stuck_condition(deployment: &Deployment) -> Option<String> {
    let conditions = deployment.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "Progressing" && c.status == "False")
        .map(|c| {
            format!(
                "condition Progressing=False: {}{}",
                c.reason.as_deref().unwrap_or("no reason given"),
                c.message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        })
}

/// The first container of `pod` waiting for a reason that waiting will not fix.
fn stuck_pod(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in statuses {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        if STUCK_REASONS.contains(&reason) {
            return Some(format!(
                "pod {name} container {}: {reason}{}",
                container.name,
                waiting
                    .message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
    }
    if status.phase.as_deref() == Some("Failed") {
        return Some(format!(
            "pod {name} failed{}",
            status
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rollout_is_complete_only_when_observed_and_all_replicas_are_available() {
        let mut deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "orders-green", "generation": 2},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
        }))
        .expect("valid");
        assert!(!RolloutProgress::of(&deployment).is_complete());
        if let Some(status) = deployment.status.as_mut() {
            status.observed_generation = Some(2);
            status.available_replicas = Some(2);
        }
        let progress = RolloutProgress::of(&deployment);
        assert!(!progress.is_complete());
        assert_eq!(
            progress.to_string(),
            "3 of 3 replicas updated, 3 ready, 2 available"
        );
    }

    #[test]
    fn image_pull_back_off_is_named_with_pod_container_and_message() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "orders-green-0"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "orders", "image": "nope:1", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope:1\""}}
            }]}
        }))
        .expect("valid");
        assert_eq!(
            stuck_pod(&pod).as_deref(),
            Some(
                "pod orders-green-0 container orders: ImagePullBackOff (Back-off pulling image \"nope:1\")"
            )
        );
    }

    #[test]
    fn containers_still_creating_are_not_stuck() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "orders-green-0"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "orders", "image": "orders:2", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}
            }]}
        }))
        .expect("valid");
        assert_eq!(stuck_pod(&pod), None);
    }
}
