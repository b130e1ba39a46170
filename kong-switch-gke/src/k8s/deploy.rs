//! `deploy-green`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kong_switch_core::admin::KongClient;
use kong_switch_core::state::{Color, DeploymentStatus, EventKind, StateLog};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::clone::{GreenSpec, green_deployment, green_service};
use super::cluster::Cluster;
use super::record::{Recorder, RunContext};
use super::rollout::{Progress, RolloutProgress, wait_for_rollout};
use crate::error::{Error, Result};
use crate::kong::{UpstreamReport, ensure_green_upstream};

/// How often a write that met a `resourceVersion` conflict is retried.
const CONFLICT_RETRIES: usize = 5;

/// What `deploy-green` should do.
#[derive(Debug, Clone)]
pub struct DeployGreen {
    /// The app: blue is found by `app=<app>,version=blue`; green is `<app>-green`.
    pub app: String,
    /// The blue Deployment by name, instead of by labels.
    pub blue: Option<String>,
    /// The blue Service to copy ports from; default `<app>-blue`, else the Service
    /// selecting blue's pods.
    pub blue_service: Option<String>,
    /// The green container's image.
    pub image: String,
    /// The container that gets the image; default: the first.
    pub container: Option<String>,
    /// Environment variables to set in that container.
    pub env: Vec<(String, String)>,
    /// Replicas; default: blue's.
    pub replicas: Option<i32>,
    /// Extra labels for the green Deployment and its pods.
    pub labels: BTreeMap<String, String>,
    /// The Service port Kong targets; default: the Service's first port.
    pub port: Option<i32>,
    /// The version recorded; default: the image tag.
    pub version: Option<String>,
    /// The blue Kong Upstream whose health checks green copies; default `<app>-blue`.
    pub blue_upstream: Option<String>,
    /// The green Kong Upstream; default `<app>-green`.
    pub green_upstream: Option<String>,
    /// How long the rollout may take.
    pub timeout: Duration,
    /// How often the rollout is polled.
    pub poll: Duration,
}

impl DeployGreen {
    /// `deploy-green` of `image` for `app`, with the defaults: 10 minutes, polled every 2 s.
    pub fn new(app: impl Into<String>, image: impl Into<String>) -> DeployGreen {
        DeployGreen {
            app: app.into(),
            blue: None,
            blue_service: None,
            image: image.into(),
            container: None,
            env: Vec::new(),
            replicas: None,
            labels: BTreeMap::new(),
            port: None,
            version: None,
            blue_upstream: None,
            green_upstream: None,
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(2),
        }
    }

    fn green_name(&self) -> String {
        format!("{}-green", self.app)
    }

    fn version(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| image_tag(&self.image).to_owned())
    }
}

/// The tag of `image` (`registry:5000/orders:2.0` → `2.0`), or the whole reference if it
/// has none.
fn image_tag(image: &str) -> &str {
    let name = image.rsplit('/').next().unwrap_or(image);
    let name = name.split('@').next().unwrap_or(name);
    name.split_once(':').map_or(image, |(_, tag)| tag)
}

/// What `deploy-green` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployReport {
    /// `namespace/name` of the green Deployment.
    pub deployment: String,
    /// `namespace/name` of the green Service.
    pub service: String,
    /// The version deployed.
    pub version: String,
    /// The image deployed.
    pub image: String,
    /// The rollout as last seen.
    pub rollout: RolloutProgress,
    /// The green Kong Upstream.
    pub upstream: UpstreamReport,
}

/// Runs `deploy-green`: see the [module](super) docs.
///
/// Nothing is written to the cluster before the blue side is found and the green
/// Deployment and Service are built and checked (ports). From the first write on, the
/// state log holds `deploying`; a failure after it scales green to zero and records
/// `rolled_back` with the reason, so nothing half-created is left unrecorded.
pub async fn deploy_green<L: StateLog>(
    cluster: &Cluster,
    kong: &KongClient,
    log: &L,
    context: &RunContext,
    request: &DeployGreen,
    progress: &dyn Progress,
) -> Result<DeployReport> {
    let recorder = Recorder::new(log, context);
    let mut lease = recorder
        .lease(request.timeout + Duration::from_secs(300))
        .await?;
    let result = lease
        .hold(deploy(cluster, kong, &recorder, request, progress))
        .await;
    let released = lease.release().await;
    let report = result?;
    released?;
    Ok(report)
}

