//! Tag filters: all-of is `tags=a,b`, any-of is `tags=a/b`; bad filters never leave the client.

use kong_switch_core::admin::{AdminConfig, Error, KongClient, ListParams, TagFilter};
use serde_json::json;
use wiremock::matchers::{any, method, path, query_param};
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

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| (*t).to_owned()).collect()
}

#[tokio::test]
async fn all_of_sends_comma_separated_tags() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/upstreams"))
        .and(query_param("tags", "a,b"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"name": "t1.svc", "tags": ["a", "b"]}], "next": null})))
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server)
        .upstreams()
        .list_all(&ListParams::default().with_tags(TagFilter::All(tags(&["a", "b"]))))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].has_tag("a") && got[0].has_tag("b"));
}

#[tokio::test]
async fn any_of_sends_slash_separated_tags() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/services"))
        .and(query_param("tags", "blue/green"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"name": "a", "host": "a-blue", "tags": ["blue"]},
                     {"name": "b", "host": "b-green", "tags": ["green"]}], "next": null})))
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server)
        .services()
        .list(&ListParams::default().with_tags(TagFilter::Any(tags(&["blue", "green"]))))
        .await
        .unwrap();
    assert_eq!(got.data.len(), 2);
}

#[tokio::test]
async fn invalid_filters_are_refused_locally() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let kong = client(&server);
    let bad = [
        TagFilter::All(vec![]),
        TagFilter::Any(vec![]),
        TagFilter::All(tags(&["a,b"])),
        TagFilter::Any(tags(&["team/a"])),
        TagFilter::All(tags(&["ok", ""])),
    ];
    for filter in bad {
        let params = ListParams::default().with_tags(filter.clone());
        let err = kong.upstreams().list_all(&params).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { field: "tags", .. }),
            "{filter:?}: {err:?}"
        );
    }
}
