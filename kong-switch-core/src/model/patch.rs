//! Write types: the few fields a switch sends, and nothing else.

use serde::Serialize;

use super::{EntityRef, Healthchecks};

/// `PATCH /services/{s}`: the fields a switch changes on a Service.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ServicePatch {
    /// New host (the green upstream's name, for the `upstream` strategy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// New port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// `PATCH /routes/{r}`: re-point a route at another service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutePatch {
    /// The service the route should send traffic to.
    pub service: EntityRef,
}

/// `PATCH /upstreams/{u}/targets/{t}`: a target's new weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TargetWeight {
    /// Weight, 0..=65535.
    pub weight: u32,
}

/// `POST /upstreams`: a new upstream.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NewUpstream {
    /// Unique name (a hostname).
    pub name: String,
    /// Health checks (copied from the blue side, typically).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthchecks: Option<Healthchecks>,
    /// Balancing algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `POST /upstreams/{u}/targets`: a new target.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NewTarget {
    /// Address, `host:port` (Kong defaults the port to 8000).
    pub target: String,
    /// Weight (Kong defaults to 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_carry_only_what_is_set() {
        let patch = ServicePatch {
            host: Some("orders-green".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            serde_json::json!({"host": "orders-green"})
        );
        assert_eq!(
            serde_json::to_value(TargetWeight { weight: 0 }).unwrap(),
            serde_json::json!({"weight": 0})
        );
    }
}
