//! Kubernetes-level switches (Service selector, HTTPRoute weights) against the fake API
//! server: plan → gate → apply → read back → rollback, recorded in the state log.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kong_switch_core::state::{Color, EventKind, FileLog, StateLog};
use kong_switch_gke::Error;
use kong_switch_gke::k8s::switch::switch;
use kong_switch_gke::k8s::{Cluster, K8sSwitch, RunContext};
use serde_json::json;
use support::fake_kube::FakeKube;
use support::{NAMESPACE, blue_deployment};

fn context() -> RunContext {
    RunContext {
        target: "orders".into(),
        actor: "ci@runner (pid 1)".into(),
        environment: None,
        build_id: None,
        service: Some("orders".into()),
    }
}

fn cluster(kube: &FakeKube) -> Cluster {
    let config = kube::Config::new(kube.url().parse().expect("valid URL"));
    Cluster::from_config(config, NAMESPACE).expect("client")
}

/// Blue and green Deployments (green running `image`) and the stable Service `orders` on blue.
fn seed(kube: &FakeKube, green_image: &str) {
    kube.insert("deployments", blue_deployment());
    let mut green = blue_deployment();
    green["metadata"]["name"] = json!("orders-green");
    green["metadata"]["labels"]["version"] = json!("green");
    green["spec"]["selector"]["matchLabels"]["version"] = json!("green");
    green["spec"]["template"]["metadata"]["labels"]["version"] = json!("green");
    green["spec"]["template"]["spec"]["containers"][0]["image"] = json!(green_image);
    kube.insert("deployments", green);
    kube.insert(
        "services",
        json!({"kind": "Service", "apiVersion": "v1",
               "metadata": {"name": "orders", "namespace": NAMESPACE},
               "spec": {"selector": {"app": "orders", "version": "blue"},
                        "ports": [{"port": 80, "targetPort": "http"}]}}),
    );
}

fn selector_flip() -> K8sSwitch {
    K8sSwitch::ServiceSelector {
        service: "orders".into(),
        to: Color::Green,
        min_ready: 2,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn selector_flip_moves_the_service_to_green_and_records_intent_then_completed() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    seed(&kube, "orders:2.0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");

    let report = switch(&cluster(&kube), &log, &context(), &selector_flip(), &())
        .await
        .expect("switch");
    assert!(report.applied);
    let service = kube
        .object("services", NAMESPACE, "orders")
        .expect("service");
    assert_eq!(service["spec"]["selector"]["version"], "green");
    let kinds: Vec<EventKind> = log
        .history("orders")
        .await
        .expect("history")
        .events
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [EventKind::Intent, EventKind::Completed]);
    let intent = log.history("orders").await.expect("history").events[0].clone();
    let writes = intent
        .intent
        .expect("intent payload")
        .readable()
        .expect("readable intent")
        .writes
        .clone();
    assert_eq!(writes[0].path, "/api/v1/namespaces/shop/services/orders");

    let again = switch(&cluster(&kube), &log, &context(), &selector_flip(), &())
        .await
        .expect("no-op");
    assert!(!again.applied && again.plan.is_noop());
    assert_eq!(
        log.history("orders").await.expect("history").events.len(),
        2,
        "a no-op records nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn selector_flip_is_refused_while_green_pods_are_not_ready_and_changes_nothing() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    kube.fail_image("orders:broken", "CrashLoopBackOff", "back-off restarting");
    seed(&kube, "orders:broken");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");

    let err = switch(&cluster(&kube), &log, &context(), &selector_flip(), &())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert!(
        err.to_string()
            .contains("0 of 2 pods labelled app=orders,version=green are ready"),
        "{err}"
    );
    assert!(kube.writes().is_empty());
    let last = log.last("orders").await.expect("read").expect("event");
    assert_eq!(last.kind, EventKind::Refused);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrent_change_between_read_and_write_rolls_back_and_leaves_blue() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    seed(&kube, "orders:2.0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    kube.conflict_next(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");

    let err = switch(&cluster(&kube), &log, &context(), &selector_flip(), &())
        .await
        .expect_err("conflict");
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    assert!(
        err.to_string().contains("resourceVersion conflict"),
        "{err}"
    );
    let service = kube
        .object("services", NAMESPACE, "orders")
        .expect("service");
    assert_eq!(service["spec"]["selector"]["version"], "blue");
    let last = log.last("orders").await.expect("read").expect("event");
    assert_eq!(last.kind, EventKind::RolledBack);
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_weights_move_to_green_and_a_missing_backend_service_is_refused() {
    let kube = FakeKube::start(Duration::from_millis(50)).await;
    kube.insert(
        "services",
        json!({"kind": "Service", "apiVersion": "v1",
               "metadata": {"name": "orders-green", "namespace": NAMESPACE}, "spec": {}}),
    );
    kube.insert(
        "httproutes",
        json!({"kind": "HTTPRoute", "apiVersion": "gateway.networking.k8s.io/v1",
               "metadata": {"name": "orders", "namespace": NAMESPACE},
               "spec": {"parentRefs": [{"name": "kong"}], "rules": [{"backendRefs": [
                   {"name": "orders-blue", "port": 80, "weight": 100},
                   {"name": "orders-green", "port": 80, "weight": 0}]}]}}),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path()).expect("log");
    let to_green = K8sSwitch::HttpRouteWeights {
        route: "orders".into(),
        weights: BTreeMap::from([("orders-blue".into(), 0), ("orders-green".into(), 100)]),
    };
    let report = switch(&cluster(&kube), &log, &context(), &to_green, &())
        .await
        .expect("switch");
    assert_eq!(report.plan.to, "orders-blue=0,orders-green=100");
    let route = kube
        .object("httproutes", NAMESPACE, "orders")
        .expect("route");
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["weight"], 0);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][1]["weight"], 100);
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "kong");

    let back_to_blue = K8sSwitch::HttpRouteWeights {
        route: "orders".into(),
        weights: BTreeMap::from([("orders-blue".into(), 100), ("orders-green".into(), 0)]),
    };
    let err = switch(&cluster(&kube), &log, &context(), &back_to_blue, &())
        .await
        .expect_err("orders-blue Service is missing");
    assert!(
        err.to_string()
            .contains("gate backend-exists: Service shop/orders-blue"),
        "{err}"
    );
    let route = kube
        .object("httproutes", NAMESPACE, "orders")
        .expect("route");
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"][1]["weight"], 100,
        "unchanged"
    );
}
