//! Kong's error bodies (exact bodies from real Kong) decode into `Error::Kong`.

use kong_switch_core::admin::{AdminConfig, Error, KongClient, KongError, RetryPolicy};
use kong_switch_core::model::NameOrId;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> KongClient {
    let config = AdminConfig::builder(&server.uri())
        .unwrap()
        .retries(RetryPolicy::none());
    KongClient::new(config.build().unwrap()).unwrap()
}

fn kong_body(status: u16, body: &'static str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json; charset=utf-8")
}

fn kong_error(err: Error) -> KongError {
    match err {
        Error::Kong(kong) => *kong,
        other => panic!("expected a Kong error, got {other:?}"),
    }
}

#[tokio::test]
async fn schema_violation_keeps_fields_code_and_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services"))
        .respond_with(kong_body(
            400,
            include_str!("../../fixtures/kong-2.8/error-schema-violation.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .services()
        .create(&json!({"name": "app3"}))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    let shown = err.to_string();
    let kong = kong_error(err);
    assert_eq!(kong.status, 400);
    assert_eq!(kong.code, Some(2));
    assert_eq!(kong.name.as_deref(), Some("schema violation"));
    assert_eq!(kong.fields, Some(json!({"host": "required field missing"})));
    assert_eq!(
        kong.message.as_deref(),
        Some("schema violation (host: required field missing)")
    );
    assert!(
        shown.contains("POST /services") && shown.contains("code 2"),
        "{shown}"
    );
    assert!(shown.contains("required field missing"), "{shown}");
}

#[tokio::test]
async fn unique_violation_is_a_409_with_the_conflicting_field() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services"))
        .respond_with(kong_body(
            409,
            include_str!("../../fixtures/kong-2.8/error-unique-violation.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .services()
        .create(&json!({"name": "app", "host": "blue.svc"}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    let kong = kong_error(err);
    assert_eq!(kong.code, Some(5));
    assert_eq!(kong.name.as_deref(), Some("unique constraint violation"));
    assert_eq!(kong.fields, Some(json!({"name": "app"})));
    assert_eq!(
        kong.message.as_deref(),
        Some("UNIQUE violation detected on '{name=\"app\"}'")
    );
}

#[tokio::test]
async fn duplicate_target_on_3x_is_a_409_with_target_and_upstream() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/upstreams/shop-up/targets"))
        .respond_with(kong_body(
            409,
            include_str!("../../fixtures/kong-3.x/error-unique-violation.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .targets("shop-up")
        .create(&json!({"target": "127.0.0.1:19301"}))
        .await
        .unwrap_err();
    let kong = kong_error(err);
    assert_eq!((kong.status, kong.code), (409, Some(5)));
    assert_eq!(
        kong.fields.as_ref().and_then(|f| f.get("target")),
        Some(&json!("127.0.0.1:19301"))
    );
}

#[tokio::test]
async fn dbless_write_is_a_405_code_12() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/upstreams"))
        .respond_with(kong_body(
            405,
            include_str!("../../fixtures/kong-2.8/error-dbless-write.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .upstreams()
        .create(&json!({"name": "x.svc"}))
        .await
        .unwrap_err();
    let kong = kong_error(err);
    assert_eq!((kong.status, kong.code), (405, Some(12)));
    assert_eq!(kong.name.as_deref(), Some("operation unsupported"));
    assert_eq!(kong.fields, None);
}

#[tokio::test]
async fn invalid_options_put_options_in_fields() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/upstreams"))
        .respond_with(kong_body(
            400,
            include_str!("../../fixtures/kong-2.8/error-invalid-tag-filter.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    // The client never sends `a,b/c` itself; ask for it through execute to see Kong's answer.
    let req = kong_switch_core::admin::AdminRequest::get("/upstreams").with_query("tags", "a,b/c");
    let err = client(&server)
        .execute::<serde_json::Value>(&req)
        .await
        .unwrap_err();
    let kong = kong_error(err);
    assert_eq!(kong.code, Some(11));
    assert_eq!(kong.fields, Some(json!({"tags": "invalid filter syntax"})));
}

#[tokio::test]
async fn plain_message_errors_have_no_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/upstreams/bg-blue/targets/127.0.0.1:19101/unhealthy"))
        .respond_with(kong_body(
            400,
            r#"{"message":"no healthchecker found for bg-blue"}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let t = client(&server).targets("bg-blue");
    let req = t.mark_request(
        &NameOrId::from("127.0.0.1:19101"),
        false,
        kong_switch_core::admin::Method::Post,
    );
    let err = client(&server).execute_empty(&req).await.unwrap_err();
    let kong = kong_error(err);
    assert_eq!(
        kong.message.as_deref(),
        Some("no healthchecker found for bg-blue")
    );
    assert_eq!((kong.code, kong.name), (None, None));
}

#[tokio::test]
async fn invalid_declarative_config_keeps_nested_fields() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/config"))
        .respond_with(kong_body(
            400,
            include_str!("../../fixtures/kong-3.x/error-invalid-declarative-config.json"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let doc = json!({"_format_version": "3.0", "services": [{"name": "bad", "host": "x", "port": 99999}]});
    let err = client(&server).post_config(&doc).await.unwrap_err();
    let kong = kong_error(err);
    assert_eq!(kong.code, Some(14));
    assert_eq!(
        kong.fields
            .as_ref()
            .and_then(|f| f.pointer("/services/0/port")),
        Some(&json!("value should be between 0 and 65535"))
    );
}
