//! Answers that are not Kong JSON: HTML, truncated JSON, empty bodies, JSON of the wrong shape.

use kong_switch_core::admin::{
    AdminConfig, AdminRequest, Error, KongClient, ListParams, Method, RetryPolicy,
};
use kong_switch_core::model::{NameOrId, Service};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> KongClient {
    let config = AdminConfig::builder(&server.uri())
        .unwrap()
        .retries(RetryPolicy::none());
    KongClient::new(config.build().unwrap()).unwrap()
}

async fn serve(server: &MockServer, http_method: &str, at: &str, response: ResponseTemplate) {
    Mock::given(method(http_method))
        .and(path(at))
        .respond_with(response)
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn html_on_200_says_it_is_not_a_kong_admin_api() {
    let server = MockServer::start().await;
    let html =
        "<!DOCTYPE html>\n<html><head><title>Grafana</title></head>\n<body>login</body></html>";
    serve(
        &server,
        "GET",
        "/services/orders",
        ResponseTemplate::new(200).set_body_raw(html, "text/html; charset=utf-8"),
    )
    .await;
    let err = client(&server)
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap_err();
    let Error::UnexpectedBody {
        status,
        content_type,
        snippet,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 200);
    assert_eq!(content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert!(snippet.starts_with("<!DOCTYPE html> <html>"), "{snippet}");
    assert!(!snippet.contains('\n'));
    let shown = err.to_string();
    assert!(
        shown.contains("this does not look like a Kong Admin API; check --admin-url"),
        "{shown}"
    );
}

#[tokio::test]
async fn truncated_json_is_an_unexpected_body() {
    let server = MockServer::start().await;
    serve(
        &server,
        "GET",
        "/services/orders",
        ResponseTemplate::new(200)
            .set_body_raw(r#"{"name":"orders","host":"orders-bl"#, "application/json"),
    )
    .await;
    let err = client(&server)
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedBody { status: 200, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn empty_body_is_an_error_for_execute_and_fine_for_execute_empty() {
    let server = MockServer::start().await;
    serve(
        &server,
        "GET",
        "/services/orders",
        ResponseTemplate::new(200),
    )
    .await;
    serve(
        &server,
        "DELETE",
        "/services/orders",
        ResponseTemplate::new(204),
    )
    .await;
    let kong = client(&server);
    let err = kong
        .services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedBody { status: 200, .. }),
        "{err:?}"
    );
    kong.services()
        .delete(&NameOrId::from("orders"))
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_json_type_names_the_json_path() {
    let server = MockServer::start().await;
    let body = r#"{"data":[{"target":"10.0.0.1:8000","weight":100},{"target":"10.0.0.2:8000","weight":"heavy"}],"next":null}"#;
    serve(
        &server,
        "GET",
        "/upstreams/bg/targets",
        ResponseTemplate::new(200).set_body_raw(body, "application/json"),
    )
    .await;
    let err = client(&server)
        .targets("bg")
        .list_all(&ListParams::default())
        .await
        .unwrap_err();
    let Error::Decode {
        json_path,
        method,
        path,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(json_path, "data[1].weight");
    assert_eq!(
        (*method, path.as_str()),
        (Method::Get, "/upstreams/bg/targets")
    );
    assert!(err.to_string().contains("data[1].weight"), "{err}");
}

#[tokio::test]
async fn a_json_array_where_an_object_is_expected_is_a_decode_error() {
    let server = MockServer::start().await;
    serve(
        &server,
        "GET",
        "/services/orders",
        ResponseTemplate::new(200).set_body_raw("[1,2]", "application/json"),
    )
    .await;
    let err = client(&server)
        .execute::<Service>(&AdminRequest::get("/services/orders"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn plain_text_error_page_is_an_unexpected_body_with_its_status() {
    let server = MockServer::start().await;
    serve(
        &server,
        "PATCH",
        "/services/orders",
        ResponseTemplate::new(502).set_body_raw(
            "An invalid response was received from the upstream server\n",
            "text/plain",
        ),
    )
    .await;
    let err = client(&server)
        .services()
        .update(&NameOrId::from("orders"), &serde_json::json!({"host": "x"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedBody { status: 502, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}
