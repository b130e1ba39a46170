//! Per-entity handles: pure request builders plus the same verbs everywhere.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{BalancerHealth, NameOrId, Page, Target, Upstream, UpstreamHealth};

use super::client::KongClient;
use super::error::{Error, Result};
use super::{AdminRequest, Method};

/// Largest page Kong serves.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Query of a list endpoint: page size, offset, tag filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListParams {
    /// Page size, 1..=1000 (Kong's default is 100).
    pub size: Option<u32>,
    /// Opaque offset from the previous page.
    pub offset: Option<String>,
    /// Tag filter.
    pub tags: Option<TagFilter>,
}

impl ListParams {
    /// With a page size.
    #[must_use]
    pub fn with_size(mut self, size: u32) -> Self {
        self.size = Some(size);
        self
    }

    /// With a tag filter.
    #[must_use]
    pub fn with_tags(mut self, tags: TagFilter) -> Self {
        self.tags = Some(tags);
        self
    }

    /// With an offset.
    #[must_use]
    pub fn with_offset(mut self, offset: impl Into<String>) -> Self {
        self.offset = Some(offset.into());
        self
    }

    /// Checks what Kong would refuse, without asking Kong: `size` outside 1..=1000, an empty
    /// tag list, and tags containing `,` or `/`.
    pub fn validate(&self) -> Result<()> {
        if let Some(size) = self.size
            && !(1..=MAX_PAGE_SIZE).contains(&size)
        {
            return Err(Error::invalid(
                "size",
                format!("{size} is outside 1..={MAX_PAGE_SIZE}, the page sizes Kong accepts"),
            ));
        }
        if let Some(tags) = &self.tags {
            tags.validate()?;
        }
        Ok(())
    }

    /// The query pairs, in the order Kong documents them.
    pub fn to_query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        if let Some(size) = self.size {
            query.push(("size".to_owned(), size.to_string()));
        }
        if let Some(offset) = &self.offset {
            query.push(("offset".to_owned(), offset.clone()));
        }
        if let Some(tags) = &self.tags {
            query.push(("tags".to_owned(), tags.to_query_value()));
        }
        query
    }
}

/// A tag filter: all of the tags (`tags=a,b`) or any of them (`tags=a/b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    /// Entities carrying every tag (`a,b`).
    All(Vec<String>),
    /// Entities carrying at least one tag (`a/b`).
    Any(Vec<String>),
}

impl TagFilter {
    /// The tags.
    pub fn tags(&self) -> &[String] {
        match self {
            TagFilter::All(tags) | TagFilter::Any(tags) => tags,
        }
    }

    /// The value of the `tags` query parameter.
    pub fn to_query_value(&self) -> String {
        match self {
            TagFilter::All(tags) => tags.join(","),
            TagFilter::Any(tags) => tags.join("/"),
        }
    }

