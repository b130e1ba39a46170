//! A slow Admin API is a timeout; a closed port is a connect error.

use std::time::Duration;

use kong_switch_core::admin::{AdminConfig, Error, KongClient, Method, RetryPolicy};
use kong_switch_core::model::NameOrId;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn no_answer_within_the_request_timeout_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services/orders"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .expect(1)
        .mount(&server)
        .await;
    let config = AdminConfig::builder(&server.uri())
        .unwrap()
        .request_timeout(Duration::from_millis(200))
        .retries(RetryPolicy::none())
        .build()
        .unwrap();
    assert_eq!(config.request_timeout(), Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = KongClient::new(config)
        .unwrap()
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let Error::Timeout {
        method,
        path,
        after,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*method, path.as_str(), *after),
        (Method::Get, "/services/orders", Duration::from_millis(200))
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = AdminConfig::builder(&format!("http://127.0.0.1:{port}/kong"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .retries(RetryPolicy::none())
        .build()
        .unwrap();
    let err = KongClient::new(config)
        .unwrap()
        .node_info()
        .await
        .unwrap_err();
    let Error::Connect { method, url, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*method, Method::Get);
    assert_eq!(url, &format!("http://127.0.0.1:{port}/kong/"));
    assert!(err.is_transient());
    assert!(err.to_string().contains("--admin-url"), "{err}");
}

#[test]
fn zero_timeouts_are_refused() {
    let err = AdminConfig::builder("http://kong:8001")
        .unwrap()
        .request_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "request_timeout",
            ..
        }
    ));
}