async fn deploy<L: StateLog>(
    cluster: &Cluster,
    kong: &KongClient,
    recorder: &Recorder<'_, L>,
    request: &DeployGreen,
    progress: &dyn Progress,
) -> Result<DeployReport> {
    let green_name = request.green_name();
    let version = request.version();
    let qualified = cluster.qualified(&green_name);

    // Read and check everything before the first write.
    progress.step("find the blue Deployment");
    let blue = cluster
        .blue_deployment(&request.app, request.blue.as_deref())
        .await?;
    let spec = GreenSpec {
        name: green_name.clone(),
        image: request.image.clone(),
        container: request.container.clone(),
        env: request.env.clone(),
        replicas: request.replicas,
        labels: request.labels.clone(),
        version: version.clone(),
    };
    let mut green = green_deployment(&blue, &spec)?;
    green.metadata.namespace = Some(cluster.namespace.clone());
    let blue_service = find_blue_service(cluster, request, &blue).await?;
    let (mut service, port) =
        green_service(&green, blue_service.as_ref(), &green_name, request.port)?;
    service.metadata.namespace = Some(cluster.namespace.clone());
    let blue_upstream = request
        .blue_upstream
        .clone()
        .unwrap_or_else(|| format!("{}-blue", request.app));
    let green_upstream = request
        .green_upstream
        .clone()
        .unwrap_or_else(|| format!("{}-green", request.app));

    let event = |kind, status| {
        recorder
            .event(kind, &Color::Green, status, &green_name)
            .with_version(&version)
            .with_upstream(&green_upstream)
    };
    recorder
        .append(event(EventKind::Status, DeploymentStatus::Deploying))
        .await?;

    let outcome = async {
        progress.step(&format!("apply Deployment {qualified}"));
        apply_deployment(cluster, &green).await?;
        progress.step(&format!("apply Service {}", cluster.qualified(&green_name)));
        apply_service(cluster, &service).await?;
        progress.step(&format!("wait for the rollout of {qualified}"));
        let rollout = wait_for_rollout(
            &cluster.api::<Deployment>(),
            &cluster.api::<Pod>(),
            &qualified,
            &green_name,
            request.timeout,
            request.poll,
            progress,
        )
        .await?;
        let target = format!(
            "{green_name}.{}.svc.cluster.local:{port}",
            cluster.namespace
        );
        progress.step(&format!(
            "register {target} in Kong Upstream {green_upstream}"
        ));
        let upstream =
            ensure_green_upstream(kong, &blue_upstream, &green_upstream, &target).await?;
        Ok::<_, Error>((rollout, upstream))
    }
    .await;

    match outcome {
        Ok((rollout, upstream)) => {
            recorder
                .append(event(EventKind::Status, DeploymentStatus::Testing))
                .await?;
            Ok(DeployReport {
                deployment: qualified,
                service: cluster.qualified(&green_name),
                version,
                image: request.image.clone(),
                rollout,
                upstream,
            })
        }
        Err(err) => {
            let scaled = scale_to_zero(cluster, &green_name).await;
            let mut reason = err.to_string();
            match &scaled {
                Ok(true) => reason.push_str(&format!("; Deployment {qualified} scaled to 0")),
                Ok(false) => {}
                Err(scale_err) => reason.push_str(&format!(
                    "; scaling Deployment {qualified} to 0 failed too: {scale_err}"
                )),
            }
            recorder
                .append(
                    event(EventKind::RolledBack, DeploymentStatus::RolledBack).with_reason(reason),
                )
                .await?;
            Err(err)
        }
    }
}

