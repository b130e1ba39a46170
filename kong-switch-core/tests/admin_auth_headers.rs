//! The admin token, extra headers and URL credentials reach Kong, and never reach Debug
//! output or error messages.

use std::time::Duration;

use kong_switch_core::admin::{AdminConfig, Error, KongClient, RetryPolicy, USER_AGENT_VALUE};
use kong_switch_core::model::NameOrId;
use secrecy::SecretString;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "kst-7f3a9c-very-secret-token";

fn client_with_token(base: &str) -> KongClient {
    let config = AdminConfig::builder(base)
        .unwrap()
        .token(SecretString::from(TOKEN))
        .header("X-Team", "payments")
        .unwrap()
        .retries(RetryPolicy::none())
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    KongClient::new(config).unwrap()
}

fn service_body() -> serde_json::Value {
    serde_json::json!({"id": "9c4d", "name": "orders", "host": "orders-blue", "port": 80})
}

#[tokio::test]
async fn token_extra_headers_and_user_agent_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        .and(header("Kong-Admin-Token", TOKEN))
        .and(header("X-Team", "payments"))
        .and(header("User-Agent", USER_AGENT_VALUE))
        .respond_with(ResponseTemplate::new(200).set_body_json(service_body()))
        .expect(1)
        .mount(&server)
        .await;

    let kong = client_with_token(&server.uri());
    let service = kong
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap();
    assert_eq!(service.host, "orders-blue");
    assert!(USER_AGENT_VALUE.starts_with("kong-switch/"));
}

#[tokio::test]
async fn no_token_header_without_a_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(service_body()))
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
    kong.services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap();
    let received = server.received_requests().await.unwrap();
    assert!(received[0].headers.get("kong-admin-token").is_none());
}

#[tokio::test]
async fn url_credentials_are_sent_as_basic_auth_and_kept_out_of_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        // base64("admin:hunter2")
        .and(header("Authorization", "Basic YWRtaW46aHVudGVyMg=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(service_body()))
        .expect(1)
        .mount(&server)
        .await;
    let base = server.uri().replace("http://", "http://admin:hunter2@");
    let config = AdminConfig::builder(&base).unwrap().build().unwrap();
    assert!(!config.base_url().as_str().contains("hunter2"));
    let kong = KongClient::new(config).unwrap();
    kong.services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap();
}

#[test]
fn debug_of_config_builder_and_client_never_shows_secrets() {
    let builder = AdminConfig::builder("https://admin:hunter2@gw.example.com/kong-admin")
        .unwrap()
        .token(SecretString::from(TOKEN))
        .header("Authorization", "Bearer header-secret-value")
        .unwrap();
    let builder_debug = format!("{builder:?}");
    let config = builder.build().unwrap();
    let client = KongClient::new(config.clone()).unwrap();
    for shown in [builder_debug, format!("{config:?}"), format!("{client:?}")] {
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("header-secret-value"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[tokio::test]
async fn token_echoed_by_the_server_is_redacted_from_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                serde_json::json!({"message": format!("Invalid RBAC token {TOKEN}")}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/routes/r1"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_raw(format!("<html>denied for {TOKEN}</html>"), "text/html"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let kong = client_with_token(&server.uri());
    let kong_err = kong
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap_err();
    assert_eq!(kong_err.status(), Some(401));
    let html_err = kong.routes().get(&NameOrId::from("r1")).await.unwrap_err();
    assert!(matches!(
        html_err,
        Error::UnexpectedBody { status: 403, .. }
    ));
    for err in [kong_err, html_err] {
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[tokio::test]
async fn connect_errors_show_neither_token_nor_url_credentials() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let kong = client_with_token(&format!("http://admin:hunter2@127.0.0.1:{port}"));
    let err = kong
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let mut shown = format!("{err} / {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        shown.push_str(&format!(" / {cause}"));
        source = cause.source();
    }
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
}
