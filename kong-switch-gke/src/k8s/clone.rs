//! Pure builders: the green Deployment and Service, from blue's.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::{Error, Result};

/// The label telling the sides apart: `version: blue` / `version: green`.
pub const VERSION_LABEL: &str = "version";
/// Annotations of blue that must not be copied to green.
const DROPPED_ANNOTATIONS: [&str; 3] = [
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
    super::retire::RETIRED_REPLICAS_ANNOTATION,
];

/// What the green side should be.
#[derive(Debug, Clone, Default)]
pub struct GreenSpec {
    /// The green Deployment's (and Service's) name, e.g. `orders-green`.
    pub name: String,
    /// The image of the green container.
    pub image: String,
    /// The container that gets the image; default: the first.
    pub container: Option<String>,
    /// Environment variables to set (or replace) in that container.
    pub env: Vec<(String, String)>,
    /// Replicas; default: blue's (or, if blue is scaled to zero by `retire-blue`, its count
    /// before that).
    pub replicas: Option<i32>,
    /// Extra labels on the Deployment and its pods.
    pub labels: BTreeMap<String, String>,
    /// The version recorded in the `kong-switch/version` annotation.
    pub version: String,
}

/// The green Deployment: blue's, renamed, relabelled `version: green` (metadata, selector
/// and pod template), with the new image, env, replicas and labels, and none of blue's
/// server-set fields.
///
/// Fails if blue's selector has no `version` label (green's pods would then be blue's
/// too), or if the container is not there.
pub fn green_deployment(blue: &Deployment, spec: &GreenSpec) -> Result<Deployment> {
    let blue_name = blue.metadata.name.clone().unwrap_or_default();
    let mut blue_spec = blue
        .spec
        .clone()
        .ok_or_else(|| Error::Mismatch(format!("Deployment {blue_name} has no spec")))?;
    let selector = blue_spec
        .selector
        .match_labels
        .get_or_insert_with(BTreeMap::new);
    if !selector.contains_key(VERSION_LABEL) {
        return Err(Error::Mismatch(format!(
            "Deployment {blue_name}'s selector has no `{VERSION_LABEL}` label, so it would select green's pods too; add `{VERSION_LABEL}: blue` to its selector and pod labels"
        )));
    }
    selector.insert(VERSION_LABEL.to_owned(), "green".to_owned());

    let template_meta = blue_spec
        .template
        .metadata
        .get_or_insert_with(ObjectMeta::default);
    let pod_labels = template_meta.labels.get_or_insert_with(BTreeMap::new);
    pod_labels.insert(VERSION_LABEL.to_owned(), "green".to_owned());
    pod_labels.extend(spec.labels.clone());

    let pod_spec = blue_spec.template.spec.as_mut().ok_or_else(|| {
        Error::Mismatch(format!("Deployment {blue_name} has no pod template spec"))
    })?;
    let container = pick_container(
        &mut pod_spec.containers,
        spec.container.as_deref(),
        &blue_name,
    )?;
    container.image = Some(spec.image.clone());
    let env = container.env.get_or_insert_with(Vec::new);
    for (name, value) in &spec.env {
        env.retain(|e| &e.name != name);
        env.push(EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
        });
    }
    // Blue may be retired (scaled to zero) already: then its replica count before that.
    let replicas = spec.replicas.unwrap_or_else(|| match blue_spec.replicas {
        Some(0) => blue
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::retire::RETIRED_REPLICAS_ANNOTATION))
            .and_then(|r| r.parse().ok())
            .unwrap_or(1),
        Some(n) => n,
        None => 1,
    });
    if replicas < 1 {
        return Err(Error::Mismatch(format!(
            "green needs at least one replica (asked for {replicas})"
        )));
    }
    blue_spec.replicas = Some(replicas);

    let mut labels = blue.metadata.labels.clone().unwrap_or_default();
    labels.insert(VERSION_LABEL.to_owned(), "green".to_owned());
    labels.extend(spec.labels.clone());
    let mut annotations = blue.metadata.annotations.clone().unwrap_or_default();
    for dropped in DROPPED_ANNOTATIONS {
        annotations.remove(dropped);
    }
    annotations.insert("kong-switch/cloned-from".to_owned(), blue_name);
    annotations.insert("kong-switch/version".to_owned(), spec.version.clone());

    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            namespace: blue.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(blue_spec),
        status: None,
    })
}