/// The blue Service: `--blue-service`, else `<app>-blue` if it exists, else the Service
/// whose selector matches blue's pods; `None` if there is none.
async fn find_blue_service(
    cluster: &Cluster,
    request: &DeployGreen,
    blue: &Deployment,
) -> Result<Option<Service>> {
    let api: Api<Service> = cluster.api();
    if let Some(name) = &request.blue_service {
        return api
            .get_opt(name)
            .await
            .map_err(Error::kube(format!(
                "get Service {}",
                cluster.qualified(name)
            )))?
            .map(Some)
            .ok_or_else(|| Error::NotFound {
                kind: "Service",
                name: cluster.qualified(name),
                hint: ": check --blue-service".to_owned(),
            });
    }
    let conventional = format!("{}-blue", request.app);
    if let Some(service) = api
        .get_opt(&conventional)
        .await
        .map_err(Error::kube(format!(
            "get Service {}",
            cluster.qualified(&conventional)
        )))?
    {
        return Ok(Some(service));
    }
    let pod_selector = blue
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let services = api
        .list(&ListParams::default())
        .await
        .map_err(Error::kube(format!(
            "list Services in {}",
            cluster.namespace
        )))?;
    Ok(services.items.into_iter().find(|s| {
        s.spec
            .as_ref()
            .and_then(|spec| spec.selector.as_ref())
            .is_some_and(|selector| !selector.is_empty() && *selector == pod_selector)
    }))
}

/// Creates `desired`, or replaces the existing one (retrying `resourceVersion` conflicts).
async fn apply_deployment(cluster: &Cluster, desired: &Deployment) -> Result<()> {
    create_or_replace(cluster, "Deployment", desired, |_, _| {}).await
}

/// Creates `desired`, or replaces the existing one keeping its cluster IP (immutable).
async fn apply_service(cluster: &Cluster, desired: &Service) -> Result<()> {
    create_or_replace(cluster, "Service", desired, |replacement, current| {
        if let (Some(spec), Some(current_spec)) = (replacement.spec.as_mut(), current.spec.as_ref())
        {
            spec.cluster_ip.clone_from(&current_spec.cluster_ip);
            spec.cluster_ips.clone_from(&current_spec.cluster_ips);
        }
    })
    .await
}

/// Creates `desired`, or replaces the existing object with it, carrying over the
/// `resourceVersion` read (and whatever `keep` copies from the current object), retrying
/// `resourceVersion` conflicts.
async fn create_or_replace<K>(
    cluster: &Cluster,
    kind: &str,
    desired: &K,
    keep: impl Fn(&mut K, &K),
) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = cluster.api();
    let name = desired.meta().name.clone().unwrap_or_default();
    let action = format!("apply {kind} {}", cluster.qualified(&name));
    for _ in 0..CONFLICT_RETRIES {
        let existing = api.get_opt(&name).await.map_err(Error::kube(&action))?;
        let result = match existing {
            None => api.create(&PostParams::default(), desired).await,
            Some(current) => {
                let mut replacement = desired.clone();
                replacement.meta_mut().resource_version = current.meta().resource_version.clone();
                keep(&mut replacement, &current);
                api.replace(&name, &PostParams::default(), &replacement)
                    .await
            }
        };
        match result {
            Ok(_) => return Ok(()),
            Err(err) if is_conflict(&err) => continue,
            Err(err) => return Err(Error::kube(action)(err)),
        }
    }
    Err(Error::Mismatch(format!(
        "{action}: the object kept changing under us ({CONFLICT_RETRIES} resourceVersion conflicts)"
    )))
}

/// Scales `name` to zero if it exists; `Ok(true)` if it did.
pub(crate) async fn scale_to_zero(cluster: &Cluster, name: &str) -> Result<bool> {
    let api: Api<Deployment> = cluster.api();
    let patch = json!({"spec": {"replicas": 0}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(err) => Err(Error::kube(format!(
            "scale Deployment {} to 0",
            cluster.qualified(name)
        ))(err)),
    }
}

pub(crate) fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_defaults_to_the_image_tag() {
        assert_eq!(image_tag("orders:2.0"), "2.0");
        assert_eq!(image_tag("registry:5000/team/orders:2.0-rc1"), "2.0-rc1");
        assert_eq!(
            image_tag("registry:5000/team/orders"),
            "registry:5000/team/orders"
        );
        assert_eq!(image_tag("orders:2.0@sha256:abc"), "2.0");
        assert_eq!(DeployGreen::new("orders", "orders:3").version(), "3");
    }
}
