//! 404s: Kong's plain `Not found` reads as absent; PATCH of a missing entity keeps code 6; a
//! 404 that is not Kong's never reads as absent.

use kong_switch_core::admin::{AdminConfig, Error, KongClient, RetryPolicy};
use kong_switch_core::model::NameOrId;
use kong_switch_core::model::patch::ServicePatch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> KongClient {
    let config = AdminConfig::builder(&server.uri())
        .unwrap()
        .retries(RetryPolicy::none());
    KongClient::new(config.build().unwrap()).unwrap()
}

fn kong_404() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_raw(
        include_str!("../../fixtures/kong-2.8/error-not-found.json"),
        "application/json; charset=utf-8",
    )
}

#[tokio::test]
async fn get_opt_of_a_missing_entity_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/upstreams/nope.svc"))
        .respond_with(kong_404())
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server)
        .upstreams()
        .get_opt(&NameOrId::from("nope.svc"))
        .await
        .unwrap();
    assert!(got.is_none());
}

#[tokio::test]
async fn get_of_a_missing_entity_is_a_not_found_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/nope"))
        .respond_with(kong_404())
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .services()
        .get(&NameOrId::from("nope"))
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.status(), Some(404));
    let Error::Kong(kong) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(kong.message.as_deref(), Some("Not found"));
    assert_eq!(kong.code, None);
    assert_eq!(kong.path, "/services/nope");
}

#[tokio::test]
async fn patch_of_a_missing_entity_keeps_kong_code_6() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/upstreams/nope.svc"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            include_str!("../../fixtures/kong-2.8/error-not-found-code6.json"),
            "application/json; charset=utf-8",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .upstreams()
        .update(
            &NameOrId::from("nope.svc"),
            &serde_json::json!({"slots": 100}),
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.kong_code(), Some(6));
    let Error::Kong(kong) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(kong.name.as_deref(), Some("not found"));
    assert_eq!(kong.fields, Some(serde_json::json!({"name": "nope.svc"})));
    assert_eq!(
        kong.message.as_deref(),
        Some("could not find the entity with '{name=\"nope.svc\"}'")
    );
    assert!(
        err.to_string().contains("PATCH /upstreams/nope.svc"),
        "{err}"
    );
}

#[tokio::test]
async fn a_404_page_that_is_not_kong_is_an_error_not_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            "<html><head><title>404 Not Found</title></head><body>nginx</body></html>",
            "text/html",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .services()
        .get_opt(&NameOrId::from("orders"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedBody { status: 404, .. }),
        "{err:?}"
    );
    assert!(!err.is_not_found());
}

#[tokio::test]
async fn patch_helper_sends_only_the_patch_fields() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/services/orders"))
        .and(wiremock::matchers::body_json(
            serde_json::json!({"host": "orders-green"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "orders", "host": "orders-green"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let patch = ServicePatch {
        host: Some("orders-green".into()),
        ..Default::default()
    };
    let got = client(&server)
        .services()
        .update(&NameOrId::from("orders"), &patch)
        .await
        .unwrap();
    assert_eq!(got.host, "orders-green");
    let received = server.received_requests().await.unwrap();
    assert_eq!(
        received[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
}
