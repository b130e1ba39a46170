//! `list_all` follows `offset` to the last page; `size` is validated locally.

use kong_switch_core::admin::{AdminConfig, Error, KongClient, ListParams};
use kong_switch_core::model::NameOrId;
use serde_json::json;
use wiremock::matchers::{any, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> KongClient {
    KongClient::new(
        AdminConfig::builder(&server.uri())
            .unwrap()
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn upstream(name: &str) -> serde_json::Value {
    json!({"name": name, "tags": null})
}

#[tokio::test]
async fn list_all_follows_offset_across_three_pages() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/upstreams"))
        .and(query_param("size", "2"))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [upstream("a"), upstream("b")],
            "next": "/upstreams?offset=WyJvMSJd&size=2", "offset": "WyJvMSJd"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/upstreams"))
        .and(query_param("size", "2"))
        .and(query_param("offset", "WyJvMSJd"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [upstream("c"), upstream("d")],
            "next": "/upstreams?offset=WyJvMiJd&size=2", "offset": "WyJvMiJd"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/upstreams"))
        .and(query_param("size", "2"))
        .and(query_param("offset", "WyJvMiJd"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [upstream("e")], "next": null})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let all = client(&server)
        .upstreams()
        .list_all(&ListParams::default().with_size(2))
        .await
        .unwrap();
    let names: Vec<&str> = all.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn list_returns_one_page_with_its_offset() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/upstreams/blue.svc/targets"))
        .and(query_param("size", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(include_str!(
            "../../fixtures/kong-2.8/targets-page-with-offset.json"
        )))
        .expect(1)
        .mount(&server)
        .await;
    let page = client(&server)
        .targets("blue.svc")
        .list(&ListParams::default().with_size(1))
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.offset.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_repeated_offset_stops_paging_with_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [], "next": "/services?offset=same", "offset": "same"})))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server)
        .services()
        .list_all(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Decode { ref json_path, .. } if json_path == "offset"),
        "{err:?}"
    );
}

#[tokio::test]
async fn sizes_outside_1_to_1000_are_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let kong = client(&server);
    for size in [0, 1001] {
        let params = ListParams::default().with_size(size);
        let err = kong.services().list_all(&params).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { field: "size", .. }),
            "{err:?}"
        );
        let err = kong.routes().list(&params).await.unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
    }
}

#[tokio::test]
async fn upstream_health_pages_are_merged() {
    let server = MockServer::start().await;
    let target = |t: &str| json!({"target": t, "weight": 100, "health": "HEALTHY"});
    Mock::given(method("GET"))
        .and(path("/upstreams/bg/health"))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [target("10.0.0.1:8000")], "node_id": "n1",
            "next": "/upstreams/bg/health?offset=1", "offset": "1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/upstreams/bg/health"))
        .and(query_param("offset", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [target("10.0.0.2:8000")], "node_id": "n1", "next": null})))
        .expect(1)
        .mount(&server)
        .await;
    let health = client(&server)
        .upstreams()
        .health(&NameOrId::from("bg"))
        .await
        .unwrap();
    assert_eq!(health.data.len(), 2);
    assert_eq!(health.node_id.as_deref(), Some("n1"));
    assert!(health.next.is_none() && health.offset.is_none());
}
