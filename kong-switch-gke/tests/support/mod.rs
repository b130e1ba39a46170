//! Test support shared by the test files: the Firestore emulator and a fake Kubernetes API.
#![allow(dead_code)]

pub mod emulator;
pub mod fake_kube;

use std::time::Duration;

use kong_switch_core::admin::{AdminConfig, KongClient};
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::{Value, json};

/// The namespace of the fixtures.
pub const NAMESPACE: &str = "shop";

/// The blue side of `orders`: a Deployment labelled `app=orders,version=blue` and its
/// Service `orders-blue` (port 80 → container port `http` 8080).
pub fn seed_blue(kube: &fake_kube::FakeKube) {
    kube.insert("deployments", blue_deployment());
    kube.insert(
        "services",
        json!({
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "orders-blue", "namespace": NAMESPACE, "labels": {"app": "orders", "version": "blue"}},
            "spec": {"selector": {"app": "orders", "version": "blue"}, "clusterIP": "10.96.0.10",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
        }),
    );
}

/// The blue Deployment of `orders`.
pub fn blue_deployment() -> Value {
    json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "orders-blue", "namespace": NAMESPACE,
                     "labels": {"app": "orders", "version": "blue"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "orders", "version": "blue"}},
            "template": {
                "metadata": {"labels": {"app": "orders", "version": "blue"}},
                "spec": {"containers": [{"name": "orders", "image": "registry.example/orders:1.0",
                                          "ports": [{"name": "http", "containerPort": 8080}]}]}
            }
        }
    })
}

/// A Kong stand-in (3.x) with the `orders` service on Upstream `orders-blue` (active health
/// checks on `/healthz`).
pub async fn kong() -> StandIn {
    StandIn::builder()
        .profile(Profile::V3)
        .router_delay(Duration::from_millis(50))
        .seed(json!({
            "_format_version": "3.0",
            "services": [{"name": "orders", "host": "orders-blue", "port": 80}],
            "upstreams": [{
                "name": "orders-blue",
                "algorithm": "least-connections",
                "healthchecks": {"active": {"http_path": "/healthz", "healthy": {"interval": 5, "successes": 2}}},
                "targets": [{"target": "orders-blue.shop.svc.cluster.local:80", "weight": 100}]
            }]
        }))
        .start()
        .await
        .expect("the Kong stand-in starts")
}

/// An Admin API client of `kong`.
pub fn kong_client(kong: &StandIn) -> KongClient {
    let config = AdminConfig::builder(&kong.admin_url())
        .expect("valid URL")
        .build()
        .expect("valid config");
    KongClient::new(config).expect("client")
}
