//! Kubernetes-level switches, for clusters where Kong is driven by its ingress controller
//! (so the Admin API is not the thing to write): flip a Service's `version` selector, or set
//! the `backendRefs` weights of an HTTPRoute.
//!
//! Same protocol as the core engine: lease → read → pure [`plan`] (each step with its undo
//! precomputed; an empty plan is the no-op) → gate → intent recorded → apply (each patch
//! carries the `resourceVersion` read, so a concurrent change fails instead of being
//! overwritten) → read back → on failure, undo the applied steps in reverse → record.
//!
//! Core's `switch` module has no reusable plan type yet, so this is a small equivalent for
//! Kubernetes objects. The intent's writes are recorded as [`AdminRequest`] values whose
//! paths are Kubernetes API paths.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use kong_switch_core::admin::{AdminRequest, Method};
use kong_switch_core::state::{
    Color, DeploymentStatus, EventKind, INTENT_FORMAT, Intent, StateLog,
};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::clone::VERSION_LABEL;
use super::cluster::Cluster;
use super::deploy::is_conflict;
use super::record::{Recorder, RunContext};
use super::rollout::Progress;
use crate::error::{Error, Result};

/// What to switch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum K8sSwitch {
    /// Point the Service `service` at the pods labelled `version: <to>`.
    ServiceSelector {
        /// The stable Service the ingress routes to.
        service: String,
        /// The side to send traffic to.
        to: Color,
        /// Ready pods the side must have (gate).
        min_ready: usize,
    },
    /// Set the weights of the HTTPRoute's backends (by backend Service name); backends not
    /// named keep theirs.
    HttpRouteWeights {
        /// The HTTPRoute.
        route: String,
        /// Backend Service name → weight.
        weights: BTreeMap<String, i32>,
    },
}

/// One write of a plan: a JSON merge patch of one object, and the patch that undoes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Step {
    /// `Service` or `HTTPRoute`.
    pub kind: &'static str,
    /// The object's name.
    pub name: String,
    /// What the step does, for people.
    pub description: String,
    /// The merge patch (with the `resourceVersion` read, as a precondition).
    pub patch: Value,
    /// The merge patch restoring what was read.
    pub undo: Value,
}

/// The ordered steps of a switch; empty when there is nothing to do.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// `service-selector` or `httproute-weights`.
    pub strategy: &'static str,
    /// The side traffic leaves (as read).
    pub from: String,
    /// The side traffic goes to.
    pub to: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What a switch did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SwitchReport {
    /// The plan (empty for a no-op).
    pub plan: Plan,
    /// Whether anything was written.
    pub applied: bool,
}

fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// The pure planner: the steps that take `current` (the object as read) to what `request`
/// asks for.
pub fn plan(request: &K8sSwitch, current: &Value) -> Result<Plan> {
    let name = current["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let resource_version = current["metadata"]["resourceVersion"].clone();
    match request {
        K8sSwitch::ServiceSelector { to, .. } => {
            let from = current["spec"]["selector"][VERSION_LABEL]
                .as_str()
                .ok_or_else(|| {
                    Error::Mismatch(format!(
                        "Service {name} has no `{VERSION_LABEL}` in its selector, so it cannot be flipped between sides"
                    ))
                })?
                .to_owned();
            let steps = if from == to.as_str() {
                Vec::new()
            } else {
                vec![Step {
                    kind: "Service",
                    name: name.clone(),
                    description: format!("Service {name}: selector {VERSION_LABEL}={from} → {to}"),
                    patch: json!({"metadata": {"resourceVersion": resource_version},
                                  "spec": {"selector": {VERSION_LABEL: to.as_str()}}}),
                    undo: json!({"spec": {"selector": {VERSION_LABEL: from}}}),
                }]
            };
            Ok(Plan {
                strategy: "service-selector",
                from,
                to: to.to_string(),
                steps,
            })
        }
        K8sSwitch::HttpRouteWeights { weights, .. } => {
            let rules = current["spec"]["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut seen = BTreeMap::new();
            let mut new_rules = rules.clone();
            for rule in &mut new_rules {
                for backend in rule["backendRefs"].as_array_mut().into_iter().flatten() {
                    let backend_name = backend["name"].as_str().unwrap_or_default().to_owned();
                    let old = backend["weight"].as_i64().unwrap_or(1);
                    seen.insert(backend_name.clone(), old);
                    if let Some(weight) = weights.get(&backend_name) {
                        backend["weight"] = json!(weight);
                    }
                }
            }
            if let Some(missing) = weights.keys().find(|b| !seen.contains_key(*b)) {
                return Err(Error::Mismatch(format!(
                    "HTTPRoute {name} has no backendRef `{missing}`; it has: {}",
                    seen.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            let describe = |w: &BTreeMap<String, i64>| {
                w.iter()
                    .map(|(b, w)| format!("{b}={w}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let mut after = seen.clone();
            for (backend, weight) in weights {
                after.insert(backend.clone(), i64::from(*weight));
            }
            let steps = if new_rules == rules {
                Vec::new()
            } else {
                vec![Step {
                    kind: "HTTPRoute",
                    name: name.clone(),
                    description: format!(
                        "HTTPRoute {name}: weights {} → {}",
                        describe(&seen),
                        describe(&after)
                    ),
                    patch: json!({"metadata": {"resourceVersion": resource_version},
                                  "spec": {"rules": new_rules}}),
                    undo: json!({"spec": {"rules": rules}}),
                }]
            };
            Ok(Plan {
                strategy: "httproute-weights",
                from: describe(&seen),
                to: describe(&after),
                steps,
            })
        }
    }
}

/// Runs a Kubernetes-level switch under the target's lease: see the [module](self) docs.
pub async fn switch<L: StateLog>(
    cluster: &Cluster,
    log: &L,
    context: &RunContext,
    request: &K8sSwitch,
    progress: &dyn Progress,
) -> Result<SwitchReport> {
    let recorder = Recorder::new(log, context);
    let mut lease = recorder.lease(std::time::Duration::from_secs(600)).await?;
    let result = lease.hold(run(cluster, &recorder, request, progress)).await;
    let released = lease.release().await;
    let report = result?;
    released?;
    Ok(report)
}

async fn run<L: StateLog>(
    cluster: &Cluster,
    recorder: &Recorder<'_, L>,
    request: &K8sSwitch,
    progress: &dyn Progress,
) -> Result<SwitchReport> {
    let objects = Objects::new(cluster, request);
    let current = objects.get().await?;
    let plan = plan(request, &current)?;
    if plan.is_noop() {
        progress.step("nothing to do: traffic is already there");
        return Ok(SwitchReport {
            plan,
            applied: false,
        });
    }
    let base = recorder
        .event(
            EventKind::Status,
            &Color::from(plan.to.as_str()),
            DeploymentStatus::Testing,
            objects.name(),
        )
        .with_strategy(plan.strategy)
        .with_sides(&plan.from, &plan.to);
    if let Err(refusal) = gate(cluster, request, &current).await {
        recorder
            .append(
                base.next(EventKind::Refused)
                    .with_reason(refusal.to_string()),
            )
            .await?;
        return Err(refusal);
    }
    let intent = Intent {
        format: INTENT_FORMAT,
        strategy: plan.strategy.to_owned(),
        from: plan.from.clone(),
        to: plan.to.clone(),
        writes: plan
            .steps
            .iter()
            .map(|s| objects.request(&s.patch))
            .collect(),
        undo: plan
            .steps
            .iter()
            .rev()
            .map(|s| objects.request(&s.undo))
            .collect(),
        prior: current.clone(),
        part: None,
    };
    recorder
        .append(base.next(EventKind::Intent).with_intent(intent))
        .await?;

    let mut applied: Vec<&Step> = Vec::new();
    for step in &plan.steps {
        progress.step(&step.description);
        let outcome = match objects.patch(&step.patch).await {
            Ok(written) => read_back(request, &written),
            Err(err) => Err(err.to_string()),
        };
        if let Err(reason) = outcome {
            applied.push(step);
            let mut undo_failure = None;
            for done in applied.iter().rev() {
                if let Err(err) = objects.patch(&done.undo).await {
                    undo_failure = Some(err.to_string());
                    break;
                }
            }
            let (error, status) = match undo_failure {
                None => (
                    Error::RolledBack {
                        step: step.description.clone(),
                        reason,
                    },
                    DeploymentStatus::RolledBack,
                ),
                Some(rollback) => (
                    Error::RollbackFailed {
                        step: step.description.clone(),
                        reason,
                        rollback,
                    },
                    DeploymentStatus::Testing,
                ),
            };
            recorder
                .append(
                    base.next(EventKind::RolledBack)
                        .with_status(status)
                        .with_reason(error.to_string()),
                )
                .await?;
            return Err(error);
        }
        applied.push(step);
    }
    recorder
        .append(
            base.next(EventKind::Completed)
                .with_status(DeploymentStatus::Active),
        )
        .await?;
    Ok(SwitchReport {
        plan,
        applied: true,
    })
}

/// Checks the written object says what was asked.
fn read_back(request: &K8sSwitch, written: &Value) -> std::result::Result<(), String> {
    match request {
        K8sSwitch::ServiceSelector { to, .. } => {
            let seen = written["spec"]["selector"][VERSION_LABEL].as_str();
            (seen == Some(to.as_str())).then_some(()).ok_or_else(|| {
                format!("read back selector {VERSION_LABEL}={seen:?}, expected {to}")
            })
        }
        K8sSwitch::HttpRouteWeights { weights, .. } => {
            for rule in written["spec"]["rules"].as_array().into_iter().flatten() {
                for backend in rule["backendRefs"].as_array().into_iter().flatten() {
                    let name = backend["name"].as_str().unwrap_or_default();
                    if let Some(weight) = weights.get(name)
                        && backend["weight"].as_i64() != Some(i64::from(*weight))
                    {
                        return Err(format!(
                            "read back weight {} for {name}, expected {weight}",
                            backend["weight"]
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// The pre-flight gate: the side receiving traffic must be able to take it.
async fn gate(cluster: &Cluster, request: &K8sSwitch, current: &Value) -> Result<()> {
    match request {
        K8sSwitch::ServiceSelector { to, min_ready, .. } => {
            let mut selector: BTreeMap<String, String> =
                serde_json::from_value(current["spec"]["selector"].clone()).unwrap_or_default();
            selector.insert(VERSION_LABEL.to_owned(), to.to_string());
            let labels = selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let pods = cluster
                .api::<Pod>()
                .list(&ListParams::default().labels(&labels))
                .await
                .map_err(Error::kube(format!("list pods {labels}")))?;
            let ready = pods
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.ready))
                })
                .count();
            if ready < *min_ready {
                return Err(Error::Refused(format!(
                    "gate ready-pods: {ready} of {} pods labelled {labels} are ready, {min_ready} needed; nothing changed",
                    pods.items.len()
                )));
            }
            Ok(())
        }
        K8sSwitch::HttpRouteWeights { weights, .. } => {
            let services: Api<Service> = cluster.api();
            for backend in weights.iter().filter(|(_, w)| **w > 0).map(|(b, _)| b) {
                let found = services
                    .get_opt(backend)
                    .await
                    .map_err(Error::kube(format!(
                        "get Service {}",
                        cluster.qualified(backend)
                    )))?;
                if found.is_none() {
                    return Err(Error::Refused(format!(
                        "gate backend-exists: Service {} (weight > 0) does not exist; nothing changed",
                        cluster.qualified(backend)
                    )));
                }
            }
            Ok(())
        }
    }
}

/// The one object a switch reads and writes.
struct Objects {
    api: Api<DynamicObject>,
    name: String,
    path: String,
}

impl Objects {
    fn new(cluster: &Cluster, request: &K8sSwitch) -> Objects {
        let (resource, name) = match request {
            K8sSwitch::ServiceSelector { service, .. } => {
                (ApiResource::erase::<Service>(&()), service.clone())
            }
            K8sSwitch::HttpRouteWeights { route, .. } => (http_route_resource(), route.clone()),
        };
        let prefix = if resource.group.is_empty() {
            format!("/api/{}", resource.version)
        } else {
            format!("/apis/{}/{}", resource.group, resource.version)
        };
        let path = format!(
            "{prefix}/namespaces/{}/{}/{name}",
            cluster.namespace, resource.plural
        );
        Objects {
            api: Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &resource),
            name,
            path,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn request(&self, patch: &Value) -> AdminRequest {
        AdminRequest::new(Method::Patch, &self.path).with_body(patch.clone())
    }

    async fn get(&self) -> Result<Value> {
        let object = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::kube(format!("get {}", self.path)))?
            .ok_or_else(|| Error::NotFound {
                kind: "object",
                name: self.path.clone(),
                hint: String::new(),
            })?;
        serde_json::to_value(object).map_err(|e| Error::Mismatch(e.to_string()))
    }

    async fn patch(&self, patch: &Value) -> Result<Value> {
        let written = self
            .api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|err| {
                if is_conflict(&err) {
                    Error::Mismatch(format!(
                        "{} changed since it was read (resourceVersion conflict)",
                        self.path
                    ))
                } else {
                    Error::kube(format!("patch {}", self.path))(err)
                }
            })?;
        serde_json::to_value(written).map_err(|e| Error::Mismatch(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(version: &str) -> Value {
        json!({"metadata": {"name": "orders", "resourceVersion": "7"},
               "spec": {"selector": {"app": "orders", "version": version}}})
    }

    #[test]
    fn selector_flip_plans_one_patch_with_its_undo_and_the_read_resource_version() {
        let request = K8sSwitch::ServiceSelector {
            service: "orders".into(),
            to: Color::Green,
            min_ready: 1,
        };
        let plan = plan(&request, &service("blue")).expect("plans");
        assert_eq!((plan.from.as_str(), plan.to.as_str()), ("blue", "green"));
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(
            plan.steps[0].patch,
            json!({"metadata": {"resourceVersion": "7"}, "spec": {"selector": {"version": "green"}}})
        );
        assert_eq!(
            plan.steps[0].undo,
            json!({"spec": {"selector": {"version": "blue"}}})
        );
        assert!(
            super::plan(&request, &service("green"))
                .expect("plans")
                .is_noop()
        );
    }

    #[test]
    fn weights_plan_names_unknown_backends_and_keeps_unnamed_ones() {
        let route = json!({"metadata": {"name": "orders", "resourceVersion": "3"},
            "spec": {"rules": [{"backendRefs": [
                {"name": "orders-blue", "port": 80, "weight": 100},
                {"name": "orders-green", "port": 80, "weight": 0}]}]}});
        let request = K8sSwitch::HttpRouteWeights {
            route: "orders".into(),
            weights: BTreeMap::from([("orders-green".into(), 100), ("orders-blue".into(), 0)]),
        };
        let plan = plan(&request, &route).expect("plans");
        assert_eq!(plan.from, "orders-blue=100,orders-green=0");
        assert_eq!(plan.to, "orders-blue=0,orders-green=100");
        assert_eq!(plan.steps[0].undo["spec"]["rules"], route["spec"]["rules"]);
        let unknown = K8sSwitch::HttpRouteWeights {
            route: "orders".into(),
            weights: BTreeMap::from([("orders-canary".into(), 5)]),
        };
        let err = super::plan(&unknown, &route).expect_err("unknown backend");
        assert!(
            err.to_string().contains("no backendRef `orders-canary`"),
            "{err}"
        );
    }
}