fn pick_container<'a>(
    containers: &'a mut [Container],
    name: Option<&str>,
    deployment: &str,
) -> Result<&'a mut Container> {
    let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
    let found = match name {
        Some(name) => containers.iter_mut().find(|c| c.name == name),
        None => containers.first_mut(),
    };
    found.ok_or_else(|| {
        Error::Mismatch(format!(
            "Deployment {deployment} has no container {}; it has: {}",
            name.map_or_else(|| "at all".to_owned(), |n| format!("`{n}`")),
            names.join(", ")
        ))
    })
}

/// The green Service: `name`, selecting green's pods, with the blue Service's ports (or,
/// without a blue Service, one port per container port). Then checks that `port` (the port
/// Kong targets; default: the first) is one of them and that every port's `targetPort` is
/// a port of green's container.
///
/// Returns the Service and the port Kong should target.
pub fn green_service(
    green: &Deployment,
    blue_service: Option<&Service>,
    name: &str,
    port: Option<i32>,
) -> Result<(Service, i32)> {
    let spec = green.spec.as_ref();
    let selector = spec
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let containers = spec
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.clone())
        .unwrap_or_default();
    let container_ports: Vec<(i32, Option<String>)> = containers
        .iter()
        .flat_map(|c| c.ports.clone().unwrap_or_default())
        .map(|p| (p.container_port, p.name))
        .collect();

    let ports: Vec<ServicePort> = match blue_service
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.clone())
    {
        Some(ports) if !ports.is_empty() => ports
            .into_iter()
            .map(|p| ServicePort {
                node_port: None,
                ..p
            })
            .collect(),
        _ => container_ports
            .iter()
            .map(|(number, port_name)| ServicePort {
                name: port_name.clone(),
                port: *number,
                target_port: Some(IntOrString::Int(*number)),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            })
            .collect(),
    };
    if ports.is_empty() {
        return Err(Error::Mismatch(format!(
            "cannot tell the port of Service {name}: there is no blue Service to copy and green's container declares no ports; declare containerPort in the Deployment"
        )));
    }
    let shown = || {
        ports
            .iter()
            .map(|p| match &p.name {
                Some(n) => format!("{} ({n})", p.port),
                None => p.port.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match port {
        Some(wanted) => {
            if !ports.iter().any(|p| p.port == wanted) {
                return Err(Error::Mismatch(format!(
                    "Service port {wanted} does not match: Service {name} would expose {}; pass one of these with --port",
                    shown()
                )));
            }
            wanted
        }
        None => ports[0].port,
    };
    if !container_ports.is_empty() {
        for service_port in &ports {
            let target = service_port
                .target_port
                .clone()
                .unwrap_or(IntOrString::Int(service_port.port));
            let matches = container_ports
                .iter()
                .any(|(number, port_name)| match &target {
                    IntOrString::Int(n) => n == number,
                    IntOrString::String(s) => port_name.as_deref() == Some(s.as_str()),
                });
            if !matches {
                let target = match &target {
                    IntOrString::Int(n) => n.to_string(),
                    IntOrString::String(s) => s.clone(),
                };
                return Err(Error::Mismatch(format!(
                    "Service port {} targets port {target}, which green's container does not expose (it exposes {}); fix the blue Service or the Deployment's containerPort",
                    service_port.port,
                    container_ports
                        .iter()
                        .map(|(n, name)| match name {
                            Some(name) => format!("{n} ({name})"),
                            None => n.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }

    let mut labels = blue_service
        .and_then(|s| s.metadata.labels.clone())
        .unwrap_or_default();
    labels.insert(VERSION_LABEL.to_owned(), "green".to_owned());
    let service = Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: green.metadata.namespace.clone(),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(ports),
            type_: Some("ClusterIP".to_owned()),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    Ok((service, chosen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blue() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {
                "name": "orders-blue", "namespace": "shop",
                "labels": {"app": "orders", "version": "blue"},
                "annotations": {"deployment.kubernetes.io/revision": "4", "team": "payments"},
                "resourceVersion": "812", "uid": "u-1", "generation": 4
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "orders", "version": "blue"}},
                "template": {
                    "metadata": {"labels": {"app": "orders", "version": "blue"}},
                    "spec": {"containers": [{
                        "name": "orders", "image": "orders:1.0",
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "env": [{"name": "MODE", "value": "blue"}]
                    }]}
                }
            },
            "status": {"replicas": 3, "readyReplicas": 3}
        }))
        .expect("valid Deployment")
    }

    fn spec() -> GreenSpec {
        GreenSpec {
            name: "orders-green".into(),
            image: "orders:2.0".into(),
            env: vec![("MODE".into(), "green".into())],
            replicas: Some(2),
            labels: BTreeMap::from([("track".into(), "release".into())]),
            version: "2.0".into(),
            ..GreenSpec::default()
        }
    }

    #[test]
    fn green_deployment_is_blue_relabelled_with_the_new_image_and_no_server_fields() {
        let green = green_deployment(&blue(), &spec()).expect("builds");
        let value = serde_json::to_value(&green).expect("serializes");
        assert_eq!(value["metadata"]["name"], "orders-green");
        assert_eq!(value["metadata"]["labels"]["version"], "green");
        assert_eq!(value["metadata"]["labels"]["track"], "release");
        assert!(value["metadata"].get("resourceVersion").is_none());
        assert!(value["metadata"].get("uid").is_none());
        assert!(value.get("status").is_none());
        assert_eq!(value["metadata"]["annotations"]["team"], "payments");
        assert!(
            value["metadata"]["annotations"]
                .get("deployment.kubernetes.io/revision")
                .is_none()
        );
        assert_eq!(value["spec"]["selector"]["matchLabels"]["version"], "green");
        assert_eq!(
            value["spec"]["template"]["metadata"]["labels"]["version"],
            "green"
        );
        assert_eq!(value["spec"]["replicas"], 2);
        let container = &value["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "orders:2.0");
        assert_eq!(
            container["env"],
            json!([{"name": "MODE", "value": "green"}])
        );
    }

    #[test]
    fn a_retired_blue_lends_green_its_replica_count_from_before() {
        let mut blue = blue();
        if let Some(spec) = blue.spec.as_mut() {
            spec.replicas = Some(0);
        }
        blue.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert("kong-switch/retired-replicas".into(), "3".into());
        let green = green_deployment(
            &blue,
            &GreenSpec {
                replicas: None,
                ..spec()
            },
        )
        .expect("builds");
        assert_eq!(green.spec.and_then(|s| s.replicas), Some(3));
        let err = green_deployment(
            &blue,
            &GreenSpec {
                replicas: Some(0),
                ..spec()
            },
        )
        .expect_err("refused");
        assert!(err.to_string().contains("at least one replica"), "{err}");
    }

    #[test]
    fn a_blue_selector_without_the_version_label_is_refused() {
        let mut blue = blue();
        if let Some(spec) = blue.spec.as_mut() {
            spec.selector.match_labels = Some(BTreeMap::from([("app".into(), "orders".into())]));
        }
        let err = green_deployment(&blue, &spec()).expect_err("refused");
        assert!(
            err.to_string().contains("selector has no `version` label"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_container_is_named_with_the_ones_there_are() {
        let spec = GreenSpec {
            container: Some("sidecar".into()),
            ..spec()
        };
        let err = green_deployment(&blue(), &spec).expect_err("refused");
        assert!(
            err.to_string()
                .contains("no container `sidecar`; it has: orders"),
            "{err}"
        );
    }

    #[test]
    fn green_service_copies_blue_ports_and_selects_green_pods() {
        let green = green_deployment(&blue(), &spec()).expect("builds");
        let blue_service: Service = serde_json::from_value(json!({
            "metadata": {"name": "orders-blue", "labels": {"app": "orders"}},
            "spec": {"selector": {"app": "orders", "version": "blue"}, "clusterIP": "10.0.0.9",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }))
        .expect("valid Service");
        let (service, port) =
            green_service(&green, Some(&blue_service), "orders-green", None).expect("builds");
        assert_eq!(port, 80);
        let value = serde_json::to_value(&service).expect("serializes");
        assert_eq!(
            value["spec"]["selector"],
            json!({"app": "orders", "version": "green"})
        );
        assert!(value["spec"].get("clusterIP").is_none());
        assert_eq!(value["spec"]["ports"][0]["targetPort"], "http");
    }

    #[test]
    fn a_port_that_does_not_match_is_refused_naming_the_ports() {
        let green = green_deployment(&blue(), &spec()).expect("builds");
        let err = green_service(&green, None, "orders-green", Some(9090)).expect_err("refused");
        assert!(
            err.to_string().contains(
                "Service port 9090 does not match: Service orders-green would expose 8080 (http)"
            ),
            "{err}"
        );
        let blue_service: Service = serde_json::from_value(json!({
            "metadata": {"name": "orders-blue"},
            "spec": {"ports": [{"port": 80, "targetPort": 9999}]}
        }))
        .expect("valid Service");
        let err =
            green_service(&green, Some(&blue_service), "orders-green", None).expect_err("refused");
        assert!(
            err.to_string()
                .contains("targets port 9999, which green's container does not expose"),
            "{err}"
        );
    }
}