    /// Refuses an empty list and tags that are empty or contain `,` or `/` (Kong's separators;
    /// Kong itself refuses such tags on entities).
    pub fn validate(&self) -> Result<()> {
        let tags = self.tags();
        if tags.is_empty() {
            return Err(Error::invalid(
                "tags",
                "the tag filter is empty; give at least one tag or no filter",
            ));
        }
        for tag in tags {
            if tag.is_empty() {
                return Err(Error::invalid("tags", "a tag in the filter is empty"));
            }
            if tag.contains([',', '/']) {
                return Err(Error::invalid(
                    "tags",
                    format!(
                        "tag `{tag}` contains `,` or `/`, which Kong uses to combine tags; \
                         Kong tags cannot contain them"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A handle on one collection (`/services`, `/upstreams/{u}/targets`, …) with the same verbs
/// for every entity: `get` / `get_opt` / `list` / `list_all` / `create` (POST) / `update`
/// (PATCH) / `upsert` (PUT) / `delete`.
///
/// The `*_request` methods are pure and return the [`AdminRequest`] the verb sends.
pub struct Entities<T> {
    client: KongClient,
    path: String,
    _entity: PhantomData<fn() -> T>,
}

impl<T> Clone for Entities<T> {
    fn clone(&self) -> Self {
        Entities {
            client: self.client.clone(),
            path: self.path.clone(),
            _entity: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Entities<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entities")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<T> Entities<T> {
    pub(crate) fn new(client: KongClient, path: String) -> Self {
        Entities {
            client,
            path,
            _entity: PhantomData,
        }
    }

    /// The collection path, e.g. `/services` or `/upstreams/u/targets`.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn item_path(&self, key: &NameOrId) -> String {
        format!("{}/{}", self.path, key.to_segment())
    }

    /// `GET {path}/{key}`.
    pub fn get_request(&self, key: &NameOrId) -> AdminRequest {
        AdminRequest::get(self.item_path(key))
    }

    /// `GET {path}?size=&offset=&tags=`. Not validated; [`Entities::list`] validates.
    pub fn list_request(&self, params: &ListParams) -> AdminRequest {
        let mut req = AdminRequest::get(self.path.clone());
        req.query = params.to_query();
        req
    }

    /// `POST {path}` with `body`.
    ///
    /// A body that cannot be encoded as JSON (a failing `Serialize` impl, non-string map
    /// keys) is left out here; the I/O verbs report it as [`Error::Encode`].
    pub fn create_request(&self, body: &impl Serialize) -> AdminRequest {
        lenient(write_request(Method::Post, self.path.clone(), body))
    }

    /// `PATCH {path}/{key}` with `patch` (partial update).
    pub fn update_request(&self, key: &NameOrId, patch: &impl Serialize) -> AdminRequest {
        lenient(write_request(Method::Patch, self.item_path(key), patch))
    }

    /// `PUT {path}/{key}` with `body` (upsert: full replace; for targets update-only).
    pub fn upsert_request(&self, key: &NameOrId, body: &impl Serialize) -> AdminRequest {
        lenient(write_request(Method::Put, self.item_path(key), body))
    }

    /// `DELETE {path}/{key}`.
    pub fn delete_request(&self, key: &NameOrId) -> AdminRequest {
        AdminRequest::new(Method::Delete, self.item_path(key))
    }
}

impl<T: DeserializeOwned> Entities<T> {
    /// Reads one entity; a missing one is a Kong 404 error.
    pub async fn get(&self, key: &NameOrId) -> Result<T> {
        self.client.execute(&self.get_request(key)).await
    }

    /// Reads one entity; a missing one is `None`.
    pub async fn get_opt(&self, key: &NameOrId) -> Result<Option<T>> {
        self.client.execute_opt(&self.get_request(key)).await
    }

    /// Reads one page.
    pub async fn list(&self, params: &ListParams) -> Result<Page<T>> {
        params.validate()?;
        self.client.execute(&self.list_request(params)).await
    }

    /// Reads every page, following `offset` to the end. Pages hold 1,000 entities (Kong's
    /// maximum) unless `params` sets `size`: 2,000 targets are 2 requests, not 20.
    pub async fn list_all(&self, params: &ListParams) -> Result<Vec<T>> {
        params.validate()?;
        let mut params = params.clone();
        params.size.get_or_insert(MAX_PAGE_SIZE);
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        loop {
            let req = self.list_request(&params);
            let page: Page<T> = self.client.execute(&req).await?;
            all.extend(page.data);
            match next_offset(page.offset, page.next.as_deref()) {
                None => return Ok(all),
                Some(offset) => {
                    if !seen.insert(offset.clone()) {
                        return Err(repeated_offset(&req, &offset));
                    }
                    params.offset = Some(offset);
                }
            }
        }
    }

    /// `POST`: creates an entity.
    pub async fn create(&self, body: &impl Serialize) -> Result<T> {
        let req = write_request(Method::Post, self.path.clone(), body)?;
        self.client.check_writable(&req)?;
        self.client.execute(&req).await
    }

    /// `PATCH`: changes the given fields.
    pub async fn update(&self, key: &NameOrId, patch: &impl Serialize) -> Result<T> {
        let req = write_request(Method::Patch, self.item_path(key), patch)?;
        self.client.check_writable(&req)?;
        self.client.execute(&req).await
    }

    /// `PUT`: creates or fully replaces (targets: replaces only).
    pub async fn upsert(&self, key: &NameOrId, body: &impl Serialize) -> Result<T> {
        let req = write_request(Method::Put, self.item_path(key), body)?;
        self.client.check_writable(&req)?;
        self.client.execute(&req).await
    }

    /// `DELETE`. Kong answers 204 even for a missing service, route or upstream; a missing
    /// target is a 404 error.
    pub async fn delete(&self, key: &NameOrId) -> Result<()> {
        let req = self.delete_request(key);
        self.client.check_writable(&req)?;
        self.client.execute_empty(&req).await
    }
}

/// `/upstreams`: the [`Entities`] verbs (through `Deref`) plus health.
#[derive(Debug, Clone)]
pub struct Upstreams {
    entities: Entities<Upstream>,
}

impl Deref for Upstreams {
    type Target = Entities<Upstream>;

    fn deref(&self) -> &Entities<Upstream> {
        &self.entities
    }
}

impl Upstreams {
    pub(crate) fn new(client: KongClient) -> Self {
        Upstreams {
            entities: Entities::new(client, "/upstreams".to_owned()),
        }
    }

    /// `GET /upstreams/{u}/health`.
    pub fn health_request(&self, upstream: &NameOrId) -> AdminRequest {
        AdminRequest::get(format!("/upstreams/{}/health", upstream.to_segment()))
    }

    /// `GET /upstreams/{u}/health?balancer_health=1`.
    pub fn balancer_health_request(&self, upstream: &NameOrId) -> AdminRequest {
        self.health_request(upstream)
            .with_query("balancer_health", "1")
    }

    /// The health of every target as the answering node's balancer sees it; all pages merged
    /// (`next`/`offset` of the result are `None`, `node_id` is the first page's).
    pub async fn health(&self, upstream: &NameOrId) -> Result<UpstreamHealth> {
        let first_req = self.health_request(upstream);
        let mut merged: UpstreamHealth = self.entities.client.execute(&first_req).await?;
        let mut seen = HashSet::new();
        let mut offset = next_offset(merged.offset.take(), merged.next.take().as_deref());
        while let Some(current) = offset {
            if !seen.insert(current.clone()) {
                return Err(repeated_offset(&first_req, &current));
            }
            let req = first_req.clone().with_query("offset", current);
            let page: UpstreamHealth = self.entities.client.execute(&req).await?;
            merged.data.extend(page.data);
            if merged.node_id.is_none() {
                merged.node_id = page.node_id;
            }
            offset = next_offset(page.offset, page.next.as_deref());
        }
        Ok(merged)
    }

    /// The upstream's health as a whole. `None` when Kong sends no `data` (a hybrid control
    /// plane, which has no balancer).
    pub async fn balancer_health(&self, upstream: &NameOrId) -> Result<Option<BalancerHealth>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            data: Option<BalancerHealth>,
        }
        let answer: Answer = self
            .entities
            .client
            .execute(&self.balancer_health_request(upstream))
            .await?;
        Ok(answer.data)
    }
}

/// `/upstreams/{u}/targets`: the [`Entities`] verbs (through `Deref`) plus health marks.
#[derive(Debug, Clone)]
pub struct Targets {
    entities: Entities<Target>,
    upstream: NameOrId,
}

impl Deref for Targets {
    type Target = Entities<Target>;

    fn deref(&self) -> &Entities<Target> {
        &self.entities
    }
}

impl Targets {
    pub(crate) fn new(client: KongClient, upstream: NameOrId) -> Self {
        let path = format!("/upstreams/{}/targets", upstream.to_segment());
        Targets {
            entities: Entities::new(client, path),
            upstream,
        }
    }

    /// The upstream these targets belong to.
    pub fn upstream(&self) -> &NameOrId {
        &self.upstream
    }

    /// `{POST|PUT} /upstreams/{u}/targets/{t}/healthy|unhealthy` with no body. The method
    /// depends on the version: see [`Node::health_mark_method`](super::Node::health_mark_method).
    pub fn mark_request(&self, target: &NameOrId, healthy: bool, method: Method) -> AdminRequest {
        let verb = if healthy { "healthy" } else { "unhealthy" };
        AdminRequest::new(
            method,
            format!("{}/{}/{verb}", self.entities.path, target.to_segment()),
        )
    }

    /// Marks a target healthy or unhealthy on the node (not persisted; broadcast to other
    /// nodes). Fetches the node once (cached) to pick the method; refused locally with
    /// [`Error::ReadOnly`] on a hybrid node, which has no manual health marks.
    pub async fn mark(&self, target: &NameOrId, healthy: bool) -> Result<()> {
        let node = self.entities.client.node().await?;
        match node.health_mark_method() {
            Some(method) => {
                self.entities
                    .client
                    .execute_empty(&self.mark_request(target, healthy, method))
                    .await
            }
            None => {
                let req = self.mark_request(target, healthy, Method::Put);
                Err(Error::ReadOnly {
                    mode: node.mode,
                    request: format!("{} {}", req.method, req.path),
                })
            }
        }
    }
}

fn write_request(method: Method, path: String, body: &impl Serialize) -> Result<AdminRequest> {
    match serde_json::to_value(body) {
        Ok(value) => Ok(AdminRequest::new(method, path).with_body(value)),
        Err(e) => Err(Error::Encode {
            method,
            path,
            message: e.to_string(),
        }),
    }
}

fn lenient(result: Result<AdminRequest>) -> AdminRequest {
    match result {
        Ok(req) => req,
        Err(Error::Encode { method, path, .. }) => AdminRequest::new(method, path),
        // write_request only fails with Encode.
        Err(_) => AdminRequest::new(Method::Get, "/"),
    }
}

/// The offset of the next page: `offset` if Kong sent it, else the `offset` query parameter
/// of `next`.
fn next_offset(offset: Option<String>, next: Option<&str>) -> Option<String> {
    offset.filter(|o| !o.is_empty()).or_else(|| {
        let next = next?;
        let url = url::Url::parse("http://kong.invalid")
            .ok()?
            .join(next)
            .ok()?;
        url.query_pairs()
            .find(|(k, _)| k == "offset")
            .map(|(_, v)| v.into_owned())
            .filter(|o| !o.is_empty())
    })
}

fn repeated_offset(req: &AdminRequest, offset: &str) -> Error {
    Error::Decode {
        method: req.method,
        path: req.path.clone(),
        json_path: "offset".to_owned(),
        message: format!("Kong returned offset `{offset}` twice; paging would never end"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::AdminConfig;
    use crate::model::patch::{ServicePatch, TargetWeight};
    use serde_json::json;

    fn client() -> KongClient {
        KongClient::new(
            AdminConfig::builder("http://kong:8001")
                .unwrap()
                .build()
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn item_requests_encode_the_key_as_one_segment() {
        let c = client();
        let key = NameOrId::from("orders blue/1");
        assert_eq!(
            c.services().get_request(&key).to_string(),
            "GET /services/orders%20blue%2F1"
        );
        assert_eq!(
            c.routes().delete_request(&key).to_string(),
            "DELETE /routes/orders%20blue%2F1"
        );
    }

    #[test]
    fn write_requests_carry_the_patch_only() {
        let c = client();
        let patch = ServicePatch {
            host: Some("orders-green".into()),
            ..Default::default()
        };
        assert_eq!(
            c.services()
                .update_request(&"orders".into(), &patch)
                .to_string(),
            r#"PATCH /services/orders {"host":"orders-green"}"#
        );
        let put = c
            .targets("u")
            .upsert_request(&"10.0.0.1:8000".into(), &TargetWeight { weight: 0 });
        assert_eq!(put.method, Method::Put);
        assert_eq!(put.path, "/upstreams/u/targets/10.0.0.1:8000");
        assert_eq!(put.body, Some(json!({"weight": 0})));
        let post = c.upstreams().create_request(&json!({"name": "green.svc"}));
        assert_eq!(post.to_string(), r#"POST /upstreams {"name":"green.svc"}"#);
    }

    #[test]
    fn list_requests_render_size_offset_and_tags() {
        let c = client();
        let params = ListParams::default()
            .with_size(2)
            .with_offset("abc")
            .with_tags(TagFilter::Any(vec!["blue".into(), "green".into()]));
        assert_eq!(
            c.upstreams().list_request(&params).to_string(),
            "GET /upstreams?size=2&offset=abc&tags=blue%2Fgreen"
        );
        let all = ListParams::default().with_tags(TagFilter::All(vec!["a".into(), "b".into()]));
        assert_eq!(
            c.services().list_request(&all).to_string(),
            "GET /services?tags=a,b"
        );
    }

    #[test]
    fn params_validate_size_and_tags_locally() {
        assert!(ListParams::default().with_size(1000).validate().is_ok());
        for size in [0, 1001] {
            let err = ListParams::default()
                .with_size(size)
                .validate()
                .unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { field: "size", .. }));
        }
        let bad = [
            TagFilter::All(vec![]),
            TagFilter::Any(vec!["a,b".into()]),
            TagFilter::All(vec!["a/b".into()]),
            TagFilter::Any(vec![String::new()]),
        ];
        for tags in bad {
            let err = tags.validate().unwrap_err();
            assert!(
                matches!(err, Error::InvalidConfig { field: "tags", .. }),
                "{tags:?}"
            );
        }
    }

    #[test]
    fn health_and_mark_requests() {
        let c = client();
        assert_eq!(
            c.upstreams()
                .balancer_health_request(&"bg".into())
                .to_string(),
            "GET /upstreams/bg/health?balancer_health=1"
        );
        let t = c.targets("bg");
        assert_eq!(
            t.mark_request(&"10.0.0.1:8000".into(), false, Method::Put)
                .to_string(),
            "PUT /upstreams/bg/targets/10.0.0.1:8000/unhealthy"
        );
        assert_eq!(
            t.mark_request(&"10.0.0.1:8000".into(), true, Method::Post)
                .to_string(),
            "POST /upstreams/bg/targets/10.0.0.1:8000/healthy"
        );
    }

    #[test]
    fn next_offset_prefers_offset_then_reads_next() {
        assert_eq!(next_offset(Some("o1".into()), None), Some("o1".into()));
        assert_eq!(
            next_offset(None, Some("/upstreams?offset=WyJ4Il0%3D&size=2")),
            Some("WyJ4Il0=".into())
        );
        assert_eq!(next_offset(None, None), None);
    }

    #[test]
    fn client_futures_are_send_so_the_engine_can_spawn_them() {
        fn assert_send<F: std::future::Future + Send>(_: F) {}
        let c = client();
        let key = NameOrId::from("x");
        let params = ListParams::default();
        assert_send(c.node());
        assert_send(c.services().get(&key));
        assert_send(c.services().list_all(&params));
        assert_send(c.upstreams().health(&key));
        assert_send(c.targets("u").update(&key, &TargetWeight { weight: 1 }));
        assert_send(c.targets("u").mark(&key, true));
        assert_send(c.execute_raw(&AdminRequest::get("/")));
    }

    #[test]
    fn post_config_request_is_a_plain_post_shown_by_its_size_or_summary() {
        let doc = json!({"_format_version": "3.0"});
        let req = KongClient::post_config_request(&doc);
        assert_eq!((req.method, req.path.as_str()), (Method::Post, "/config"));
        assert_eq!(req.body.as_ref(), Some(&doc));
        assert_eq!(
            req.to_string(),
            "POST /config (declarative configuration, 25 bytes)"
        );
        let req = req.with_summary("service orders: host orders-blue → orders-green");
        assert_eq!(
            req.to_string(),
            "POST /config (service orders: host orders-blue → orders-green)"
        );
        let brief = serde_json::to_value(req.brief()).expect("serializes");
        assert_eq!(
            brief,
            json!({"method": "POST", "path": "/config",
                   "summary": "service orders: host orders-blue → orders-green"})
        );
    }
}
