//! Reads are retried on transient failures; writes never are.

use std::time::Duration;

use kong_switch_core::admin::{AdminConfig, Error, KongClient, RetryPolicy};
use kong_switch_core::model::NameOrId;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer, max_retries: u32) -> KongClient {
    let policy = RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    };
    let config = AdminConfig::builder(&server.uri())
        .unwrap()
        .retries(policy)
        .build()
        .unwrap();
    KongClient::new(config).unwrap()
}

fn unavailable() -> ResponseTemplate {
    ResponseTemplate::new(503).set_body_json(json!({"message": "Service unavailable"}))
}

#[tokio::test]
async fn get_is_retried_on_503_and_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        .respond_with(unavailable())
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"name": "orders", "host": "orders-blue"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server, 3)
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap();
    assert_eq!(got.host, "orders-blue");
}

#[tokio::test]
async fn get_gives_up_after_max_retries_with_the_last_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/upstreams/bg/health"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"message": "An unexpected error occurred"})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server, 2)
        .upstreams()
        .health(&NameOrId::from("bg"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(err.is_transient());
}

#[tokio::test]
async fn get_is_not_retried_on_a_client_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/nope"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not found"})))
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server, 3)
        .services()
        .get_opt(&NameOrId::from("nope"))
        .await
        .unwrap();
    assert!(got.is_none());
}

#[tokio::test]
async fn patch_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/services/orders"))
        .respond_with(unavailable())
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, 3)
        .services()
        .update(&NameOrId::from("orders"), &json!({"host": "orders-green"}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
}

#[tokio::test]
async fn post_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/upstreams/bg/targets"))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({"message": "Bad gateway"})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, 3)
        .targets("bg")
        .create(&json!({"target": "10.0.0.1:8000"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Kong(ref k) if k.status == 502),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_timed_out_put_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/upstreams/bg/targets/10.0.0.1:8000"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let policy = RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(5),
    };
    let config = AdminConfig::builder(&server.uri())
        .unwrap()
        .retries(policy)
        .request_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let err = KongClient::new(config)
        .unwrap()
        .targets("bg")
        .upsert(&NameOrId::from("10.0.0.1:8000"), &json!({"weight": 0}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}
