//! Base URL path prefixes and the Enterprise workspace prefix.

use kong_switch_core::admin::{AdminConfig, KongClient};
use kong_switch_core::model::NameOrId;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(base: String, workspace: Option<&str>) -> KongClient {
    let mut builder = AdminConfig::builder(&base).unwrap();
    if let Some(ws) = workspace {
        builder = builder.workspace(ws);
    }
    KongClient::new(builder.build().unwrap()).unwrap()
}

fn service() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"name": "orders", "host": "orders-blue"}))
}

#[tokio::test]
async fn base_url_path_prefix_is_kept_with_or_without_trailing_slash() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/kong-admin/services/orders"))
        .respond_with(service())
        .expect(2)
        .mount(&server)
        .await;
    for base in [
        format!("{}/kong-admin", server.uri()),
        format!("{}/kong-admin/", server.uri()),
    ] {
        let kong = client(base, None);
        let got = kong
            .services()
            .get(&NameOrId::from("orders"))
            .await
            .unwrap();
        assert_eq!(got.host, "orders-blue");
    }
}

#[tokio::test]
async fn workspace_goes_between_prefix_and_entity_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/kong-admin/team-a/services/orders"))
        .respond_with(service())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/kong-admin/team-a/upstreams/orders-green/targets"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [], "next": null})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let kong = client(format!("{}/kong-admin", server.uri()), Some("team-a"));
    assert_eq!(kong.config().workspace(), Some("team-a"));
    kong.services()
        .get(&NameOrId::from("orders"))
        .await
        .unwrap();
    let targets = kong
        .targets("orders-green")
        .list_all(&Default::default())
        .await
        .unwrap();
    assert!(targets.is_empty());
}

#[tokio::test]
async fn root_and_status_are_not_workspaced() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/kong-admin/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"version": "3.4.3.1-enterprise-edition"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/kong-admin/status"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"database": {"reachable": true}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let kong = client(format!("{}/kong-admin", server.uri()), Some("team-a"));
    let info = kong.node_info().await.unwrap();
    assert!(info.kong_version().enterprise);
    let status = kong.node_status().await.unwrap();
    assert_eq!(
        status.database,
        Some(serde_json::json!({"reachable": true}))
    );
}
