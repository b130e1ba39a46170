//! Version and mode detection from real `GET /` bodies, and what each node can do.

use std::time::Duration;

use kong_switch_core::admin::{AdminConfig, Error, KongClient, Method, RetryPolicy};
use kong_switch_core::model::{Mode, NameOrId};
use serde_json::json;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ROOT_28: &str = include_str!("../../fixtures/kong-2.8/root-info.json");
const ROOT_28_CP: &str = include_str!("../../fixtures/kong-2.8/root-info-control-plane.json");
const ROOT_39: &str = include_str!("../../fixtures/kong-3.x/root-info.json");
const ROOT_39_DBLESS: &str = include_str!("../../fixtures/kong-3.x/root-info-dbless.json");
const ROOT_39_CP: &str = include_str!("../../fixtures/kong-3.x/root-info-control-plane.json");

async fn kong_with_root(root: &'static str) -> (MockServer, KongClient) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(root, "application/json; charset=utf-8"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let config = AdminConfig::builder(&server.uri())
        .unwrap()
        .retries(RetryPolicy::none());
    let client = KongClient::new(config.build().unwrap()).unwrap();
    (server, client)
}

#[tokio::test]
async fn kong_2_8_traditional() {
    let (_server, kong) = kong_with_root(ROOT_28).await;
    let node = kong.node().await.unwrap();
    assert_eq!(node.version.to_string(), "2.8.5");
    assert_eq!(node.mode, Mode::Traditional);
    assert!(node.writes_entities());
    assert_eq!(node.health_mark_method(), Some(Method::Post));
    assert!(node.has_health_view());
    assert!(node.duplicate_target_post_updates());
    assert_eq!(node.router_rebuild_delay(), Duration::ZERO);
    assert_eq!(node.db_update_frequency(), Duration::from_secs(5));
}

#[tokio::test]
async fn kong_3_9_traditional() {
    let (_server, kong) = kong_with_root(ROOT_39).await;
    let node = kong.node().await.unwrap();
    assert_eq!(node.version.to_string(), "3.9.3");
    assert_eq!(node.info.edition(), Some("community"));
    assert_eq!(node.mode, Mode::Traditional);
    assert!(node.writes_entities());
    assert_eq!(node.health_mark_method(), Some(Method::Put));
    assert!(node.has_health_view());
    assert!(!node.duplicate_target_post_updates());
    assert_eq!(node.router_rebuild_delay(), Duration::from_secs(5));
}

#[tokio::test]
async fn kong_3_9_dbless_cannot_write_entities() {
    let (_server, kong) = kong_with_root(ROOT_39_DBLESS).await;
    let node = kong.node().await.unwrap();
    assert_eq!(node.mode, Mode::DbLess);
    assert!(!node.writes_entities());
    assert_eq!(node.health_mark_method(), Some(Method::Put));
    assert!(node.has_health_view());
}

#[tokio::test]
async fn hybrid_control_planes_have_no_health_view_or_marks() {
    for root in [ROOT_28_CP, ROOT_39_CP] {
        let (_server, kong) = kong_with_root(root).await;
        let node = kong.node().await.unwrap();
        assert_eq!(node.mode, Mode::HybridControlPlane);
        assert!(node.writes_entities());
        assert_eq!(node.health_mark_method(), None);
        assert!(!node.has_health_view());
        assert_eq!(node.db_update_frequency(), Duration::from_secs(5));
    }
}

#[tokio::test]
async fn the_node_is_fetched_once_per_client_and_shared_by_clones() {
    let (_server, kong) = kong_with_root(ROOT_39).await;
    assert!(kong.cached_node().is_none());
    let first = kong.node().await.unwrap();
    let second = kong.clone().node().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    assert!(kong.cached_node().is_some());
}

#[tokio::test]
async fn writes_are_refused_locally_once_the_node_is_known_to_be_dbless() {
    let (server, kong) = kong_with_root(ROOT_39_DBLESS).await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    kong.node().await.unwrap();
    let err = kong
        .services()
        .update(&NameOrId::from("shop"), &json!({"host": "127.0.0.1"}))
        .await
        .unwrap_err();
    let Error::ReadOnly { mode, request } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*mode, request.as_str()),
        (Mode::DbLess, "PATCH /services/shop")
    );
    assert!(err.to_string().contains("POST /config"), "{err}");
    let err = kong
        .upstreams()
        .delete(&NameOrId::from("shop-up"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
}

#[tokio::test]
async fn writes_are_not_refused_before_the_node_is_known() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services"))
        .respond_with(ResponseTemplate::new(405).set_body_raw(
            include_str!("../../fixtures/kong-3.x/error-dbless-write.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let kong = KongClient::new(
        AdminConfig::builder(&server.uri())
            .unwrap()
            .build()
            .unwrap(),
    )
    .unwrap();
    let err = kong
        .services()
        .create(&json!({"name": "x", "host": "example.test"}))
        .await
        .unwrap_err();
    assert_eq!(err.kong_code(), Some(12));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "no implicit GET /"
    );
}

#[tokio::test]
async fn health_marks_use_the_version_method() {
    for (root, expected) in [(ROOT_28, "POST"), (ROOT_39, "PUT")] {
        let (server, kong) = kong_with_root(root).await;
        Mock::given(method(expected))
            .and(path("/upstreams/bg/targets/10.0.0.1:8000/unhealthy"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        kong.targets("bg")
            .mark(&NameOrId::from("10.0.0.1:8000"), false)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn health_marks_are_refused_on_a_control_plane() {
    let (server, kong) = kong_with_root(ROOT_39_CP).await;
    Mock::given(any())
        .and(path("/upstreams/bg/targets/t/healthy"))
        .respond_with(ResponseTemplate::new(404))
        .expect(0)
        .mount(&server)
        .await;
    let err = kong
        .targets("bg")
        .mark(&NameOrId::from("t"), true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReadOnly {
                mode: Mode::HybridControlPlane,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn balancer_health_without_data_on_a_control_plane_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/upstreams/bg-green/health"))
        .and(wiremock::matchers::query_param("balancer_health", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            include_str!("../../fixtures/kong-3.x/balancer-health-control-plane.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/upstreams/shop-up/health"))
        .and(wiremock::matchers::query_param("balancer_health", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            include_str!("../../fixtures/kong-3.x/balancer-health.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let kong = KongClient::new(
        AdminConfig::builder(&server.uri())
            .unwrap()
            .build()
            .unwrap(),
    )
    .unwrap();
    let cp = kong
        .upstreams()
        .balancer_health(&NameOrId::from("bg-green"))
        .await
        .unwrap();
    assert!(cp.is_none());
    let node = kong
        .upstreams()
        .balancer_health(&NameOrId::from("shop-up"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        node.balancer_health,
        Some(kong_switch_core::model::TargetHealth::Healthy)
    );
}
