//! The Kong side of `deploy-green`: the green Upstream and its Service target.

use kong_switch_core::admin::{KongClient, ListParams};
use kong_switch_core::model::{NameOrId, Upstream};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// What [`ensure_green_upstream`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamReport {
    /// The green Upstream's name.
    pub upstream: String,
    /// Whether the Upstream was created (else it existed and was updated).
    pub created: bool,
    /// The target address registered, e.g. `orders-green.shop.svc.cluster.local:80`.
    pub target: String,
    /// Whether the target was added (else it was there already).
    pub target_added: bool,
}

/// Ensures the Upstream `green` exists with the health checks (and balancing settings) of
/// `blue`, and that `target` is one of its targets.
pub(crate) async fn ensure_green_upstream(
    kong: &KongClient,
    blue: &str,
    green: &str,
    target: &str,
) -> Result<UpstreamReport> {
    let node = kong.node().await?;
    if !node.writes_entities() {
        return Err(Error::KongSetup(format!(
            "Kong at {} takes no entity writes ({} mode); deploy-green registers the green Upstream through the Admin API, which needs a traditional (database) node or the control plane",
            kong.config().base_url(),
            node.mode
        )));
    }
    let blue_upstream = kong
        .upstreams()
        .get_opt(&NameOrId::from(blue))
        .await?
        .ok_or_else(|| {
            Error::KongSetup(format!(
                "Kong Upstream `{blue}` not found: deploy-green copies its health checks to `{green}`; check --blue-upstream"
            ))
        })?;
    let existing = kong.upstreams().get_opt(&NameOrId::from(green)).await?;
    kong.upstreams()
        .upsert(&NameOrId::from(green), &green_body(&blue_upstream, green))
        .await?;
    let targets = kong.targets(green).list_all(&ListParams::default()).await?;
    let target_added = !targets.iter().any(|t| t.target == target);
    if target_added {
        kong.targets(green)
            .create(&json!({"target": target, "weight": 100}))
            .await?;
    }
    Ok(UpstreamReport {
        upstream: green.to_owned(),
        created: existing.is_none(),
        target: target.to_owned(),
        target_added,
    })
}

/// The green Upstream: `name`, with blue's balancing settings and health checks.
fn green_body(blue: &Upstream, name: &str) -> Value {
    let mut body = Map::new();
    body.insert("name".to_owned(), json!(name));
    let blue = serde_json::to_value(blue).unwrap_or(Value::Null);
    for field in [
        "algorithm",
        "hash_on",
        "hash_fallback",
        "hash_on_header",
        "hash_fallback_header",
        "hash_on_cookie",
        "hash_on_cookie_path",
        "slots",
        "healthchecks",
        "host_header",
    ] {
        if let Some(value) = blue.get(field).filter(|v| !v.is_null()) {
            body.insert(field.to_owned(), value.clone());
        }
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_upstream_copies_health_checks_and_balancing_but_not_identity() {
        let blue: Upstream = serde_json::from_value(json!({
            "id": "b6f0", "name": "orders-blue", "algorithm": "least-connections", "slots": 1000,
            "tags": ["color:blue"],
            "healthchecks": {"active": {"http_path": "/healthz", "healthy": {"interval": 5, "successes": 2}}}
        }))
        .expect("valid upstream");
        let body = green_body(&blue, "orders-green");
        assert_eq!(body["name"], "orders-green");
        assert_eq!(body["algorithm"], "least-connections");
        assert_eq!(body["healthchecks"]["active"]["http_path"], "/healthz");
        assert!(body.get("id").is_none());
        assert!(body.get("tags").is_none());
    }
}
